// Package postgres stores the TPP's durable state in PostgreSQL through sqlx
// and the pgx stdlib driver. It implements the same storage interfaces of
// the root package as package sqlite, with the same behaviour (the shared
// cases in internal/storetest run against both), so several replicas of the
// service can share one database.
//
// Every write transaction runs at SERIALIZABLE isolation and is retried when
// PostgreSQL reports a serialization failure or deadlock: the services'
// read-check-write steps then behave as they do under SQLite's single
// writer. Work that replicas share (webhook deliveries) is claimed with
// FOR UPDATE SKIP LOCKED, so each delivery attempt goes to one replica.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"

	"github.com/bunqtpp/tpp"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Pool sets the connection pool. The zero value means DefaultPool.
type Pool struct {
	MaxOpen     int           // connections open at most
	MaxIdle     int           // idle connections kept
	MaxLifetime time.Duration // a connection is closed after this long
}

// DefaultPool suits one replica of the service on a small database server.
var DefaultPool = Pool{MaxOpen: 20, MaxIdle: 10, MaxLifetime: 30 * time.Minute}

// maxTxAttempts bounds the retries of a transaction that lost a
// serialization conflict; past it the caller gets the error, which (like
// SQLite's SQLITE_BUSY after its timeout) is an internal error.
const maxTxAttempts = 20

// lockTimeout bounds how long a statement waits for a lock (like SQLite's
// busy timeout): a write held up by a migration or a stray lock fails with
// lock_not_available, which Unavailable recognises, instead of hanging. A
// lock_timeout parameter in the URL overrides it.
const lockTimeout = "5s"

// DB is an open database. Its query methods take '?' placeholders, like
// package sqlite's, and rebind them to PostgreSQL's $n.
type DB struct {
	*sqlx.DB
	clock tpp.Clock
}

// Open connects to the database at url (postgres://…; search_path and
// other settings may be given as URL parameters) and applies the embedded
// migrations not yet applied, under an advisory lock so that replicas
// starting together migrate once. clock stamps every row this package
// writes; nil means the system clock.
func Open(ctx context.Context, url string, clock tpp.Clock, pool Pool) (*DB, error) {
	if clock == nil {
		clock = tpp.SystemClock{}
	}
	if pool == (Pool{}) {
		pool = DefaultPool
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if _, ok := cfg.RuntimeParams["lock_timeout"]; !ok {
		cfg.RuntimeParams["lock_timeout"] = lockTimeout
	}
	sdb := sqlx.NewDb(stdlib.OpenDB(*cfg), "pgx")
	sdb.SetMaxOpenConns(pool.MaxOpen)
	sdb.SetMaxIdleConns(pool.MaxIdle)
	sdb.SetConnMaxLifetime(pool.MaxLifetime)
	db := &DB{DB: sdb, clock: clock}
	if err := sdb.PingContext(ctx); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := db.migrate(ctx); err != nil {
		sdb.Close()
		return nil, err
	}
	return db, nil
}

// Close closes the pool.
func (db *DB) Close() error { return db.DB.Close() }

// Now returns the time of the database's clock, in UTC and truncated to
// the microsecond that timestamptz keeps.
func (db *DB) Now() time.Time { return db.clock.Now().UTC().Truncate(time.Microsecond) }

// ExecContext runs a statement with '?' placeholders.
func (db *DB) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return db.DB.ExecContext(ctx, db.Rebind(q), args...)
}

// GetContext reads one row into dest.
func (db *DB) GetContext(ctx context.Context, dest any, q string, args ...any) error {
	return db.DB.GetContext(ctx, dest, db.Rebind(q), args...)
}

// SelectContext reads rows into dest.
func (db *DB) SelectContext(ctx context.Context, dest any, q string, args ...any) error {
	return db.DB.SelectContext(ctx, dest, db.Rebind(q), args...)
}

// QueryContext runs a query.
func (db *DB) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return db.DB.QueryContext(ctx, db.Rebind(q), args...)
}

// QueryxContext runs a query.
func (db *DB) QueryxContext(ctx context.Context, q string, args ...any) (*sqlx.Rows, error) {
	return db.DB.QueryxContext(ctx, db.Rebind(q), args...)
}

// QueryRowxContext runs a query returning one row.
func (db *DB) QueryRowxContext(ctx context.Context, q string, args ...any) *sqlx.Row {
	return db.DB.QueryRowxContext(ctx, db.Rebind(q), args...)
}

// Exec runs a statement with '?' placeholders.
func (db *DB) Exec(q string, args ...any) (sql.Result, error) {
	return db.ExecContext(context.Background(), q, args...)
}

// Get reads one row into dest.
func (db *DB) Get(dest any, q string, args ...any) error {
	return db.GetContext(context.Background(), dest, q, args...)
}

