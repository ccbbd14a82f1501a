package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/bunqtpp/tpp"
)

// claimLease is how long DuePayments, with replicas, hides the payments it
// returns from other replicas' rounds, until the caller's ScheduleChecks
// sets their next check (or, should the caller die first, until the lease
// ends).
const claimLease = 30 * time.Second

// dueGroups are DuePayments' queries, one per group in the poller's order.
// SQLite's name their indexes (INDEXED BY): without ANALYZE statistics it
// would sort the whole pending set by the (status, created_at) index
// instead. PostgreSQL's lock the rows they return, skipping those another
// replica is claiming.
var dueGroups = map[bool][]string{
	false: {
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
	},
	true: {
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
	},
}

type dueRow struct {
	paymentRow
	KeyInFlight bool `db:"key_in_flight"`
}

// DuePayments returns at most limit pending payments whose next check is
// due at now, in the order the poller should look at them: first those
// without a bank id (their create's outcome is unknown), then those whose
// idempotency key is still in flight, then the rest; each group oldest due
// first. Every pending payment is due again after ScheduleChecks moves it
// on, so successive rounds walk the whole pending set.
//
// With replicas (Dialect.SharedQueues) they poll the same table: the
// payments are claimed with FOR UPDATE SKIP LOCKED and their next check
// moved claimLease on in the same transaction, so two replicas' rounds
// never take the same payment.
func (s *PaymentService) DuePayments(ctx context.Context, now time.Time, limit int) ([]tpp.DuePayment, error) {
	if limit <= 0 {
		return nil, nil
	}
	if s.db.dialect.SharedQueues {
		return s.claimDuePayments(ctx, now, limit)
	}
	var out []tpp.DuePayment
	seen := make(map[string]bool)
	for _, q := range dueGroups[false] {
		if len(out) >= limit {
			break
		}
		var rows []dueRow
		if err := s.db.SelectContext(ctx, &rows, q, s.db.Time(now), limit); err != nil {
			return nil, s.db.errorf("due payments: %w", err)
		}
		for i := range rows {
			if seen[rows[i].ID] || len(out) >= limit {
				continue
			}
			seen[rows[i].ID] = true
			out = append(out, tpp.DuePayment{Payment: rows[i].payment(), KeyInFlight: rows[i].KeyInFlight})
		}
	}
	if err := withHistory(ctx, s.db, duePaymentsOf(out)); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *PaymentService) claimDuePayments(ctx context.Context, now time.Time, limit int) ([]tpp.DuePayment, error) {
	var out []tpp.DuePayment
	err := s.db.Tx(ctx, func(tx *Tx) error {
		out = nil
		for _, q := range dueGroups[true] {
			if len(out) >= limit {
				break
			}
			var rows []dueRow
			if err := tx.SelectContext(ctx, &rows, q, tx.Time(now), limit-len(out)); err != nil {
				return tx.errorf("due payments: %w", err)
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
		return withHistory(ctx, tx, duePaymentsOf(out))
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func duePaymentsOf(due []tpp.DuePayment) []*tpp.Payment {
	ps := make([]*tpp.Payment, len(due))
	for i := range due {
		ps[i] = due[i].Payment
	}
	return ps
}

// ScheduleChecks sets when the poller next looks at the given payments.
func (s *PaymentService) ScheduleChecks(ctx context.Context, at time.Time, ids ...string) error {
	return scheduleChecks(ctx, s.db, at, ids)
}

// execer is a Store or a Tx.
type execer interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
	errorf(format string, args ...any) error
	Time(t time.Time) any
}

func scheduleChecks(ctx context.Context, db execer, at time.Time, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	q, args, err := sqlx.In(`UPDATE payments SET next_check_at = ? WHERE id IN (?) AND status = 'pending'`, db.Time(at), ids)
	if err != nil {
		return db.errorf("schedule checks: %w", err)
	}
	if _, err := db.ExecContext(ctx, q, args...); err != nil {
		return db.errorf("schedule checks: %w", err)
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
