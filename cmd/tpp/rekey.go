package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/bunqtpp/tpp"
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
	var common clientsFlags
	common.register(fs, getenv)
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
	kr, err := openKeyringFor(common.masterKey, common.db)
	if err != nil {
		return err
	}
	st, err := openExistingCLIStore(ctx, common.db, tpp.SystemClock{}, kr)
	if err != nil {
		return err
	}
	defer st.close()
	counts, err := st.rekey(ctx, kr, *dryRun)
	if err != nil {
		return err
	}
	moved := "RE-SEALED"
	if *dryRun {
		moved = "TO RE-SEAL"
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "VALUE\tFOUND UNDER\t%s\tCURRENT\tUNREADABLE\tCHANGED MEANWHILE\n", moved)
	unreadable, changed := 0, 0
	for _, c := range counts {
		var found []string
		for _, id := range c.KeyIDs() {
			found = append(found, fmt.Sprintf("%s:%d", id, c.ByKey[id]))
		}
		if len(found) == 0 {
			found = []string{"-"}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\n", c.Name(), strings.Join(found, " "), c.Resealed, c.Current, c.Unreadable, c.Changed)
		unreadable += c.Unreadable
		changed += c.Changed
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	cur := kr.CurrentKeyID()
	switch {
	case unreadable > 0:
		return fmt.Errorf("%d sealed values do not open with the keys of --master-key (sealed under a key not in the list, or damaged; ids above): keep every key they need, and do not drop any key yet", unreadable)
	case *dryRun:
		fmt.Fprintf(stdout, "Dry run: nothing changed. Run without --dry-run to re-seal under %s.\n", cur)
	case changed > 0:
		fmt.Fprintf(stdout, "%d values changed while this ran (the service wrote them with its current key). Run again to check them.\n", changed)
	default:
		fmt.Fprintf(stdout, "Every sealed value in the database is now under %s. Keys other than %s can be removed from --master-key\n"+
			"once every process runs with %s first (keep retired keys offline while backups may need them).\n", cur, cur, cur)
	}
	return nil
}
