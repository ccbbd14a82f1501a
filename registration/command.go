package registration

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/storage"
)

// ErrUsage is Command's answer to a command line it could not parse; the
// usage text has been printed.
var ErrUsage = errors.New("usage")

func usage(w io.Writer) {
	fmt.Fprint(w, `Usage:
  tpp register --env ENV --cert FILE --key FILE --chain FILE --public-url URL [--permitted-ips IPS]
  tpp register --status [--env ENV]

Registers this TPP with bunq: installation, PSD2 credential (certificate),
device, session, OAuth client, OAuth callback URL (<public-url>/oauth/callback)
and notification filters for OAUTH and DRAFT_PAYMENT (<public-url>/bank/callbacks).
Running it again reuses the registration: it renews the session if needed,
adds what is missing and never creates duplicates.

Flags (environment variable in brackets):
  --env ENV            sandbox, production, or a bunq API base URL such as the
                       emulated sandbox's http://127.0.0.1:5000 ($TPP_BUNQ_ENV)
  --cert, --key, --chain FILE
                       QSeal certificate, its key and chain, PEM
                       ($TPP_CERT_FILE, $TPP_KEY_FILE, $TPP_CHAIN_FILE)
  --db PATH            SQLite database ($TPP_DB_PATH, default data/tpp.db)
  --master-key KEYS    master keys sealing secrets at rest ($TPP_MASTER_KEY)
  --public-url URL     where browsers and the bank reach this TPP ($TPP_PUBLIC_URL)
  --permitted-ips IPS  comma-separated IPs for the device registration; empty
                       binds the calling IP, "*" any IP ($TPP_PERMITTED_IPS)
  --status             show what is registered instead of registering
`)
}

type commandFlags struct {
	env, cert, key, chain, db, masterKey, publicURL, permittedIPs string
	status                                                        bool
}

// Command is 'tpp register': it parses its flags (defaults from getenv)
// and registers this TPP with bunq, or shows the registration with
// --status, in the database of --db.
func Command(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string, clock tpp.Clock) error {
	fs := flag.NewFlagSet("tpp register", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { usage(stderr) }
	var f commandFlags
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&f.env, "env", env("TPP_BUNQ_ENV", ""), "bunq environment ($TPP_BUNQ_ENV)")
	fs.StringVar(&f.env, "bank", env("TPP_BUNQ_ENV", ""), "alias of --env")
	fs.StringVar(&f.cert, "cert", env("TPP_CERT_FILE", ""), "certificate ($TPP_CERT_FILE)")
	fs.StringVar(&f.key, "key", env("TPP_KEY_FILE", ""), "certificate key ($TPP_KEY_FILE)")
	fs.StringVar(&f.chain, "chain", env("TPP_CHAIN_FILE", ""), "certificate chain ($TPP_CHAIN_FILE)")
	fs.StringVar(&f.db, "db", storage.CLIDefault(getenv), "SQLite database or postgres:// URL ($TPP_DB_URL, $TPP_DB_PATH)")
	fs.StringVar(&f.masterKey, "master-key", getenv("TPP_MASTER_KEY"), "master keys ($TPP_MASTER_KEY)")
	fs.StringVar(&f.publicURL, "public-url", env("TPP_PUBLIC_URL", ""), "public base URL ($TPP_PUBLIC_URL)")
	fs.StringVar(&f.permittedIPs, "permitted-ips", env("TPP_PERMITTED_IPS", ""), "device permitted IPs ($TPP_PERMITTED_IPS)")
	fs.BoolVar(&f.status, "status", false, "show the registration")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return ErrUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tpp register: unexpected argument %q\n\n", fs.Arg(0))
		usage(stderr)
		return ErrUsage
	}

	apiBase := ""
	if f.env != "" || !f.status {
		var err error
		if apiBase, err = ResolveEnv(f.env); err != nil {
			return err
		}
	}
	// The master key first: nothing is touched without it.
	kr, err := storage.OpenKeyringFor(f.masterKey, f.db)
	if err != nil {
		return err
	}
	open := storage.OpenCLI
	if f.status {
		open = storage.OpenExisting // showing never creates a database
	}
	st, err := open(ctx, f.db, clock, kr)
	if err != nil {
		return err
	}
	defer st.Close()
	store := st.Registrations
	if f.status {
		return Status(ctx, store, apiBase, clock.Now(), stdout)
	}
	return Register(ctx, store, clock, stdout, Request{
		Env: f.env, APIBase: apiBase, Cert: f.cert, Key: f.key, Chain: f.chain,
		PublicURL: f.publicURL, PermittedIPs: f.permittedIPs,
	})
}
