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

// runMigrate copies a SQLite database into PostgreSQL.
func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return migrateMain(ctx, args, stdout, stderr, os.Getenv)
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

func migrateMain(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("tpp migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { migrateUsage(stderr) }
	from := fs.String("from", envOr(getenv, "TPP_DB_PATH", "data/tpp.db"), "SQLite database file")
	to := fs.String("to", getenv("TPP_DB_URL"), "PostgreSQL URL")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return errUsage
	}
	if fs.NArg() != 0 || !storage.IsPostgresURL(*to) {
		fmt.Fprint(stderr, "tpp migrate: --to must be a postgres:// URL\n\n")
		migrateUsage(stderr)
		return errUsage
	}
	return storage.MigrateToPostgres(ctx, *from, *to, stdout)
}

// envOr returns the variable's value, or def when it is unset or empty.
func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}
