package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/bunqtpp/tpp"
)

// This file is what 'tpp demo' sets up in the TPP for the demo app: its
// fintech client, kept beside the database, and the welcome text.

// ClientFile keeps the demo fintech client's credentials beside the
// database, so later runs reuse the client and its API key (shown by the
// client service only once, when made).
const ClientFile = "demo-client.json"

// Client is the content of ClientFile.
type Client struct {
	ClientID      string `json:"client_id"`
	APIKey        string `json:"api_key"`
	WebhookSecret string `json:"webhook_secret"`
	PublicURL     string `json:"public_url"`
	Reused        bool   `json:"-"` // loaded from an earlier run, not created now
}

// ResetData deletes what the demo keeps beside the database. Only the
// files the product made are deleted, never the whole folder: --db may
// point into a folder that holds other things.
func ResetData(dbPath string, out io.Writer) error {
	dir := filepath.Dir(dbPath)
	targets := []string{
		dbPath, dbPath + "-wal", dbPath + "-shm", dbPath + "-journal",
		filepath.Join(dir, "master.key"),
		filepath.Join(dir, "certs"),
		filepath.Join(dir, ClientFile),
	}
	var gone []string
	for _, p := range targets {
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("--reset: delete %s: %w", p, err)
		}
		gone = append(gone, p)
	}
	if len(gone) == 0 {
		fmt.Fprintf(out, "demo: --reset: nothing to delete in %s; starting fresh\n", dir)
		return nil
	}
	fmt.Fprintf(out, "demo: --reset: deleted %s; starting fresh\n", strings.Join(gone, ", "))
	return nil
}

// EnsureClient loads the demo client from path when its API key still
// works and its URLs match publicURL; otherwise it creates a new client
// (revoking a stale one) and saves it to path with mode 0600.
func EnsureClient(ctx context.Context, clients tpp.ClientService, path, publicURL string, out io.Writer) (Client, error) {
	returnURL, hookURL := publicURL+ReturnPath, publicURL+WebhookPath
	var dc Client
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &dc); err != nil {
			return dc, fmt.Errorf("read %s: %w (delete it, or run 'tpp demo --reset')", path, err)
		}
		c, err := clients.Authenticate(ctx, dc.APIKey)
		switch {
		case err == nil && c.ID == dc.ClientID && c.AllowsReturnURL(returnURL) && c.WebhookURL == hookURL:
			fmt.Fprintf(out, "demo: reusing the demo fintech client %q (%s) from %s\n", c.Name, c.ID, path)
			dc.Reused = true
			return dc, nil
		case err == nil:
			fmt.Fprintf(out, "demo: the public URL changed (%s, was %s): replacing the demo fintech client\n", publicURL, dc.PublicURL)
			if _, err := clients.RevokeClient(ctx, c.ID); err != nil {
				return dc, fmt.Errorf("revoke the old demo client: %w", err)
			}
		case tpp.ErrorCode(err) == tpp.EUnauthorized:
			fmt.Fprintf(out, "demo: the demo client in %s is unknown to this database: creating a new one\n", path)
		default:
			return dc, fmt.Errorf("check the demo client: %w", err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return dc, fmt.Errorf("read %s: %w", path, err)
	}

	c, secrets, err := clients.CreateClient(ctx, tpp.NewClient{Name: "Demo Fintech", ReturnURLs: []string{returnURL}, WebhookURL: hookURL})
	if err != nil {
		return dc, fmt.Errorf("create the demo fintech client: %w", err)
	}
	dc = Client{ClientID: c.ID, APIKey: secrets.APIKey, WebhookSecret: secrets.WebhookSecret, PublicURL: publicURL}
	b, err = json.MarshalIndent(dc, "", "  ")
	if err != nil {
		return dc, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return dc, err
	}
	// Write beside and rename, so a crash never leaves half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return dc, fmt.Errorf("save the demo client: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return dc, fmt.Errorf("save the demo client: %w", err)
	}
	fmt.Fprintf(out, "demo: created the demo fintech client \"Demo Fintech\" (%s); its API key is kept in %s (mode 0600)\n", c.ID, path)
	return dc, nil
}

// Welcome is what the welcome text shows.
type Welcome struct {
	Client     Client
	BankApp    string // the emulated bank's app page, if any
	MetricsURL string
	DataDir    string
}

// Print tells the person what to open and how to try the API.
func (d *Welcome) Print(w io.Writer, publicURL string) {
	publicURL = strings.TrimRight(publicURL, "/")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "demo: ready. Open in your browser:")
	fmt.Fprintf(w, "  Demo fintech app     %s/demo/\n", publicURL)
	fmt.Fprintf(w, "  API docs             %s/docs\n", publicURL)
	if d.BankApp != "" {
		fmt.Fprintf(w, "  bunq app (emulated)  %s\n", d.BankApp)
	}
	if d.MetricsURL != "" {
		fmt.Fprintf(w, "  Metrics              %s\n", d.MetricsURL)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "demo: API key of \"Demo Fintech\": %s\n", d.Client.APIKey)
	fmt.Fprintln(w, "demo: try the API: create a consent, open its authorize_url in your browser and approve it at the")
	fmt.Fprintln(w, "      emulated bunq; you come back to a page that shows the consent and the next command.")
	body := fmt.Sprintf(`{"user_ref":"curl-user","scopes":["accounts","payments","funds"],"return_url":"%s%s"}`, publicURL, ReturnPath)
	fmt.Fprintf(w, "  export TPP_API_KEY=%s\n", d.Client.APIKey)
	fmt.Fprintf(w, "  curl -s %s/v1/consents -H \"Authorization: Bearer $TPP_API_KEY\" -H 'Content-Type: application/json' -d '%s'\n", publicURL, body)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "demo: press Ctrl-C to stop. The data stays in %s; 'tpp demo --reset' starts fresh.\n", d.DataDir)
}
