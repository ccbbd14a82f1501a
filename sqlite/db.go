// Package sqlite stores the TPP's durable state (fintech clients, consents,
// payments, idempotency records, the audit log and the webhook outbox) in a
// SQLite file through sqlx and go-sqlite3. It implements the storage
// interfaces of the root package with internal/sqlstore, the stores'
// one implementation; this package opens the file, applies its migrations
// and gives sqlstore SQLite's dialect (dialect.go).
//
// The file runs in WAL mode, so readers never block the single writer, with
// foreign keys on. Every write runs in a BEGIN IMMEDIATE transaction: the write
// lock is taken at BEGIN, where the busy timeout applies, instead of at the
// first write, where a lock upgrade could fail at once with SQLITE_BUSY.
package sqlite

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/jmoiron/sqlx"
	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// busyTimeoutMS is how long a writer waits for the lock before SQLITE_BUSY.
// It is far above any single transaction of ours, so it only bites when the
// file is wedged.
const busyTimeoutMS = 5000

// DB is an open database. Its embedded *sqlx.DB (db.DB) serves callers
// that add their own queries.
type DB struct {
	*sqlstore.Store
	path string
}

// Open opens (creating if needed) the database file at path, creates its
// parent directory, and applies the embedded migrations not yet applied.
// clock stamps every row this package writes; nil means the system clock.
func Open(ctx context.Context, path string, clock tpp.Clock) (*DB, error) {
	if path == "" {
		return nil, errors.New("sqlite: database path is empty")
	}
	// go-sqlite3 cuts the DSN at the first '?', and ":memory:" or "file:"
	// names would bypass the settings below.
	if strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") || strings.HasPrefix(path, ":") {
		return nil, fmt.Errorf("sqlite: database path %q must be a plain file path", path)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("sqlite: create directory for %s: %w", path, err)
		}
	}
	// The file holds sealed secrets and key hashes: create it private.
	// SQLite gives the -wal and -shm files the same mode.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	q := url.Values{}
	q.Set("_txlock", "immediate")
	q.Set("_fk", "1")
	q.Set("_journal_mode", "WAL")
	q.Set("_busy_timeout", fmt.Sprint(busyTimeoutMS))
	q.Set("_synchronous", "NORMAL")
	// Each pooled connection keeps its prepared statements: the API's hot
	// reads (key lookup, consent) then skip SQLite's parser.
	q.Set("_stmt_cache_size", "64")
	sdb, err := sqlx.Open("sqlite3", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db := &DB{Store: sqlstore.New(sdb, dialect(), clock), path: path}
	if err := db.check(ctx); err != nil {
		sdb.Close()
		return nil, err
	}
	if err := db.migrate(ctx); err != nil {
		sdb.Close()
		return nil, err
	}
	return db, nil
}

// check fails closed when the connection settings did not take: a database
// without foreign keys or WAL would quietly behave differently.
func (db *DB) check(ctx context.Context) error {
	var mode string
	if err := db.GetContext(ctx, &mode, "PRAGMA journal_mode"); err != nil {
		return fmt.Errorf("sqlite: open %s: %w", db.path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("sqlite: %s: journal_mode is %q, want wal", db.path, mode)
	}
	var fk int
	if err := db.GetContext(ctx, &fk, "PRAGMA foreign_keys"); err != nil {
		return fmt.Errorf("sqlite: %s: %w", db.path, err)
	}
	if fk != 1 {
		return fmt.Errorf("sqlite: %s: foreign keys are off", db.path)
	}
	return nil
}

// Path returns the file the database was opened from.
func (db *DB) Path() string { return db.path }

// Tx is a write transaction (BEGIN IMMEDIATE, from db.Tx).
type Tx = sqlstore.Tx

// migrate applies, in name order, each embedded migration not yet recorded
// in schema_migrations. Each runs in its own transaction together with its
// record, so a failed migration leaves no trace and is retried next time.
func (db *DB) migrate(ctx context.Context) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name       TEXT PRIMARY KEY,
		applied_at TEXT NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("sqlite: create schema_migrations: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("sqlite: list migrations: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		body, err := migrations.ReadFile(name)
		if err != nil {
			return fmt.Errorf("sqlite: read migration %s: %w", name, err)
		}
		base := filepath.Base(name)
		err = db.Tx(ctx, func(tx *Tx) error {
			var n int
			if err := tx.GetContext(ctx, &n, `SELECT COUNT(*) FROM schema_migrations WHERE name = ?`, base); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)`,
				base, sqlstore.FormatTextTime(db.Now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("sqlite: migration %s: %w", base, err)
		}
	}
	return nil
}
