// Package storage opens the configured database, SQLite or PostgreSQL, and
// builds every store the service needs on it, with the readiness checks
// that say whether it can be read and written.
package storage

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/health"
	"github.com/bunqtpp/tpp/postgres"
	"github.com/bunqtpp/tpp/seal"
	"github.com/bunqtpp/tpp/sqlite"
)

// ConsentStore is what the service needs of the consent store: the
// consent service, the janitor's close queue and the single-payment lookup.
type ConsentStore interface {
	tpp.ConsentService
	QueueClose(ctx context.Context, consentID, reason string) error
	PendingCloses(ctx context.Context, limit int) ([]string, error)
	CloseDone(ctx context.Context, consentID string) error
	CloseFailed(ctx context.Context, consentID, reason string) error
	SinglePaymentOf(ctx context.Context, consentID string) (*tpp.Payment, error)
	NotifyExpiring(ctx context.Context, now time.Time, notice time.Duration, limit int) (int, error)
}

// Stores is the durable state, in SQLite or PostgreSQL, behind the root
// package's interfaces.
type Stores struct {
	Kind          string   // "sqlite" or "postgres"
	Raw           *sqlx.DB // for the consents gauge
	Clients       tpp.ClientService
	Consents      ConsentStore
	Payments      tpp.PaymentService
	Idempotency   tpp.IdempotencyStore
	Audit         tpp.AuditLog
	Outbox        tpp.WebhookOutbox
	Registrations tpp.RegistrationStore
	Checks        []health.Check // readiness: can it be read, and written

	sqlite *sqlite.DB
	pg     *postgres.DB
	close  func() error
}

// Close closes the database.
func (s *Stores) Close() error { return s.close() }

// Config selects the database: Kind "sqlite" with a file path as Target,
// or "postgres" with a URL and the pool settings.
type Config struct {
	Kind   string
	Target string
	Pool   postgres.Pool
}

// IsPostgresURL reports whether a --db value names PostgreSQL.
func IsPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// CLIDefault is the default --db of the operator commands: $TPP_DB_URL,
// else $TPP_DB_PATH, else data/tpp.db.
func CLIDefault(getenv func(string) string) string {
	for _, name := range []string{"TPP_DB_URL", "TPP_DB_PATH"} {
		if v := getenv(name); v != "" {
			return v
		}
	}
	return "data/tpp.db"
}

// Open opens the database cfg selects, applying its migrations.
func Open(ctx context.Context, cfg Config, clock tpp.Clock, kr *seal.Keyring) (*Stores, error) {
	if cfg.Kind == "sqlite" {
		db, err := OpenSQLite(ctx, cfg.Target, clock)
		if err != nil {
			return nil, err
		}
		return sqliteStores(db, kr), nil
	}
	db, err := postgres.Open(ctx, cfg.Target, clock, cfg.Pool)
	if err != nil {
		// The URL may carry a password: never echo it.
		return nil, fmt.Errorf("database (--db-url, $TPP_DB_URL): %w", err)
	}
	return postgresStores(db, kr), nil
}

// OpenCLI opens the database of a command's --db value (a path, or a
// postgres:// URL) for the operator commands (clients, register, rekey).
func OpenCLI(ctx context.Context, db string, clock tpp.Clock, kr *seal.Keyring) (*Stores, error) {
	if IsPostgresURL(db) {
		return Open(ctx, Config{Kind: "postgres", Target: db, Pool: postgres.Pool{MaxOpen: 4, MaxIdle: 2}}, clock, kr)
	}
	return Open(ctx, Config{Kind: "sqlite", Target: db}, clock, kr)
}

// OpenExisting is OpenCLI for commands that must never create a database:
// a missing SQLite file is an error naming the path.
func OpenExisting(ctx context.Context, db string, clock tpp.Clock, kr *seal.Keyring) (*Stores, error) {
	if !IsPostgresURL(db) {
		if err := RequireFile(db); err != nil {
			return nil, err
		}
	}
	return OpenCLI(ctx, db, clock, kr)
}

