// Package sqlstore is the one implementation of the TPP's durable state
// (fintech clients, consents, payments, idempotency records, the audit log,
// the webhook outbox, the bank registration, master-key rotation) over SQL,
// shared by package sqlite and package postgres. Queries are written once
// with '?' placeholders, rebound to the driver's; what really differs
// between the two databases is a Dialect: how times and sealed values are
// stored, how a write transaction begins and when it is retried, which
// errors are unique violations, and whether replicas share the work queues.
//
// It is internal: callers use the stores through package sqlite or package
// postgres, which open the database and apply their own migrations.
package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/bunqtpp/tpp"
)

// Dialect is what one database does its own way.
type Dialect struct {
	// Name prefixes every error ("sqlite", "postgres").
	Name string
	// Time is the value a time is written as: SQLite keeps fixed-width
	// UTC text (TextTime), PostgreSQL timestamptz.
	Time func(time.Time) any
	// EncodeSealed is the value a seal.Keyring output is written as
	// (SQLite: base64 text, PostgreSQL: bytea); DecodeSealed reverses it.
	EncodeSealed func([]byte) any
	DecodeSealed func(stored []byte) ([]byte, error)
	// IsUnique reports a UNIQUE or PRIMARY KEY violation.
	IsUnique func(error) bool
	// IsPendingSingleConflict reports a violation of the unique index that
	// allows one pending single payment per debtor account.
	IsPendingSingleConflict func(error) bool
	// TxOptions begins every write transaction (nil: the driver's default,
	// which is BEGIN IMMEDIATE for package sqlite's connections).
	TxOptions *sql.TxOptions
	// Retryable reports a transaction that lost a race and may run again
	// (PostgreSQL's serialization failures and deadlocks); nil for a
	// single writer, whose transactions never lose one.
	Retryable func(error) bool
	// TimeParam and TextParam are a placeholder in a SELECT list, whose
	// type PostgreSQL cannot infer ("?::timestamptz"); SQLite needs none.
	TimeParam, TextParam string
	// SharedQueues is true when several replicas write at once: claims of
	// shared work (webhook deliveries, due payments) then lock the rows
	// they take (FOR UPDATE SKIP LOCKED) and lease them.
	SharedQueues bool
}

// maxTxAttempts bounds the retries of a transaction that lost a
// serialization conflict; past it the caller gets the error, which (like
// SQLite's SQLITE_BUSY after its timeout) is an internal error.
const maxTxAttempts = 20

// Store is an open database with its dialect and clock. Its query methods
// take '?' placeholders and rebind them to the driver's.
type Store struct {
	*sqlx.DB
	dialect Dialect
	clock   tpp.Clock
}

// New wraps an open database. clock stamps every row the stores write;
// nil means the system clock.
func New(db *sqlx.DB, d Dialect, clock tpp.Clock) *Store {
	if clock == nil {
		clock = tpp.SystemClock{}
	}
	return &Store{DB: db, dialect: d, clock: clock}
}

// Now returns the time of the store's clock, in UTC and truncated to the
// microsecond that the columns keep.
func (st *Store) Now() time.Time { return st.clock.Now().UTC().Truncate(time.Microsecond) }

// Time is the value t is written as.
func (st *Store) Time(t time.Time) any { return st.dialect.Time(t) }

func (st *Store) errorf(format string, args ...any) error {
	return fmt.Errorf(st.dialect.Name+": "+format, args...)
}

// nullTime is the value of an optional time: NULL when zero.
func (st *Store) nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return st.Time(t)
}

// ExecContext runs a statement with '?' placeholders.
func (st *Store) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return st.DB.ExecContext(ctx, st.Rebind(q), args...)
}

// GetContext reads one row into dest.
func (st *Store) GetContext(ctx context.Context, dest any, q string, args ...any) error {
	return st.DB.GetContext(ctx, dest, st.Rebind(q), args...)
}

// SelectContext reads rows into dest.
func (st *Store) SelectContext(ctx context.Context, dest any, q string, args ...any) error {
	return st.DB.SelectContext(ctx, dest, st.Rebind(q), args...)
}

// QueryContext runs a query.
func (st *Store) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return st.DB.QueryContext(ctx, st.Rebind(q), args...)
}

// QueryxContext runs a query.
func (st *Store) QueryxContext(ctx context.Context, q string, args ...any) (*sqlx.Rows, error) {
	return st.DB.QueryxContext(ctx, st.Rebind(q), args...)
}

// QueryRowxContext runs a query returning one row.
func (st *Store) QueryRowxContext(ctx context.Context, q string, args ...any) *sqlx.Row {
	return st.DB.QueryRowxContext(ctx, st.Rebind(q), args...)
}

// Exec runs a statement with '?' placeholders.
func (st *Store) Exec(q string, args ...any) (sql.Result, error) {
	return st.ExecContext(context.Background(), q, args...)
}

// Get reads one row into dest.
func (st *Store) Get(dest any, q string, args ...any) error {
	return st.GetContext(context.Background(), dest, q, args...)
}

// Select reads rows into dest.
func (st *Store) Select(dest any, q string, args ...any) error {
	return st.SelectContext(context.Background(), dest, q, args...)
}

// Tx is a write transaction whose query methods take '?' placeholders.
type Tx struct {
	*sqlx.Tx
	st *Store
}

func (tx *Tx) errorf(format string, args ...any) error { return tx.st.errorf(format, args...) }

// Time is the value t is written as.
func (tx *Tx) Time(t time.Time) any { return tx.st.Time(t) }

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

// Tx runs fn in a write transaction. It commits when fn returns nil and
// rolls back when fn returns an error or panics (the panic is then
// re-raised). When the dialect's Retryable says the transaction lost a
// race, fn runs again, so fn must set its results afresh on each run.
func (st *Store) Tx(ctx context.Context, fn func(tx *Tx) error) error {
	var err error
	for attempt := 1; attempt <= maxTxAttempts; attempt++ {
		if err = st.tx(ctx, fn); st.dialect.Retryable == nil || !st.dialect.Retryable(err) {
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
	return st.errorf("transaction lost %d serialization conflicts: %w", maxTxAttempts, err)
}

// retryDelay is the pause before attempt+1: exponential from 1 ms, capped
// at 100 ms, with full jitter so that the losers of one conflict do not
// collide again in step.
func retryDelay(attempt int) time.Duration {
	d := min(time.Millisecond<<min(attempt, 7), 100*time.Millisecond)
	return time.Duration(rand.Int64N(int64(d))) + time.Millisecond
}

func (st *Store) tx(ctx context.Context, fn func(tx *Tx) error) (err error) {
	stx, err := st.BeginTxx(ctx, st.dialect.TxOptions)
	if err != nil {
		return st.errorf("begin: %w", err)
	}
	tx := &Tx{Tx: stx, st: st}
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
		return st.errorf("commit: %w", err)
	}
	return nil
}

// querier is a Store or a Tx: reads that run either inside a write
// transaction or on their own.
type querier interface {
	sqlx.QueryerContext
	errorf(format string, args ...any) error
	Time(t time.Time) any
}
