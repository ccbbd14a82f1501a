package postgres

import (
	"database/sql"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bunqtpp/tpp/internal/sqlstore"
)

// dialect is how PostgreSQL differs for the shared stores: times are
// timestamptz, sealed values bytea, every write transaction runs at
// SERIALIZABLE and is retried when PostgreSQL reports a serialization
// failure or deadlock (the services' read-check-write steps then behave as
// under SQLite's single writer), and replicas share the work queues, so
// claims lock rows with FOR UPDATE SKIP LOCKED.
func dialect() sqlstore.Dialect {
	return sqlstore.Dialect{
		Name:                    "postgres",
		Time:                    func(t time.Time) any { return t.UTC() },
		EncodeSealed:            func(b []byte) any { return b },
		DecodeSealed:            func(stored []byte) ([]byte, error) { return stored, nil },
		IsUnique:                isUnique,
		IsPendingSingleConflict: func(err error) bool { return uniqueOn(err, "payments_single_pending_debtor") },
		TxOptions:               &sql.TxOptions{Isolation: sql.LevelSerializable},
		Retryable:               retryable,
		TimeParam:               "?::timestamptz",
		TextParam:               "?::text",
		SharedQueues:            true,
	}
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
