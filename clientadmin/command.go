package clientadmin

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/storage"
)

// ErrUsage is Command's answer to a command line it could not parse; the
// usage text has been printed.
var ErrUsage = errors.New("usage")

func usage(w io.Writer) {
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

// Command is 'tpp clients': it parses the subcommand and its flags (which
// may come before or after the client id) and runs it.
func Command(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		usage(stderr)
		return ErrUsage
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "-h", "--help", "help":
		usage(stderr)
		return nil
	case "create", "list", "revoke", "rotate-key":
	default:
		fmt.Fprintf(stderr, "tpp clients: unknown subcommand %q\n\n", sub)
		usage(stderr)
		return ErrUsage
	}

	fs := flag.NewFlagSet("tpp clients "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { usage(stderr) }
	var common storage.CLIFlags
	common.Register(fs, getenv)
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
		return ErrUsage
	}
	wantPos := 0
	if sub == "revoke" || sub == "rotate-key" {
		wantPos = 1
	}
	if len(pos) != wantPos {
		fmt.Fprintf(stderr, "tpp clients %s: expected %d argument(s), got %d\n\n", sub, wantPos, len(pos))
		usage(stderr)
		return ErrUsage
	}

	cmd := Request{Sub: sub, DB: common.DB, MasterKey: common.MasterKey,
		New: tpp.NewClient{Name: name, ReturnURLs: returnURLs, WebhookURL: webhookURL}}
	if wantPos == 1 {
		cmd.ClientID = pos[0]
	}
	return Run(ctx, cmd, stdout)
}
