package postgres

import (
	"context"
	"database/sql"
	"sync"
	"testing"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/internal/pgtest"
	"github.com/bunqtpp/tpp/internal/storetest"
	"github.com/bunqtpp/tpp/pisp"
	"github.com/bunqtpp/tpp/seal"
)

// openTestDB opens a fresh schema for t.
func openTestDB(t testing.TB, clock tpp.Clock) *DB {
	t.Helper()
	db, err := Open(context.Background(), pgtest.URL(t), clock, Pool{MaxOpen: 8, MaxIdle: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// The poller's schedule is this store's too: pisp.New takes the payment
// service as its PollQueue.
var _ pisp.PollQueue = (*PaymentService)(nil)

// openStores opens a fresh schema for t with every service over it.
func openStores(t testing.TB, clock tpp.Clock, kr *seal.Keyring) storetest.Stores {
	t.Helper()
	url := pgtest.URL(t)
	db, err := Open(context.Background(), url, clock, Pool{MaxOpen: 8, MaxIdle: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return storetest.SQLStores(db.Store, kr, storetest.Stores{
		ProbeWrite:    db.ProbeWrite,
		Unavailable:   Unavailable,
		HoldWriteLock: func(t testing.TB) func() { return holdWriteLock(t, url) },
	})
}

// holdWriteLock locks idempotency_records against every write from another
// connection (as a migration or a stray session would) until the returned
// func is called.
func holdWriteLock(t testing.TB, url string) func() {
	t.Helper()
	other, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := other.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`LOCK TABLE idempotency_records IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release := func() {
		once.Do(func() {
			_ = tx.Rollback()
			other.Close()
		})
	}
	t.Cleanup(release)
	return release
}

// TestStore runs the behaviour every store shows (internal/storetest).
func TestStore(t *testing.T) {
	t.Parallel()
	pgtest.Require(t)
	storetest.Run(t, openStores)
}
