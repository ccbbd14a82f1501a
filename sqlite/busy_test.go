package sqlite

import (
	"context"
	"database/sql"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

// holdWriteLock takes the database's write lock from another connection
// (as another process would) until the returned func is called.
func holdWriteLock(t *testing.T, path string) func() {
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
	released := false
	release := func() {
		if !released {
			released = true
			_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
			conn.Close()
			other.Close()
		}
	}
	t.Cleanup(release)
	return release
}

// While another connection holds the write lock, the write probe fails
// within its short wait, and a write fails after the busy timeout with an
// error Busy recognises. Released, both work again.
func TestWriteLockHeldElsewhere(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	if err := f.db.ProbeWrite(ctx, 100*time.Millisecond); err != nil {
		t.Fatalf("probe on a free database: %v", err)
	}
	release := holdWriteLock(t, f.db.Path())
	if err := f.db.ProbeWrite(ctx, 100*time.Millisecond); err == nil || !Busy(err) {
		t.Fatalf("probe under a held lock: %v", err)
	}
	_, err := f.idem.PurgeIdempotency(ctx, f.clock.Now())
	if err == nil || !Busy(err) {
		t.Fatalf("write under a held lock: %v (Busy %v)", err, Busy(err))
	}
	release()
	if err := f.db.ProbeWrite(ctx, 100*time.Millisecond); err != nil {
		t.Fatalf("probe after release: %v", err)
	}
	if _, err := f.idem.PurgeIdempotency(ctx, f.clock.Now()); err != nil {
		t.Fatalf("write after release: %v", err)
	}
}
