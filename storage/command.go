package storage

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
)

// ErrUsage is the commands' answer to a command line they could not parse;
// the usage text has been printed.
var ErrUsage = errors.New("usage")

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

// RekeyCommand is 'tpp rekey': it parses its flags (defaults from getenv)
// and runs RekeyDatabase.
func RekeyCommand(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("tpp rekey", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { rekeyUsage(stderr) }
	var common CLIFlags
	common.Register(fs, getenv)
	dryRun := fs.Bool("dry-run", false, "only count; change nothing")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return ErrUsage
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "tpp rekey: unexpected argument %q\n\n", fs.Arg(0))
		rekeyUsage(stderr)
		return ErrUsage
	}
	return RekeyDatabase(ctx, common.DB, common.MasterKey, *dryRun, stdout)
}

func migrateUsage(w io.Writer) {
	fmt.Fprint(w, `Usage:
  tpp migrate [--from PATH] --to postgres://…

Copies every record of a SQLite database into PostgreSQL (applying the
PostgreSQL migrations first): clients, consents, payments and their history,
idempotency records, the audit log, webhook events and deliveries, the
registration and the close queue. Sealed values are copied as they are, so
the same --master-key opens them. Then it compares the row counts and a
sample of rows. Safe to run again: rows already copied are brought up to
date, none is duplicated. Stop 'tpp serve' on SQLite before the last run.

Flags:
  --from PATH  SQLite database file ($TPP_DB_PATH, default data/tpp.db)
  --to URL     PostgreSQL URL ($TPP_DB_URL)
`)
}

// MigrateCommand is 'tpp migrate': it parses its flags (defaults from
// getenv) and runs MigrateToPostgres.
func MigrateCommand(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("tpp migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { migrateUsage(stderr) }
	from := fs.String("from", envOr(getenv, "TPP_DB_PATH", "data/tpp.db"), "SQLite database file")
	to := fs.String("to", getenv("TPP_DB_URL"), "PostgreSQL URL")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return ErrUsage
	}
	if fs.NArg() != 0 || !IsPostgresURL(*to) {
		fmt.Fprint(stderr, "tpp migrate: --to must be a postgres:// URL\n\n")
		migrateUsage(stderr)
		return ErrUsage
	}
	return MigrateToPostgres(ctx, *from, *to, stdout)
}

// envOr returns the variable's value, or def when it is unset or empty.
func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}
