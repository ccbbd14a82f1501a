package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/bunqtpp/tpp"
)

// claimLease is how long DuePayments hides the payments it returns from
// other replicas' rounds, until the caller's ScheduleChecks sets their
// next check (or, should the caller die first, until the lease ends).
const claimLease = 30 * time.Second

// DuePayments returns at most limit pending payments whose next check is
// due at now, in the order the poller should look at them: first those
// without a bank id (their create's outcome is unknown), then those whose
// idempotency key is still in flight, then the rest; each group oldest due
// first. Every pending payment is due again after ScheduleChecks moves it
// on, so successive rounds walk the whole pending set.
//
// Replicas poll the same table: the payments are claimed with FOR UPDATE
// SKIP LOCKED and their next check moved claimLease on in the same
// transaction, so two replicas' rounds never take the same payment.
func (s *PaymentService) DuePayments(ctx context.Context, now time.Time, limit int) ([]tpp.DuePayment, error) {
	if limit <= 0 {
		return nil, nil
	}
	at := formatTime(now)
	groups := []string{
		`SELECT ` + paymentColumns + `, EXISTS (SELECT 1 FROM idempotency_records r
			WHERE r.client_id = payments.client_id AND r.key = payments.idempotency_key AND r.state = 'in_flight') AS key_in_flight
		FROM payments
		WHERE status = 'pending' AND bunq_id IS NULL AND next_check_at <= ?
		ORDER BY key_in_flight DESC, next_check_at, id LIMIT ? FOR UPDATE OF payments SKIP LOCKED`,
		`SELECT ` + prefixed("p", paymentColumns) + `, true AS key_in_flight
		FROM idempotency_records r
		JOIN payments p ON p.client_id = r.client_id AND p.idempotency_key = r.key
		WHERE r.state = 'in_flight' AND p.status = 'pending' AND p.bunq_id IS NOT NULL AND p.next_check_at <= ?
		ORDER BY p.next_check_at, p.id LIMIT ? FOR UPDATE OF p SKIP LOCKED`,
		`SELECT ` + paymentColumns + `, false AS key_in_flight FROM payments
		WHERE status = 'pending' AND next_check_at <= ? ORDER BY next_check_at, id LIMIT ?
		FOR UPDATE SKIP LOCKED`,
	}
	var out []tpp.DuePayment
	err := s.db.Tx(ctx, func(tx *Tx) error {
		out = nil
		for _, q := range groups {
			if len(out) >= limit {
				break
			}
			var rows []struct {
				paymentRow
				KeyInFlight bool `db:"key_in_flight"`
			}
			if err := tx.SelectContext(ctx, &rows, q, at, limit-len(out)); err != nil {
				return fmt.Errorf("postgres: due payments: %w", err)
			}
			ids := make([]string, len(rows))
			for i := range rows {
				ids[i] = rows[i].ID
				out = append(out, tpp.DuePayment{Payment: rows[i].payment(), KeyInFlight: rows[i].KeyInFlight})
			}
			// Claimed: not due for the next group, nor for other replicas.
			if err := scheduleChecks(ctx, tx, now.Add(claimLease), ids); err != nil {
				return err
			}
		}
		ps := make([]*tpp.Payment, len(out))
		for i := range out {
			ps[i] = out[i].Payment
		}
		return withHistory(ctx, tx, ps)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ScheduleChecks sets when the poller next looks at the given payments.
func (s *PaymentService) ScheduleChecks(ctx context.Context, at time.Time, ids ...string) error {
	return scheduleChecks(ctx, s.db, at, ids)
}

type execer interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

func scheduleChecks(ctx context.Context, db execer, at time.Time, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	q, args, err := sqlx.In(`UPDATE payments SET next_check_at = ? WHERE id IN (?) AND status = 'pending'`, formatTime(at), ids)
	if err != nil {
		return fmt.Errorf("postgres: schedule checks: %w", err)
	}
	if _, err := db.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("postgres: schedule checks: %w", err)
	}
	return nil
}

// prefixed qualifies each column of a column list with a table alias.
func prefixed(alias, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}
