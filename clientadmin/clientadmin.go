// Package clientadmin is the operator's administration of fintech API
// clients ('tpp clients'): create, list, revoke and rotate-key on the
// service's database, and what each prints.
package clientadmin

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/storage"
)

// Request is one 'tpp clients' subcommand with its settings.
type Request struct {
	Sub           string // create, list, revoke or rotate-key
	DB, MasterKey string
	New           tpp.NewClient // create's client
	ClientID      string        // revoke's and rotate-key's client
}

// Run opens the existing database and runs c, printing to stdout. The
// master key is parsed before the database is touched, and required only
// where a secret is sealed; when given, it must open the secrets already
// there.
func Run(ctx context.Context, c Request, stdout io.Writer) error {
	kr, kerr := storage.OpenKeyringFor(c.MasterKey, c.DB)
	if kerr != nil && (c.Sub == "create" || strings.TrimSpace(c.MasterKey) != "") {
		return kerr
	}
	st, err := storage.OpenExisting(ctx, c.DB, tpp.SystemClock{}, kr)
	if err != nil {
		return err
	}
	defer st.Close()
	if kerr == nil && c.Sub != "list" {
		if err := st.CheckKeyOpensSecrets(ctx, kr, c.DB); err != nil {
			return err
		}
	}
	svc := st.Clients
	switch c.Sub {
	case "create":
		return create(ctx, svc, c.New, stdout)
	case "list":
		return list(ctx, svc, stdout)
	case "revoke":
		cl, err := svc.RevokeClient(ctx, c.ClientID)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Revoked client %s (%s). Its API key no longer works and its live consents are revoked.\n"+
			"The running service's janitor ends their bunq sessions and purges their contexts within a minute.\n", cl.ID, cl.Name)
		return nil
	default: // rotate-key
		key, err := svc.RotateAPIKey(ctx, c.ClientID)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "New API key for %s. The old key stopped working just now.\n\n", c.ClientID)
		fmt.Fprintf(stdout, "API key (shown once; store it now, it cannot be shown again):\n  %s\n", key)
		return nil
	}
}

func create(ctx context.Context, svc tpp.ClientService, in tpp.NewClient, stdout io.Writer) error {
	c, sec, err := svc.CreateClient(ctx, in)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Created client %s (%s)\n\n", c.ID, c.Name)
	fmt.Fprintf(stdout, "Client ID:\n  %s\n\n", c.ID)
	fmt.Fprintf(stdout, "API key (shown once; store it now, it cannot be shown again; use rotate-key to replace it):\n  %s\n\n", sec.APIKey)
	fmt.Fprintf(stdout, "Webhook signing secret (shown once; store it now; it verifies the webhook-signature header):\n  %s\n", sec.WebhookSecret)
	return nil
}

func list(ctx context.Context, svc tpp.ClientService, stdout io.Writer) error {
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tRETURN URLS\tCREATED")
	cursor := ""
	for {
		page, err := svc.ListClients(ctx, tpp.PageRequest{Limit: tpp.MaxPageLimit, Cursor: cursor})
		if err != nil {
			return err
		}
		for _, c := range page.Items {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.ID, oneLine(c.Name), c.Status,
				strings.Join(c.ReturnURLs, " "), c.CreatedAt.UTC().Format(time.RFC3339))
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	return tw.Flush()
}

// oneLine keeps a name from breaking the table.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}