// OpenSQLite opens the SQLite database of --db / TPP_DB_PATH, applying
// pending migrations.
func OpenSQLite(ctx context.Context, path string, clock tpp.Clock) (*sqlite.DB, error) {
	if path == "" {
		return nil, fmt.Errorf("setting --db ($TPP_DB_PATH) is empty: give a file path, e.g. data/tpp.db")
	}
	db, err := sqlite.Open(ctx, path, clock)
	if err != nil {
		return nil, fmt.Errorf("database %s (--db, $TPP_DB_PATH): %w", path, err)
	}
	return db, nil
}

// RequireFile refuses a SQLite path with no database file behind it.
func RequireFile(path string) error {
	if path == "" {
		return fmt.Errorf("setting --db ($TPP_DB_PATH) is empty: give a file path, e.g. data/tpp.db")
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		abs, _ := filepath.Abs(path)
		return fmt.Errorf("database %s (--db, $TPP_DB_PATH) does not exist: point --db at the service's database ('tpp serve' and 'tpp demo' create it)", abs)
	}
	return nil
}

func sqliteStores(db *sqlite.DB, kr *seal.Keyring) *Stores {
	return &Stores{
		Kind: "sqlite", Raw: db.DB, sqlite: db,
		Clients:       sqlite.NewClientService(db, kr),
		Consents:      sqlite.NewConsentService(db, kr),
		Payments:      sqlite.NewPaymentService(db),
		Idempotency:   sqlite.NewIdempotencyStore(db),
		Audit:         sqlite.NewAuditLog(db),
		Outbox:        sqlite.NewOutbox(db),
		Registrations: sqlite.NewRegistrationStore(db, kr),
		Checks:        []health.Check{health.SQLite(db), health.SQLiteWrite(db)},
		close:         db.Close,
	}
}

func postgresStores(db *postgres.DB, kr *seal.Keyring) *Stores {
	return &Stores{
		Kind: "postgres", Raw: db.DB, pg: db,
		Clients:       postgres.NewClientService(db, kr),
		Consents:      postgres.NewConsentService(db, kr),
		Payments:      postgres.NewPaymentService(db),
		Idempotency:   postgres.NewIdempotencyStore(db),
		Audit:         postgres.NewAuditLog(db),
		Outbox:        postgres.NewOutbox(db),
		Registrations: postgres.NewRegistrationStore(db, kr),
		Checks:        []health.Check{health.Postgres(db.DB), postgresWrite(db)},
		close:         db.Close,
	}
}

// postgresWrite checks that writes can get their locks within
// health.DefaultWriteWait (postgres.DB.ProbeWrite), as sqlite_write does
// for SQLite.
func postgresWrite(db *postgres.DB) health.Check {
	return health.Check{Name: "postgres_write", Fn: func(ctx context.Context) error {
		return db.ProbeWrite(ctx, health.DefaultWriteWait)
	}}
}

// Unavailable reports whether err is the database being busy or out of
// reach: it will pass, so it is a 503 with Retry-After, not a 500.
func Unavailable(err error) bool {
	return sqlite.Busy(err) || postgres.Unavailable(err)
}

// CLIFlags are the --db and --master-key flags of the operator commands
// (clients, rekey).
type CLIFlags struct {
	DB, MasterKey string
}

// Register adds the flags to fs, with their defaults from getenv.
func (c *CLIFlags) Register(fs *flag.FlagSet, getenv func(string) string) {
	fs.StringVar(&c.DB, "db", CLIDefault(getenv), "SQLite database file or postgres:// URL ($TPP_DB_URL, $TPP_DB_PATH)")
	fs.StringVar(&c.MasterKey, "master-key", getenv("TPP_MASTER_KEY"), "master keys, \"id:hex\" items ($TPP_MASTER_KEY)")
}
