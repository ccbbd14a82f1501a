package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/bunqtpp/tpp"
)

// IdempotencyStore implements tpp.IdempotencyStore.
type IdempotencyStore struct {
	db *Store
}

var _ tpp.IdempotencyStore = (*IdempotencyStore)(nil)

// NewIdempotencyStore returns an idempotency store.
func NewIdempotencyStore(db *Store) *IdempotencyStore { return &IdempotencyStore{db: db} }

type idemRow struct {
	ClientID       string `db:"client_id"`
	Key            string `db:"key"`
	Fingerprint    string `db:"fingerprint"`
	State          string `db:"state"`
	ResponseStatus int    `db:"response_status"`
	ResponseBody   []byte `db:"response_body"`
	CreatedAt      dbTime `db:"created_at"`
	ExpiresAt      dbTime `db:"expires_at"`
}

func (r *idemRow) record() *tpp.IdempotencyRecord {
	return &tpp.IdempotencyRecord{
		ClientID: r.ClientID, Key: r.Key, Fingerprint: r.Fingerprint, State: tpp.IdempotencyState(r.State),
		ResponseStatus: r.ResponseStatus, ResponseBody: r.ResponseBody,
		CreatedAt: r.CreatedAt.Time, ExpiresAt: r.ExpiresAt.Time,
	}
}

// BeginIdempotent claims a key or returns the stored response to replay.
func (s *IdempotencyStore) BeginIdempotent(ctx context.Context, clientID, key, fingerprint string) (*tpp.IdempotencyRecord, bool, error) {
	if !tpp.ValidIdempotencyKey(key) {
		return nil, false, tpp.Errorf(tpp.EInvalid, "Idempotency-Key must be 1 to 255 visible ASCII characters")
	}
	if clientID == "" || fingerprint == "" {
		return nil, false, tpp.Errorf(tpp.EInternal, "idempotency needs a client and a fingerprint")
	}
	now := s.db.Now()
	var rec *tpp.IdempotencyRecord
	var fresh bool
	err := s.db.Tx(ctx, func(tx *Tx) error {
		var r idemRow
		err := tx.GetContext(ctx, &r, `SELECT client_id, key, fingerprint, state, response_status, response_body,
			created_at, expires_at FROM idempotency_records WHERE client_id = ? AND key = ?`, clientID, key)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return s.db.errorf("idempotency lookup: %w", err)
		case !now.Before(r.ExpiresAt.Time):
			// Expired: the key is free again.
			if _, err := tx.ExecContext(ctx, `DELETE FROM idempotency_records WHERE client_id = ? AND key = ?`, clientID, key); err != nil {
				return s.db.errorf("idempotency expire: %w", err)
			}
		case r.Fingerprint != fingerprint:
			return tpp.Errorf(tpp.EIdempotencyKeyReused, "Idempotency-Key %q was used with a different request", key)
		case r.State == string(tpp.IdempotencyInFlight):
			abandoned, err := abandonedClaim(ctx, tx, clientID, key, now.Sub(r.CreatedAt.Time))
			if err != nil {
				return err
			}
			if !abandoned {
				e := tpp.Errorf(tpp.EIdempotencyInFlight, "a request with Idempotency-Key %q is still being processed", key)
				e.RetryAfter = inFlightRetry(now.Sub(r.CreatedAt.Time))
				return e
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM idempotency_records WHERE client_id = ? AND key = ?`, clientID, key); err != nil {
				return s.db.errorf("idempotency take over: %w", err)
			}
		default:
			rec = r.record()
			return nil
		}
		r = idemRow{ClientID: clientID, Key: key, Fingerprint: fingerprint, State: string(tpp.IdempotencyInFlight),
			CreatedAt: dbTime{now}, ExpiresAt: dbTime{now.Add(tpp.IdempotencyTTL)}}
		if _, err := tx.ExecContext(ctx, `INSERT INTO idempotency_records
			(client_id, key, fingerprint, state, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
			r.ClientID, r.Key, r.Fingerprint, r.State, s.db.Time(r.CreatedAt.Time), s.db.Time(r.ExpiresAt.Time)); err != nil {
			if s.db.dialect.IsUnique(err) {
				// Another replica claimed the key between our read and
				// insert (SQLite's single writer cannot get here).
				e := tpp.Errorf(tpp.EIdempotencyInFlight, "a request with Idempotency-Key %q is still being processed", key)
				e.RetryAfter = inFlightRetry(0)
				return e
			}
			return s.db.errorf("idempotency insert: %w", err)
		}
		rec, fresh = r.record(), true
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return rec, fresh, nil
}

// CompleteIdempotent stores the response for an in-flight key.
func (s *IdempotencyStore) CompleteIdempotent(ctx context.Context, clientID, key string, status int, body []byte) error {
	if body == nil {
		body = []byte{}
	}
	res, err := s.db.ExecContext(ctx, `UPDATE idempotency_records SET state = ?, response_status = ?, response_body = ?
		WHERE client_id = ? AND key = ? AND state = ?`,
		string(tpp.IdempotencyDone), status, body, clientID, key, string(tpp.IdempotencyInFlight))
	if err != nil {
		return s.db.errorf("idempotency complete: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return tpp.Errorf(tpp.EConflict, "Idempotency-Key %q is not in flight", key)
	}
	return nil
}

// ReleaseIdempotent forgets an in-flight key.
func (s *IdempotencyStore) ReleaseIdempotent(ctx context.Context, clientID, key string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM idempotency_records WHERE client_id = ? AND key = ? AND state = ?`,
		clientID, key, string(tpp.IdempotencyInFlight))
	if err != nil {
		return s.db.errorf("idempotency release: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return tpp.Errorf(tpp.EConflict, "Idempotency-Key %q is not in flight", key)
	}
	return nil
}

// PurgeIdempotency deletes expired records.
func (s *IdempotencyStore) PurgeIdempotency(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM idempotency_records WHERE expires_at <= ?`, s.db.Time(now))
	if err != nil {
		return 0, s.db.errorf("idempotency purge: %w", err)
	}
	return res.RowsAffected()
}

// inFlightRetry is the Retry-After of idempotency_key_in_flight: soon while
// the first request may still be running (creates are bounded to a
// minute), later once its outcome waits for the payment poller, which
// settles it within minutes.
// abandonedClaim reports whether an in-flight claim of age on key is past
// tpp.IdempotencyClaimTimeout without a payment recorded for it: its
// request died before anything reached the bank.
func abandonedClaim(ctx context.Context, tx *Tx, clientID, key string, age time.Duration) (bool, error) {
	if age < tpp.IdempotencyClaimTimeout {
		return false, nil
	}
	var n int
	if err := tx.GetContext(ctx, &n, `SELECT COUNT(*) FROM payments WHERE client_id = ? AND idempotency_key = ?`, clientID, key); err != nil {
		return false, tx.errorf("idempotency claim check: %w", err)
	}
	return n == 0, nil
}

func inFlightRetry(age time.Duration) time.Duration {
	if age < time.Minute {
		return 2 * time.Second
	}
	return 30 * time.Second
}
