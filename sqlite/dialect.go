package sqlite

import (
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/bunqtpp/tpp/internal/sqlstore"
	"github.com/bunqtpp/tpp/seal"
)

// dialect is how SQLite differs for the shared stores: times are
// fixed-width UTC text, sealed values base64 text, every write runs in
// BEGIN IMMEDIATE (set on the connection, see Open) and so is never
// retried, and one process writes, so queues need no row locks.
func dialect() sqlstore.Dialect {
	return sqlstore.Dialect{
		Name:         "sqlite",
		Time:         func(t time.Time) any { return sqlstore.FormatTextTime(t) },
		EncodeSealed: func(b []byte) any { return base64.StdEncoding.EncodeToString(b) },
		DecodeSealed: func(stored []byte) ([]byte, error) {
			b, err := base64.StdEncoding.DecodeString(string(stored))
			if err != nil {
				return nil, seal.ErrOpen
			}
			return b, nil
		},
		IsUnique: isUnique,
		// SQLite names the columns, not the index, of a violated one.
		IsPendingSingleConflict: func(err error) bool {
			return isUnique(err) && strings.Contains(err.Error(), "debtor_iban")
		},
		TimeParam: "?",
		TextParam: "?",
	}
}

// isUnique reports whether err is a UNIQUE or PRIMARY KEY violation.
func isUnique(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey)
}
