package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/bunqtpp/tpp/storage"
)

// runRekey re-seals the database's secrets under the current master key.
func runRekey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return rekeyMain(ctx, args, stdout, stderr, os.Getenv)
}

func rekeyUsage(w io.Writer) {
	fmt.Fprint(w, `Usage:
  tpp rekey [--dry-run] [--db PATH] [--master-key KEYS]

Re-seals every secret sealed in the database (consents' OAuth access tokens,
fintech clients' webhook signing secrets, the registration's bunq context and
OAuth client secret) under the current master key: the first of --master-key.
The other keys must still be in the list, to open the old values. Afterwards
they can be removed. Safe to run while 'tpp serve' runs and to run again.
Redis values are not touched: see docs/OPERATIONS.md, Master keys.

Flags:
  --db PATH          SQLite database file ($TPP_DB_PATH, default data/tpp.db)
  --master-key KEYS  master keys, current first ($TPP_MASTER_KEY)
  --dry-run          only count the values by key id; change nothing

Exits non-zero when a value does not open with the given keys.
`)
}

func rekeyMain(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("tpp rekey", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { rekeyUsage(stderr) }
	var common storage.CLIFlags
	common.Register(fs, getenv)
	dryRun := fs.Bool("dry-run", false, "only count; change nothing")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return errUsage
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "tpp rekey: unexpected argument %q\n\n", fs.Arg(0))
		rekeyUsage(stderr)
		return errUsage
	}
	return storage.RekeyDatabase(ctx, common.DB, common.MasterKey, *dryRun, stdout)
}
