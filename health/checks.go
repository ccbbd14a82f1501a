package health

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/logging"
)

// Querier runs a query returning one row (*sql.DB, *sqlx.DB, sqlite.DB).
type Querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// SQLite checks that the database file can be read: a ping alone would
// pass on a pooled connection without touching the file.
func SQLite(db Querier) Check {
	return Check{Name: "sqlite", Fn: func(ctx context.Context) error {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master`).Scan(&n); err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		return nil
	}}
}

// WriteProber takes the database's write lock briefly
// (*sqlite.DB.ProbeWrite).
type WriteProber interface {
	ProbeWrite(ctx context.Context, wait time.Duration) error
}

// DefaultWriteWait is how long the write probe waits for the lock: far
// below the busy timeout, so a held lock shows before writes time out.
const DefaultWriteWait = 500 * time.Millisecond

// SQLiteWrite checks that a write can get the database lock within
// DefaultWriteWait: while another writer holds it (a long transaction, a
// backup, a stuck process) every write would fail, though reads pass.
func SQLiteWrite(db WriteProber) Check {
	return Check{Name: "sqlite_write", Fn: func(ctx context.Context) error {
		return db.ProbeWrite(ctx, DefaultWriteWait)
	}}
}

// Pinger answers a ping (redis.Health does, for Redis).
type Pinger interface {
	Ping(ctx context.Context) error
}

// Redis checks that Redis answers PING; pass redis.Health{Client: rdb}.
func Redis(p Pinger) Check {
	return Check{Name: "redis", Fn: p.Ping}
}

// Bank checks that the bank's API host answers HTTP at baseURL (the API
// base, e.g. "https://public-api.sandbox.bunq.com/v1"). Any answer, even a
// 4xx, proves the host is reachable; a connection error or timeout does
// not. client carries the TLS settings of the bank client
// (http.DefaultClient when nil); redirects are not followed.
func Bank(client *http.Client, baseURL string) Check {
	if client == nil {
		client = http.DefaultClient
	}
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return Check{Name: "bank", Fn: func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL, nil)
		if err != nil {
			return fmt.Errorf("bank: bad API base URL %s", logging.RedactURL(baseURL))
		}
		req.Header.Set("Cache-Control", "no-cache")
		resp, err := c.Do(req)
		if err != nil {
			return fmt.Errorf("bank: %w", err)
		}
		// Drain a little so the connection can be reused, never much.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		return nil
	}}
}

// Registration checks that the TPP is registered with the bank; valid
// returns an error saying why not. See RegistrationValid.
func Registration(valid func(ctx context.Context) error) Check {
	return Check{Name: "registration", Fn: valid}
}

// RegistrationSource reads the TPP's registration (tpp.RegistrationStore).
type RegistrationSource interface {
	Registration(ctx context.Context, apiBaseURL string) (*tpp.Registration, error)
}

// ErrNotRegistered is returned when the TPP has no usable registration for
// the environment.
var ErrNotRegistered = errors.New("the TPP is not registered with the bank")

// ErrCertificateExpired is returned when the registered certificate has
// expired.
var ErrCertificateExpired = errors.New("the TPP's certificate has expired")

// RegistrationValid returns a function for Registration: it fails when
// there is no registration for apiBaseURL, it lacks its OAuth client, or
// its certificate has expired by clock (tpp.SystemClock when nil).
func RegistrationValid(src RegistrationSource, apiBaseURL string, clock tpp.Clock) func(ctx context.Context) error {
	if clock == nil {
		clock = tpp.SystemClock{}
	}
	return func(ctx context.Context) error {
		reg, err := src.Registration(ctx, apiBaseURL)
		if tpp.ErrorCode(err) == tpp.ENotFound {
			return fmt.Errorf("%w (%s); run 'tpp register'", ErrNotRegistered, logging.RedactURL(apiBaseURL))
		}
		if err != nil {
			return fmt.Errorf("read registration: %w", err)
		}
		if reg.ClientID == "" {
			return fmt.Errorf("%w: registration has no OAuth client; run 'tpp register' again", ErrNotRegistered)
		}
		if reg.CertNotAfter.IsZero() {
			return fmt.Errorf("%w: registration records no certificate; run 'tpp register' again", ErrNotRegistered)
		}
		if now := clock.Now(); !now.Before(reg.CertNotAfter) {
			return fmt.Errorf("%w: %q expired at %s", ErrCertificateExpired, reg.CertSubject,
				reg.CertNotAfter.UTC().Format(time.RFC3339))
		}
		return nil
	}
}

// Postgres checks that PostgreSQL answers a query on the service's schema
// (its migrations table), not only a pooled connection's ping.
func Postgres(db Querier) Check {
	return Check{Name: "postgres", Fn: func(ctx context.Context) error {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		return nil
	}}
}
