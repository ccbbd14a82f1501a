package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/health"
	"github.com/bunqtpp/tpp/postgres"
	"github.com/bunqtpp/tpp/seal"
	"github.com/bunqtpp/tpp/sqlite"
)

// consentStore is what the service needs of the consent store: the
// consent service, the janitor's close queue and the single-payment lookup.
type consentStore interface {
	tpp.ConsentService
	QueueClose(ctx context.Context, consentID, reason string) error
	PendingCloses(ctx context.Context, limit int) ([]string, error)
	CloseDone(ctx context.Context, consentID string) error
	CloseFailed(ctx context.Context, consentID, reason string) error
	SinglePaymentOf(ctx context.Context, consentID string) (*tpp.Payment, error)
	NotifyExpiring(ctx context.Context, now time.Time, notice time.Duration, limit int) (int, error)
}

// store is the durable state, in SQLite or PostgreSQL, behind the root
// package's interfaces.
type store struct {
	kind          string // "sqlite" or "postgres"
	sqlite        *sqlite.DB
	pg            *postgres.DB
	raw           *sqlx.DB // for the consents gauge
	clients       tpp.ClientService
	consents      consentStore
	payments      tpp.PaymentService
	idempotency   tpp.IdempotencyStore
	audit         tpp.AuditLog
	outbox        tpp.WebhookOutbox
	registrations tpp.RegistrationStore
	checks        []health.Check // readiness: can it be read, and written
	close         func() error
}

// isPostgresURL reports whether a --db value names PostgreSQL.
func isPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// database returns which store the settings select and its path or URL:
// --db-url ($TPP_DB_URL), or --db when it is a postgres:// URL, selects
// PostgreSQL; a plain path stays SQLite.
func (c *config) database() (kind, target string) {
	switch {
	case c.DBURL != "":
		return "postgres", c.DBURL
	case isPostgresURL(c.DBPath):
		return "postgres", c.DBPath
	}
	return "sqlite", c.DBPath
}

// pool returns the PostgreSQL pool settings.
func (c *config) pool() postgres.Pool {
	return postgres.Pool{MaxOpen: c.DBMaxConns, MaxIdle: c.DBMaxIdle, MaxLifetime: c.DBConnLifetime}
}

// openStore opens the store the settings select, applying its migrations.
func openStore(ctx context.Context, cfg *config, clock tpp.Clock, kr *seal.Keyring) (*store, error) {
	kind, target := cfg.database()
	return openStoreAt(ctx, kind, target, cfg.pool(), clock, kr)
}

// openCLIStore opens the store of a command's --db value (a path, or a
// postgres:// URL) for the operator commands (clients, register, rekey).
func openCLIStore(ctx context.Context, db string, clock tpp.Clock, kr *seal.Keyring) (*store, error) {
	if isPostgresURL(db) {
		return openStoreAt(ctx, "postgres", db, postgres.Pool{MaxOpen: 4, MaxIdle: 2}, clock, kr)
	}
	return openStoreAt(ctx, "sqlite", db, postgres.Pool{}, clock, kr)
}

// cliDBDefault is the default --db of the operator commands: $TPP_DB_URL,
// else $TPP_DB_PATH, else data/tpp.db.
func cliDBDefault(getenv func(string) string) string {
	for _, name := range []string{"TPP_DB_URL", "TPP_DB_PATH"} {
		if v := getenv(name); v != "" {
			return v
		}
	}
	return "data/tpp.db"
}

func openStoreAt(ctx context.Context, kind, target string, pool postgres.Pool, clock tpp.Clock, kr *seal.Keyring) (*store, error) {
	if kind == "sqlite" {
		db, err := openDB(ctx, target, clock)
		if err != nil {
			return nil, err
		}
		s := sqliteStore(db, kr)
		s.sqlite = db
		return s, nil
	}
	db, err := postgres.Open(ctx, target, clock, pool)
	if err != nil {
		// The URL may carry a password: never echo it.
		return nil, fmt.Errorf("database (--db-url, $TPP_DB_URL): %w", err)
	}
	s := postgresStore(db, kr)
	s.pg = db
	return s, nil
}

// openExistingCLIStore is openCLIStore for commands that must never create
// a database: a missing SQLite file is an error naming the path.
func openExistingCLIStore(ctx context.Context, db string, clock tpp.Clock, kr *seal.Keyring) (*store, error) {
	if !isPostgresURL(db) {
		if err := requireDBFile(db); err != nil {
			return nil, err
		}
	}
	return openCLIStore(ctx, db, clock, kr)
}

func sqliteStore(db *sqlite.DB, kr *seal.Keyring) *store {
	return &store{
		kind: "sqlite", raw: db.DB,
		clients:       sqlite.NewClientService(db, kr),
		consents:      sqlite.NewConsentService(db, kr),
		payments:      sqlite.NewPaymentService(db),
		idempotency:   sqlite.NewIdempotencyStore(db),
		audit:         sqlite.NewAuditLog(db),
		outbox:        sqlite.NewOutbox(db),
		registrations: sqlite.NewRegistrationStore(db, kr),
		checks:        []health.Check{health.SQLite(db), health.SQLiteWrite(db)},
		close:         db.Close,
	}
}

func postgresStore(db *postgres.DB, kr *seal.Keyring) *store {
	return &store{
		kind: "postgres", raw: db.DB,
		clients:       postgres.NewClientService(db, kr),
		consents:      postgres.NewConsentService(db, kr),
		payments:      postgres.NewPaymentService(db),
		idempotency:   postgres.NewIdempotencyStore(db),
		audit:         postgres.NewAuditLog(db),
		outbox:        postgres.NewOutbox(db),
		registrations: postgres.NewRegistrationStore(db, kr),
		checks:        []health.Check{health.Postgres(db.DB), postgresWrite(db)},
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

// rekey re-seals the store's secrets under kr's current key.
func (s *store) rekey(ctx context.Context, kr *seal.Keyring, dryRun bool) ([]sqlite.RekeyCount, error) {
	if s.pg != nil {
		counts, err := postgres.Rekey(ctx, s.pg, kr, dryRun)
		out := make([]sqlite.RekeyCount, len(counts))
		for i, c := range counts {
			out[i] = sqlite.RekeyCount(c)
		}
		return out, err
	}
	return sqlite.Rekey(ctx, s.sqlite, kr, dryRun)
}
