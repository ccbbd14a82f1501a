package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/clientadmin"
	"github.com/bunqtpp/tpp/storage"
)

// runClients manages fintech API clients: tpp clients create|list|revoke|rotate-key.
func runClients(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return clientsMain(ctx, args, stdout, stderr, os.Getenv)
}

func clientsUsage(w io.Writer) {
	fmt.Fprint(w, `Usage:
  tpp clients create --name NAME --return-url URL [--return-url URL...] [--webhook-url URL]
  tpp clients list
  tpp clients revoke CLIENT_ID
  tpp clients rotate-key CLIENT_ID

Every subcommand takes:
  --db PATH          SQLite database file ($TPP_DB_PATH, default data/tpp.db)
  --master-key KEYS  master keys sealing secrets at rest ($TPP_MASTER_KEY);
                     required by create, which seals the webhook signing secret

URLs must be absolute https:// URLs without a fragment; http:// is allowed
for localhost and 127.0.0.1 only. Return URLs are matched exactly.
`)
}

// urlList is a repeatable string flag.
type urlList []string

func (s *urlList) String() string     { return strings.Join(*s, ",") }
func (s *urlList) Set(v string) error { *s = append(*s, v); return nil }

// clientsFlags are the settings every subcommand takes.
type clientsFlags struct {
	db, masterKey string
}

func (c *clientsFlags) register(fs *flag.FlagSet, getenv func(string) string) {
	fs.StringVar(&c.db, "db", storage.CLIDefault(getenv), "SQLite database file or postgres:// URL ($TPP_DB_URL, $TPP_DB_PATH)")
	fs.StringVar(&c.masterKey, "master-key", getenv("TPP_MASTER_KEY"), "master keys, \"id:hex\" items ($TPP_MASTER_KEY)")
}

// parseInterspersed parses flags that may come before or after positional
// arguments ("revoke ID --db x" as well as "revoke --db x ID").
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func clientsMain(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		clientsUsage(stderr)
		return errUsage
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "-h", "--help", "help":
		clientsUsage(stderr)
		return nil
	case "create", "list", "revoke", "rotate-key":
	default:
		fmt.Fprintf(stderr, "tpp clients: unknown subcommand %q\n\n", sub)
		clientsUsage(stderr)
		return errUsage
	}

	fs := flag.NewFlagSet("tpp clients "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { clientsUsage(stderr) }
	var common clientsFlags
	common.register(fs, getenv)
	var name, webhookURL string
	var returnURLs urlList
	if sub == "create" {
		fs.StringVar(&name, "name", "", "client name")
		fs.Var(&returnURLs, "return-url", "return URL (repeatable)")
		fs.StringVar(&webhookURL, "webhook-url", "", "webhook URL (optional)")
	}
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return errUsage
	}
	wantPos := 0
	if sub == "revoke" || sub == "rotate-key" {
		wantPos = 1
	}
	if len(pos) != wantPos {
		fmt.Fprintf(stderr, "tpp clients %s: expected %d argument(s), got %d\n\n", sub, wantPos, len(pos))
		clientsUsage(stderr)
		return errUsage
	}

	cmd := clientadmin.Command{Sub: sub, DB: common.db, MasterKey: common.masterKey,
		New: tpp.NewClient{Name: name, ReturnURLs: returnURLs, WebhookURL: webhookURL}}
	if wantPos == 1 {
		cmd.ClientID = pos[0]
	}
	return clientadmin.Run(ctx, cmd, stdout)
}
