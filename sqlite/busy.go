package sqlite

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mattn/go-sqlite3"
)

// Busy reports whether err is SQLite refusing a write because another
// writer held the lock for longer than the busy timeout (SQLITE_BUSY,
// SQLITE_LOCKED): a condition that passes, answered with 503 and
// Retry-After.
func Busy(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked)
}

// ProbeWrite takes the write lock and releases it at once, waiting at most
// wait for it (instead of the busy timeout writes wait): /readyz reports
// the store unhealthy while writes cannot get the lock.
func (db *DB) ProbeWrite(ctx context.Context, wait time.Duration) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: write probe: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", max(wait.Milliseconds(), 1))); err != nil {
		return fmt.Errorf("sqlite: write probe: %w", err)
	}
	// The connection goes back to the pool: give it its usual timeout again.
	defer conn.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf("PRAGMA busy_timeout = %d", busyTimeoutMS)) //nolint:errcheck
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		if Busy(err) {
			return fmt.Errorf("sqlite: writes cannot get the database lock within %v: %w", wait, err)
		}
		return fmt.Errorf("sqlite: write probe: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		return fmt.Errorf("sqlite: write probe: %w", err)
	}
	return nil
}
