// Package postgres stores the TPP's durable state in PostgreSQL through sqlx
// and the pgx stdlib driver. It implements the same storage interfaces of
// the root package as package sqlite, with the same implementation
// (internal/sqlstore, given PostgreSQL's dialect in dialect.go) and the same
// behaviour (the shared cases in internal/storetest run against both), so
// several replicas of the service can share one database.
//
// Every write transaction runs at SERIALIZABLE isolation and is retried when
// PostgreSQL reports a serialization failure or deadlock: the services'
// read-check-write steps then behave as they do under SQLite's single
// writer. Work that replicas share (webhook deliveries) is claimed with
// FOR UPDATE SKIP LOCKED, so each delivery attempt goes to one replica.
package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/internal/sqlstore"
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

// lockTimeout bounds how long a statement waits for a lock (like SQLite's
// busy timeout): a write held up by a migration or a stray lock fails with
// lock_not_available, which Unavailable recognises, instead of hanging. A
// lock_timeout parameter in the URL overrides it.
const lockTimeout = "5s"

// DB is an open database. Its query methods take '?' placeholders, like
// package sqlite's, and rebind them to PostgreSQL's $n; its embedded
// *sqlx.DB (db.DB) takes $n.
type DB struct {
	*sqlstore.Store
}

// Tx is a write transaction (SERIALIZABLE, retried, from db.Tx) whose
// query methods take '?' placeholders.
type Tx = sqlstore.Tx

// Open connects to the database at url (postgres://…; search_path and
// other settings may be given as URL parameters) and applies the embedded
// migrations not yet applied, under an advisory lock so that replicas
// starting together migrate once. clock stamps every row this package
// writes; nil means the system clock.
func Open(ctx context.Context, url string, clock tpp.Clock, pool Pool) (*DB, error) {
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
	db := &DB{Store: sqlstore.New(sdb, dialect(), clock)}
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
