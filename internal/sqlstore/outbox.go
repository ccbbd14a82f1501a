package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/bunqtpp/tpp"
)

// Outbox implements tpp.WebhookOutbox.
type Outbox struct {
	db *Store
}

var _ tpp.WebhookOutbox = (*Outbox)(nil)

// NewOutbox returns the webhook outbox.
func NewOutbox(db *Store) *Outbox { return &Outbox{db: db} }

// maxErrorLen bounds the stored reason of a failed attempt.
const maxErrorLen = 500

// EnqueueEvent stores an event (and its delivery, if the client takes webhooks).
func (o *Outbox) EnqueueEvent(ctx context.Context, clientID, typ string, data any) (*tpp.WebhookEvent, error) {
	now := o.db.Now()
	var ev *tpp.WebhookEvent
	err := o.db.Tx(ctx, func(tx *Tx) error {
		var err error
		ev, err = insertEvent(ctx, tx, now, clientID, typ, data)
		if errors.Is(err, sql.ErrNoRows) {
			return clientNotFound(clientID)
		}
		return err
	})
	return ev, err
}

type deliveryRow struct {
	EventID    string `db:"event_id"`
	ClientID   string `db:"client_id"`
	Type       string `db:"type"`
	Payload    string `db:"payload"`
	CreatedAt  dbTime `db:"created_at"`
	Attempts   int    `db:"attempts"`
	URL        string `db:"webhook_url"`
	Status     string `db:"status"`
	LeaseToken string `db:"lease_token"`
}

