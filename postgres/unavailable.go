package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Unavailable reports whether err is PostgreSQL being out of reach for a
// while rather than a request's fault: the server refuses or drops
// connections (down, restarting, too many clients), a lock was not granted
// within lock_timeout, or a transaction kept losing serialization
// conflicts until Tx gave up. Like sqlite.Busy, a condition that passes:
// answered with 503 and Retry-After.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case len(pe.Code) == 5 && pe.Code[:2] == "08": // connection exception
			return true
		}
		switch pe.Code {
		case "53300", // too_many_connections
			"57P01", "57P02", "57P03", // admin or crash shutdown, cannot connect now
			"55P03",          // lock_not_available (lock_timeout)
			"25006",          // read_only_sql_transaction: a standby, mid-failover
			"40001", "40P01": // serialization failure, deadlock: past Tx's retries
			return true
		}
		return false
	}
	var ne *net.OpError
	return errors.As(err, &ne)
}

// ProbeWrite checks that a write could run now: in a transaction whose
// lock_timeout is wait, it takes the lock every insert and update takes on
// the busiest tables and runs a write (that changes no row), so /readyz
// reports the store unhealthy while a migration or a stray lock blocks
// writes or the server accepts reads only (a standby, read-only mode).
func (db *DB) ProbeWrite(ctx context.Context, wait time.Duration) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("postgres: write probe: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // nothing was written
	for _, q := range []string{
		fmt.Sprintf(`SET LOCAL lock_timeout = %d`, max(wait.Milliseconds(), 1)),
		`LOCK TABLE payments, consents, idempotency_records, webhook_deliveries IN ROW EXCLUSIVE MODE`,
		`UPDATE schema_migrations SET applied_at = applied_at WHERE false`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			if Unavailable(err) {
				return fmt.Errorf("postgres: writes cannot get their locks within %v: %w", wait, err)
			}
			return fmt.Errorf("postgres: write probe: %w", err)
		}
	}
	return nil
}
