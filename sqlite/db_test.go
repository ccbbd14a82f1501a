package sqlite

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bunqtpp/tpp/internal/storetest"
)

// fixedClock is a settable clock for tests.
type fixedClock = storetest.Clock

func newClock() *fixedClock { return storetest.NewClock() }

func openTestDB(t testing.TB, clock *fixedClock) *DB {
	t.Helper()
	if clock == nil {
		clock = newClock()
	}
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "sub", "tpp.db"), clock)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestOpenSettingsAndMigrations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a", "b", "tpp.db")
	db, err := Open(ctx, path, newClock())
	if err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := db.GetContext(ctx, &mode, "PRAGMA journal_mode"); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}
	var fk, sync, busy int
	db.GetContext(ctx, &fk, "PRAGMA foreign_keys")
	db.GetContext(ctx, &sync, "PRAGMA synchronous")
	db.GetContext(ctx, &busy, "PRAGMA busy_timeout")
	if fk != 1 || sync != 1 || busy != busyTimeoutMS {
		t.Fatalf("foreign_keys=%d synchronous=%d busy_timeout=%d; want 1, 1 (NORMAL), %d", fk, sync, busy, busyTimeoutMS)
	}
	for _, p := range []string{path, path + "-wal"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %v, want 0600", p, st.Mode().Perm())
		}
	}
	var applied []string
	if err := db.SelectContext(ctx, &applied, "SELECT name FROM schema_migrations ORDER BY name"); err != nil {
		t.Fatal(err)
	}
	if len(applied) == 0 || applied[0] != "0001_init.sql" {
		t.Fatalf("applied migrations = %v", applied)
	}
	db.Close()

	// Reopening applies nothing twice.
	db, err = Open(ctx, path, newClock())
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	var again []string
	db.SelectContext(ctx, &again, "SELECT name FROM schema_migrations ORDER BY name")
	if len(again) != len(applied) {
		t.Fatalf("after reopen migrations = %v, want %v", again, applied)
	}
}

func TestOpenRejectsSpecialPaths(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"", ":memory:", "file:x.db", "x.db?mode=memory"} {
		if db, err := Open(context.Background(), p, nil); err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded; want an error", p)
		}
	}
}

func TestForeignKeysEnforced(t *testing.T) {
	t.Parallel()
	db := openTestDB(t, nil)
	err := db.Tx(context.Background(), func(tx *Tx) error {
		_, err := tx.Exec(`INSERT INTO webhook_events (id, client_id, type, payload, created_at)
			VALUES ('evt_1', 'cli_missing', 't', '{}', 'x')`)
		return err
	})
	if err == nil {
		t.Fatal("insert referencing a missing client succeeded")
	}
}

func TestTxRollsBackOnErrorAndPanic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTestDB(t, nil)
	if _, err := db.Exec(`CREATE TABLE t (v INTEGER) STRICT`); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := db.Tx(ctx, func(tx *Tx) error {
		if _, err := tx.Exec(`INSERT INTO t VALUES (1)`); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Tx error = %v, want boom", err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("panic was swallowed")
			}
		}()
		db.Tx(ctx, func(tx *Tx) error {
			tx.Exec(`INSERT INTO t VALUES (2)`)
			panic("kaboom")
		})
	}()
	if err := db.Tx(ctx, func(tx *Tx) error {
		_, err := tx.Exec(`INSERT INTO t VALUES (3)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var vals []int
	db.Select(&vals, `SELECT v FROM t ORDER BY v`)
	if len(vals) != 1 || vals[0] != 3 {
		t.Fatalf("rows = %v, want [3]", vals)
	}
}

// TestConcurrentWriters checks that 20 goroutines doing read-modify-write
// transactions all succeed (no SQLITE_BUSY) and none loses an update.
func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTestDB(t, nil)
	if _, err := db.Exec(`CREATE TABLE counter (n INTEGER NOT NULL) STRICT; INSERT INTO counter VALUES (0)`); err != nil {
		t.Fatal(err)
	}
	const writers, each = 20, 10
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < each; j++ {
				err := db.Tx(ctx, func(tx *Tx) error {
					var n int
					if err := tx.Get(&n, `SELECT n FROM counter`); err != nil {
						return err
					}
					_, err := tx.Exec(`UPDATE counter SET n = ?`, n+1)
					return err
				})
				if err != nil {
					failed.Add(1)
					t.Errorf("writer: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	var n int
	db.Get(&n, `SELECT n FROM counter`)
	if n != writers*each || failed.Load() != 0 {
		t.Fatalf("counter = %d, failures = %d; want %d, 0", n, failed.Load(), writers*each)
	}
}