// Select reads rows into dest.
func (db *DB) Select(dest any, q string, args ...any) error {
	return db.SelectContext(context.Background(), dest, q, args...)
}

// Tx is a write transaction whose query methods take '?' placeholders.
type Tx struct{ *sqlx.Tx }

// ExecContext runs a statement.
func (tx *Tx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return tx.Tx.ExecContext(ctx, tx.Rebind(q), args...)
}

// GetContext reads one row into dest.
func (tx *Tx) GetContext(ctx context.Context, dest any, q string, args ...any) error {
	return tx.Tx.GetContext(ctx, dest, tx.Rebind(q), args...)
}

// SelectContext reads rows into dest.
func (tx *Tx) SelectContext(ctx context.Context, dest any, q string, args ...any) error {
	return tx.Tx.SelectContext(ctx, dest, tx.Rebind(q), args...)
}

// QueryContext runs a query.
func (tx *Tx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return tx.Tx.QueryContext(ctx, tx.Rebind(q), args...)
}

// QueryxContext runs a query.
func (tx *Tx) QueryxContext(ctx context.Context, q string, args ...any) (*sqlx.Rows, error) {
	return tx.Tx.QueryxContext(ctx, tx.Rebind(q), args...)
}

// QueryRowxContext runs a query returning one row.
func (tx *Tx) QueryRowxContext(ctx context.Context, q string, args ...any) *sqlx.Row {
	return tx.Tx.QueryRowxContext(ctx, tx.Rebind(q), args...)
}

// Tx runs fn in a SERIALIZABLE transaction. It commits when fn returns nil
// and rolls back when fn returns an error or panics (the panic is then
// re-raised). A serialization failure or deadlock runs fn again, so fn must
// set its results afresh on each run.
func (db *DB) Tx(ctx context.Context, fn func(tx *Tx) error) error {
	var err error
	for attempt := 1; attempt <= maxTxAttempts; attempt++ {
		if err = db.tx(ctx, fn); !retryable(err) {
			return err
		}
		t := time.NewTimer(retryDelay(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return fmt.Errorf("postgres: transaction lost %d serialization conflicts: %w", maxTxAttempts, err)
}

// retryDelay is the pause before attempt+1: exponential from 1 ms, capped
// at 100 ms, with full jitter so that the losers of one conflict do not
// collide again in step.
func retryDelay(attempt int) time.Duration {
	d := min(time.Millisecond<<min(attempt, 7), 100*time.Millisecond)
	return time.Duration(rand.Int64N(int64(d))) + time.Millisecond
}

func (db *DB) tx(ctx context.Context, fn func(tx *Tx) error) (err error) {
	stx, err := db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable})
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	tx := &Tx{stx}
	defer func() {
		if p := recover(); p != nil {
			_ = stx.Rollback()
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		_ = stx.Rollback()
		return err
	}
	if err := stx.Commit(); err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}
	return nil
}

// retryable reports a serialization failure or a deadlock: the transaction
// lost a race and may simply run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// isUnique reports whether err is a UNIQUE or PRIMARY KEY violation.
func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// uniqueOn reports whether err is a violation of the named unique index.
func uniqueOn(err error, index string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == index
}

// migrate applies, in name order, each embedded migration not yet recorded
// in schema_migrations, holding a session advisory lock (keyed by the
// schema) so that concurrent starts apply each migration once. Each runs in
// its own transaction together with its record. A new migration is one new
// file in migrations/.
func (db *DB) migrate(ctx context.Context) error {
	conn, err := db.Connx(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	defer conn.Close()
	const lockKey = `hashtext('tpp-migrate:' || current_schema())`
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(`+lockKey+`)`); err != nil {
		return fmt.Errorf("postgres: migration lock: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(`+lockKey+`)`) //nolint:errcheck // the session ends with the connection anyway
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name       text PRIMARY KEY,
		applied_at timestamptz NOT NULL
	)`); err != nil {
		return fmt.Errorf("postgres: create schema_migrations: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("postgres: list migrations: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := db.apply(ctx, conn, name); err != nil {
			return fmt.Errorf("postgres: migration %s: %w", path.Base(name), err)
		}
	}
	return nil
}

func (db *DB) apply(ctx context.Context, conn *sqlx.Conn, name string) error {
	body, err := migrations.ReadFile(name)
	if err != nil {
		return err
	}
	base := path.Base(name)
	tx, err := conn.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op
	var n int
	if err := tx.GetContext(ctx, &n, `SELECT COUNT(*) FROM schema_migrations WHERE name = $1`, base); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name, applied_at) VALUES ($1, $2)`, base, db.Now()); err != nil {
		return err
	}
	return tx.Commit()
}
