package storage

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/bunqtpp/tpp"
)

// RekeyDatabase is `tpp rekey`: it re-seals every secret in the existing
// database db under the current key of masterKey (or only counts them, on
// a dry run) and prints a table by value and key id, then what to do next.
// It fails when a value does not open with the given keys.
func RekeyDatabase(ctx context.Context, db, masterKey string, dryRun bool, stdout io.Writer) error {
	kr, err := OpenKeyringFor(masterKey, db)
	if err != nil {
		return err
	}
	st, err := OpenExisting(ctx, db, tpp.SystemClock{}, kr)
	if err != nil {
		return err
	}
	defer st.Close()
	counts, err := st.Rekey(ctx, kr, dryRun)
	if err != nil {
		return err
	}
	moved := "RE-SEALED"
	if dryRun {
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
	case dryRun:
		fmt.Fprintf(stdout, "Dry run: nothing changed. Run without --dry-run to re-seal under %s.\n", cur)
	case changed > 0:
		fmt.Fprintf(stdout, "%d values changed while this ran (the service wrote them with its current key). Run again to check them.\n", changed)
	default:
		fmt.Fprintf(stdout, "Every sealed value in the database is now under %s. Keys other than %s can be removed from --master-key\n"+
			"once every process runs with %s first (keep retired keys offline while backups may need them).\n", cur, cur, cur)
	}
	return nil
}
