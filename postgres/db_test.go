package postgres

import (
	"context"
	"sync"
	"testing"

	"github.com/bunqtpp/tpp/internal/pgtest"
)

// Replicas starting together on an empty schema migrate it once: the
// advisory lock serialises them and the second finds everything applied.
func TestOpenConcurrentlyMigratesOnce(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	ctx := context.Background()
	const replicas = 4
	dbs := make([]*DB, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dbs[i], errs[i] = Open(ctx, url, nil, Pool{MaxOpen: 2, MaxIdle: 1})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		defer dbs[i].Close()
	}
	var names []string
	if err := dbs[0].SelectContext(ctx, &names, `SELECT name FROM schema_migrations ORDER BY name`); err != nil {
		t.Fatal(err)
	}
	files, _ := migrations.ReadDir("migrations")
	if len(names) != len(files) || names[0] != "0001_init.sql" {
		t.Fatalf("applied %v, want one row per file of %d", names, len(files))
	}
}

// A transaction that loses a serialization conflict runs again instead of
// failing, and no update is lost: each reads a counter and writes it plus one.
func TestTxRetriesSerializationFailures(t *testing.T) {
	t.Parallel()
	db := openTestDB(t, nil)
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL);
		INSERT INTO counters VALUES (1, 0)`); err != nil {
		t.Fatal(err)
	}
	const workers, rounds = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				errs <- db.Tx(ctx, func(tx *Tx) error {
					var n int
					if err := tx.GetContext(ctx, &n, `SELECT n FROM counters WHERE id = 1`); err != nil {
						return err
					}
					_, err := tx.ExecContext(ctx, `UPDATE counters SET n = ? WHERE id = 1`, n+1)
					return err
				})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Tx: %v", err)
		}
	}
	var top int
	if err := db.GetContext(ctx, &top, `SELECT n FROM counters`); err != nil {
		t.Fatal(err)
	}
	if top != workers*rounds {
		t.Fatalf("counter = %d, want %d", top, workers*rounds)
	}
}
