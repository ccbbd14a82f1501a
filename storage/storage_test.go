package storage

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bunqtpp/tpp"
)

// A plain path is SQLite and a missing file is refused by OpenExisting,
// naming the path; Open creates it, with every store and both checks.
func TestOpenSQLiteAndRefuseMissingFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tpp.db")
	if IsPostgresURL(path) || !IsPostgresURL("postgresql://db/tpp") {
		t.Fatal("IsPostgresURL misreads a path or a URL")
	}
	if _, err := OpenExisting(ctx, path, tpp.SystemClock{}, nil); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("OpenExisting on a missing file: %v", err)
	}
	st, err := OpenCLI(ctx, path, tpp.SystemClock{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.Kind != "sqlite" || st.Clients == nil || st.Consents == nil || st.Registrations == nil || len(st.Checks) != 2 {
		t.Fatalf("stores = %+v", st)
	}
	for _, c := range st.Checks {
		if err := c.Fn(ctx); err != nil {
			t.Errorf("check %s: %v", c.Name, err)
		}
	}
	if again, err := OpenExisting(ctx, path, tpp.SystemClock{}, nil); err != nil {
		t.Fatalf("OpenExisting after Open: %v", err)
	} else {
		again.Close()
	}
}
