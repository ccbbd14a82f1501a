package sqlite

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/bunqtpp/tpp"
)

// DuePayments returns at most limit pending payments whose next check is
// due at now, in the order the poller should look at them: first those
// without a bank id (their create's outcome is unknown), then those whose
// idempotency key is still in flight, then the rest; each group oldest due
// first. Every pending payment is due again after ScheduleChecks moves it
// on, so successive rounds walk the whole pending set.
func (s *PaymentService) DuePayments(ctx context.Context, now time.Time, limit int) ([]tpp.DuePayment, error) {
	if limit <= 0 {
		return nil, nil
	}
	at := formatTime(now)
	groups := []string{
		`SELECT ` + paymentColumns + `, EXISTS (SELECT 1 FROM idempotency_records r
			WHERE r.client_id = payments.client_id AND r.key = payments.idempotency_key AND r.state = 'in_flight') AS key_in_flight
		FROM payments INDEXED BY payments_due_unbanked
		WHERE status = 'pending' AND bunq_id IS NULL AND next_check_at <= ?
		ORDER BY key_in_flight DESC, next_check_at, id LIMIT ?`,
		`SELECT ` + prefixed("p", paymentColumns) + `, 1 AS key_in_flight
		FROM idempotency_records r INDEXED BY idempotency_in_flight
		CROSS JOIN payments p INDEXED BY payments_pending_key ON p.client_id = r.client_id AND p.idempotency_key = r.key
		WHERE r.state = 'in_flight' AND p.status = 'pending' AND p.bunq_id IS NOT NULL AND p.next_check_at <= ?
		ORDER BY p.next_check_at, p.id LIMIT ?`,
		`SELECT ` + paymentColumns + `, 0 AS key_in_flight FROM payments INDEXED BY payments_due
		WHERE status = 'pending' AND next_check_at <= ? ORDER BY next_check_at, id LIMIT ?`,
	}
	// INDEXED BY: without ANALYZE statistics SQLite would sort the whole
	// pending set by the (status, created_at) index instead.
	var out []tpp.DuePayment
	seen := make(map[string]bool)
	for _, q := range groups {
		if len(out) >= limit {
			break
		}
		var rows []struct {
			paymentRow
			KeyInFlight bool `db:"key_in_flight"`
		}
		if err := sqlx.SelectContext(ctx, s.db, &rows, q, at, limit); err != nil {
			return nil, fmt.Errorf("sqlite: due payments: %w", err)
		}
		for i := range rows {
			if seen[rows[i].ID] || len(out) >= limit {
				continue
			}
			seen[rows[i].ID] = true
			out = append(out, tpp.DuePayment{Payment: rows[i].payment(), KeyInFlight: rows[i].KeyInFlight})
		}
	}
	ps := make([]*tpp.Payment, len(out))
	for i := range out {
		ps[i] = out[i].Payment
	}
	if err := withHistory(ctx, s.db, ps); err != nil {
		return nil, err
	}
	return out, nil
}

// ScheduleChecks sets when the poller next looks at the given payments.
func (s *PaymentService) ScheduleChecks(ctx context.Context, at time.Time, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	q, args, err := sqlx.In(`UPDATE payments SET next_check_at = ? WHERE id IN (?) AND status = 'pending'`, formatTime(at), ids)
	if err != nil {
		return fmt.Errorf("sqlite: schedule checks: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("sqlite: schedule checks: %w", err)
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
