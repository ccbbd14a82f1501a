package storage

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/postgres"
)

// MigrateToPostgres is `tpp migrate`: it copies every record of the SQLite
// database at from into the PostgreSQL database at the URL to, prints the
// row counts per table and says when they and a sample of rows match.
func MigrateToPostgres(ctx context.Context, from, to string, stdout io.Writer) error {
	if _, err := os.Stat(from); err != nil {
		return fmt.Errorf("--from %s: %w", from, err)
	}
	src, err := OpenSQLite(ctx, from, tpp.SystemClock{})
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := postgres.Open(ctx, to, tpp.SystemClock{}, postgres.Pool{MaxOpen: 4, MaxIdle: 4})
	if err != nil {
		return fmt.Errorf("--to: %w", err) // the URL may hold a password: not echoed
	}
	defer dst.Close()
	counts, err := postgres.CopyFrom(ctx, src.DB, dst)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "table\tsqlite\tpostgres\tcopied")
	for _, n := range counts {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", n.Table, n.Source, n.Target, n.Copied)
	}
	tw.Flush()
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "verified: row counts and a sample of rows match")
	return nil
}
