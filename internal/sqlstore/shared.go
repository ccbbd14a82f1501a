package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/bunqtpp/tpp"
)

// insertAudit appends r within tx, stamped with at.
func insertAudit(ctx context.Context, tx *Tx, at time.Time, r tpp.AuditRecord) error {
	if r.Actor == "" || r.Action == "" {
		return tpp.Errorf(tpp.EInternal, "audit record needs an actor and an action")
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO audit_log
		(at, actor, action, request_id, client_id, consent_id, payment_id, from_status, to_status, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		tx.Time(at), r.Actor, r.Action, r.RequestID, r.ClientID, r.ConsentID, r.PaymentID, r.From, r.To, r.Detail)
	if err != nil {
		return tx.errorf("append audit: %w", err)
	}
	return nil
}

// insertEvent stores a webhook event for clientID within tx. A delivery is
// queued only if the client is active and has a webhook URL; otherwise the
// event is kept (for the events list) but never sent.
func insertEvent(ctx context.Context, tx *Tx, at time.Time, clientID, typ string, data any) (*tpp.WebhookEvent, error) {
	// Writes are serialised (SQLite's BEGIN IMMEDIATE) or serializable
	// (PostgreSQL: two taking the same number cannot both commit, one is
	// retried), so the client's next number is taken once and in commit
	// order.
	var seq int64
	if err := tx.GetContext(ctx, &seq, `SELECT COALESCE(MAX(sequence), 0) + 1 FROM webhook_events WHERE client_id = ?`, clientID); err != nil {
		return nil, tx.errorf("event sequence: %w", err)
	}
	payload, err := tpp.WebhookPayload(typ, seq, at, data)
	if err != nil {
		return nil, tx.errorf("encode event: %w", err)
	}
	ev := &tpp.WebhookEvent{ID: tpp.NewID(tpp.PrefixEvent), ClientID: clientID, Type: typ, Payload: payload, CreatedAt: at}
	var c struct {
		Status     string `db:"status"`
		WebhookURL string `db:"webhook_url"`
	}
	if err := tx.GetContext(ctx, &c, `SELECT status, webhook_url FROM clients WHERE id = ?`, clientID); err != nil {
		return nil, tx.errorf("event for client %s: %w", clientID, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_events (id, client_id, type, payload, created_at, sequence)
		VALUES (?, ?, ?, ?, ?, ?)`, ev.ID, clientID, typ, string(payload), tx.Time(at), seq); err != nil {
		return nil, tx.errorf("insert event: %w", err)
	}
	if c.Status == string(tpp.ClientActive) && c.WebhookURL != "" {
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (event_id, next_attempt_at)
			VALUES (?, ?)`, ev.ID, tx.Time(at)); err != nil {
			return nil, tx.errorf("queue delivery: %w", err)
		}
	}
	return ev, nil
}

// afterCursor returns the condition selecting rows after c in
// (created_at DESC, id DESC) order, with its arguments. prefix qualifies
// the columns ("" or "t.").
func afterCursor(st *Store, prefix string, c tpp.Cursor) (string, []any) {
	if c.IsZero() {
		return "1 = 1", nil
	}
	at := st.Time(c.At)
	return fmt.Sprintf("(%[1]screated_at < ? OR (%[1]screated_at = ? AND %[1]sid < ?))", prefix), []any{at, at, c.ID}
}

// selectPage selects one page of rows newest first (created_at, then id,
// descending): from is "SELECT … FROM table", where and args the filters.
// It adds the cursor's condition and fetches limit+1 rows for pageOf.
func selectPage[R any](ctx context.Context, st *Store, from string, where []string, args []any, limit int, cur tpp.Cursor) ([]R, error) {
	cond, cargs := afterCursor(st, "", cur)
	where = append(where, cond)
	args = append(append(args, cargs...), limit+1)
	var rows []R
	err := st.SelectContext(ctx, &rows, from+` WHERE `+strings.Join(where, " AND ")+
		` ORDER BY created_at DESC, id DESC LIMIT ?`, args...)
	return rows, err
}

// pageOf cuts rows fetched with limit+1 to limit and makes the next cursor
// from the last row kept.
func pageOf[T any](rows []T, limit int, key func(T) tpp.Cursor) tpp.Page[T] {
	if len(rows) <= limit {
		return tpp.Page[T]{Items: rows}
	}
	rows = rows[:limit]
	return tpp.Page[T]{Items: rows, NextCursor: key(rows[len(rows)-1]).Encode()}
}

func encodeStrings(s []string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func decodeStrings(s string) ([]string, error) {
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, fmt.Errorf("bad stored list: %w", err)
	}
	return out, nil
}

// clientIDOfActor returns the client id of a "client:<id>" actor.
func clientIDOfActor(actor string) (string, bool) {
	return strings.CutPrefix(actor, "client:")
}

// checkActorScope fails closed when a client actor acts without being
// scoped to itself: that would let one client touch another's data.
func checkActorScope(actor, clientID string) error {
	if actor == "" {
		return tpp.Errorf(tpp.EInternal, "change has no actor")
	}
	if id, ok := clientIDOfActor(actor); ok && id != clientID {
		return tpp.Errorf(tpp.EInternal, "client actor %q is not scoped to its own client", actor)
	}
	return nil
}
