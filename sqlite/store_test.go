package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/internal/storetest"
	"github.com/bunqtpp/tpp/seal"
)

// openStores opens a fresh database file for t with every service over it.
func openStores(t testing.TB, clock tpp.Clock, kr *seal.Keyring) storetest.Stores {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "tpp.db"), clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return storetest.SQLStores(db.Store, kr, storetest.Stores{
		ProbeWrite:    db.ProbeWrite,
		Unavailable:   Busy,
		HoldWriteLock: func(t testing.TB) func() { return holdWriteLock(t, db.Path()) },
	})
}

// holdWriteLock takes the database's write lock from another connection
// (as another process would) until the returned func is called.
func holdWriteLock(t testing.TB, path string) func() {
	t.Helper()
	other, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release := func() {
		once.Do(func() {
			_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
			conn.Close()
			other.Close()
		})
	}
	t.Cleanup(release)
	return release
}

// TestStore runs the behaviour every store shows (internal/storetest).
func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, openStores)
}
