package sqlstore

import (
	"context"

	"github.com/bunqtpp/tpp"
)

// AuditLog implements tpp.AuditLog.
type AuditLog struct {
	db *Store
}

var _ tpp.AuditLog = (*AuditLog)(nil)

// NewAuditLog returns the audit log.
func NewAuditLog(db *Store) *AuditLog { return &AuditLog{db: db} }

// AppendAudit appends one record, stamped with the database clock.
func (a *AuditLog) AppendAudit(ctx context.Context, r tpp.AuditRecord) error {
	now := a.db.Now()
	return a.db.Tx(ctx, func(tx *Tx) error { return insertAudit(ctx, tx, now, r) })
}

// ListAudit returns matching records in write order.
func (a *AuditLog) ListAudit(ctx context.Context, f tpp.AuditFilter, afterSeq int64, limit int) ([]tpp.AuditRecord, error) {
	var col, val string
	n := 0
	for _, c := range []struct{ col, v string }{{"client_id", f.ClientID}, {"consent_id", f.ConsentID}, {"payment_id", f.PaymentID}} {
		if c.v != "" {
			col, val = c.col, c.v
			n++
		}
	}
	if n != 1 {
		return nil, tpp.Errorf(tpp.EInternal, "audit list needs exactly one of client, consent or payment")
	}
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	var rows []struct {
		Seq       int64  `db:"seq"`
		At        dbTime `db:"at"`
		Actor     string `db:"actor"`
		Action    string `db:"action"`
		RequestID string `db:"request_id"`
		ClientID  string `db:"client_id"`
		ConsentID string `db:"consent_id"`
		PaymentID string `db:"payment_id"`
		From      string `db:"from_status"`
		To        string `db:"to_status"`
		Detail    string `db:"detail"`
	}
	// col comes from the fixed list above, never from input.
	if err := a.db.SelectContext(ctx, &rows, `SELECT seq, at, actor, action, request_id, client_id, consent_id,
		payment_id, from_status, to_status, detail FROM audit_log WHERE `+col+` = ? AND seq > ? ORDER BY seq LIMIT ?`,
		val, afterSeq, limit); err != nil {
		return nil, a.db.errorf("list audit: %w", err)
	}
	out := make([]tpp.AuditRecord, len(rows))
	for i, r := range rows {
		out[i] = tpp.AuditRecord{Seq: r.Seq, At: r.At.Time, Actor: r.Actor, Action: r.Action, RequestID: r.RequestID,
			ClientID: r.ClientID, ConsentID: r.ConsentID, PaymentID: r.PaymentID, From: r.From, To: r.To, Detail: r.Detail}
	}
	return out, nil
}