// ClaimDeliveries leases due deliveries, oldest due first. With replicas
// (Dialect.SharedQueues), rows another replica is claiming right now are
// skipped (FOR UPDATE SKIP LOCKED), and a lease keeps them from every other
// claim until it runs out, so each attempt goes to one replica. Deliveries whose
// client was revoked or no longer has a webhook URL are abandoned here.
func (o *Outbox) ClaimDeliveries(ctx context.Context, limit int, lease time.Duration) ([]*tpp.WebhookDelivery, error) {
	if limit <= 0 {
		limit = 10
	}
	if lease <= 0 {
		return nil, tpp.Errorf(tpp.EInternal, "claim needs a positive lease")
	}
	now := o.db.Now()
	until := now.Add(lease)
	var out []*tpp.WebhookDelivery
	lock := ""
	if o.db.dialect.SharedQueues {
		lock = " FOR UPDATE OF d SKIP LOCKED"
	}
	err := o.db.Tx(ctx, func(tx *Tx) error {
		out = out[:0]
		var rows []deliveryRow
		if err := tx.SelectContext(ctx, &rows, `SELECT d.event_id, e.client_id, e.type, e.payload, e.created_at,
				d.attempts, c.webhook_url, c.status, d.lease_token
			FROM webhook_deliveries d
			JOIN webhook_events e ON e.id = d.event_id
			JOIN clients c ON c.id = e.client_id
			WHERE d.delivered_at IS NULL AND d.abandoned_at IS NULL AND d.next_attempt_at <= ?
				AND (d.lease_until IS NULL OR d.lease_until <= ?)
			ORDER BY d.next_attempt_at, d.event_id LIMIT ?`+lock, o.db.Time(now), o.db.Time(now), limit); err != nil {
			return o.db.errorf("claim deliveries: %w", err)
		}
		for _, r := range rows {
			if r.Status != string(tpp.ClientActive) || r.URL == "" {
				if _, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET abandoned_at = ?, last_error = ?,
					lease_token = '', lease_until = NULL WHERE event_id = ?`,
					o.db.Time(now), "client is revoked or has no webhook URL", r.EventID); err != nil {
					return o.db.errorf("abandon delivery: %w", err)
				}
				continue
			}
			token := tpp.RandomToken(16)
			if _, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET attempts = attempts + 1, lease_token = ?,
				lease_until = ? WHERE event_id = ?`, token, o.db.Time(until), r.EventID); err != nil {
				return o.db.errorf("lease delivery: %w", err)
			}
			out = append(out, &tpp.WebhookDelivery{
				Event: tpp.WebhookEvent{ID: r.EventID, ClientID: r.ClientID, Type: r.Type,
					Payload: []byte(r.Payload), CreatedAt: r.CreatedAt.Time},
				URL: r.URL, Attempt: r.Attempts + 1, LeaseToken: token, LeaseUntil: until,
			})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func leaseLost(eventID string) error {
	return tpp.Errorf(tpp.EConflict, "delivery of %s is no longer leased by this worker", eventID)
}

// MarkDelivered records a successful delivery.
func (o *Outbox) MarkDelivered(ctx context.Context, eventID, leaseToken string) error {
	if leaseToken == "" {
		return leaseLost(eventID)
	}
	now := o.db.Now()
	res, err := o.db.ExecContext(ctx, `UPDATE webhook_deliveries SET delivered_at = ?, last_error = '',
		lease_token = '', lease_until = NULL
		WHERE event_id = ? AND lease_token = ? AND delivered_at IS NULL AND abandoned_at IS NULL`,
		o.db.Time(now), eventID, leaseToken)
	if err != nil {
		return o.db.errorf("mark delivered: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return leaseLost(eventID)
	}
	return nil
}

// MarkFailed records a failed attempt and schedules the next by
// tpp.WebhookRetryDelay, or abandons the delivery when the schedule is used up.
func (o *Outbox) MarkFailed(ctx context.Context, eventID, leaseToken, reason string) error {
	return o.fail(ctx, eventID, leaseToken, reason, func(now time.Time, attempts int) time.Time {
		delay, again := tpp.WebhookRetryDelay(attempts)
		if !again {
			return time.Time{}
		}
		return now.Add(delay)
	})
}

// ScheduleRetry records a failed attempt with the caller's next attempt
// time (for jitter or a receiver's Retry-After); the zero time abandons it.
func (o *Outbox) ScheduleRetry(ctx context.Context, eventID, leaseToken, reason string, next time.Time) error {
	return o.fail(ctx, eventID, leaseToken, reason, func(time.Time, int) time.Time { return next })
}

func (o *Outbox) fail(ctx context.Context, eventID, leaseToken, reason string, nextOf func(now time.Time, attempts int) time.Time) error {
	if leaseToken == "" {
		return leaseLost(eventID)
	}
	if len(reason) > maxErrorLen {
		reason = reason[:maxErrorLen]
	}
	now := o.db.Now()
	return o.db.Tx(ctx, func(tx *Tx) error {
		var attempts int
		err := tx.GetContext(ctx, &attempts, `SELECT attempts FROM webhook_deliveries
			WHERE event_id = ? AND lease_token = ? AND delivered_at IS NULL AND abandoned_at IS NULL`, eventID, leaseToken)
		if errors.Is(err, sql.ErrNoRows) {
			return leaseLost(eventID)
		}
		if err != nil {
			return o.db.errorf("mark failed: %w", err)
		}
		if next := nextOf(now, attempts); !next.IsZero() {
			_, err = tx.ExecContext(ctx, `UPDATE webhook_deliveries SET next_attempt_at = ?, last_error = ?,
				lease_token = '', lease_until = NULL WHERE event_id = ?`, o.db.Time(next), reason, eventID)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE webhook_deliveries SET abandoned_at = ?, last_error = ?,
				lease_token = '', lease_until = NULL WHERE event_id = ?`, o.db.Time(now), reason, eventID)
		}
		if err != nil {
			return o.db.errorf("mark failed: %w", err)
		}
		return nil
	})
}

// Events lists a client's events, newest first.
func (o *Outbox) Events(ctx context.Context, clientID string, p tpp.PageRequest) (tpp.Page[*tpp.WebhookEvent], error) {
	var zero tpp.Page[*tpp.WebhookEvent]
	if clientID == "" {
		return zero, tpp.Errorf(tpp.EInternal, "event list needs a client")
	}
	limit, cur, err := p.Normalize()
	if err != nil {
		return zero, err
	}
	type eventRow struct {
		ID        string `db:"id"`
		ClientID  string `db:"client_id"`
		Type      string `db:"type"`
		Payload   string `db:"payload"`
		CreatedAt dbTime `db:"created_at"`
	}
	rows, err := selectPage[eventRow](ctx, o.db, `SELECT id, client_id, type, payload, created_at FROM webhook_events`,
		[]string{"client_id = ?"}, []any{clientID}, limit, cur)
	if err != nil {
		return zero, o.db.errorf("list events: %w", err)
	}
	out := make([]*tpp.WebhookEvent, len(rows))
	for i, r := range rows {
		out[i] = &tpp.WebhookEvent{ID: r.ID, ClientID: r.ClientID, Type: r.Type, Payload: []byte(r.Payload), CreatedAt: r.CreatedAt.Time}
	}
	return pageOf(out, limit, func(e *tpp.WebhookEvent) tpp.Cursor { return tpp.Cursor{At: e.CreatedAt, ID: e.ID} }), nil
}
