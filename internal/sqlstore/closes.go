package sqlstore

import (
	"context"
	"strings"
	"time"
)

// MaxCloseAttempts is how often the janitor tries to close a revoked
// consent's bank session and context before it leaves the row for an
// operator to look at.
const MaxCloseAttempts = 10

// queueClientConsentCloses queues the consents that revokeClientConsents
// just revoked (stamped with now) for the janitor, within the same
// transaction: their bunq sessions and Redis contexts must go too, and the
// CLI that revokes has neither Redis nor the bank.
func queueClientConsentCloses(ctx context.Context, tx *Tx, now time.Time, clientID string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO consent_closes (consent_id, queued_at)
		SELECT id, `+tx.st.dialect.TimeParam+` FROM consents WHERE client_id = ? AND status = 'revoked' AND revoked_at = ?
		ON CONFLICT (consent_id) DO NOTHING`, tx.Time(now), clientID, tx.Time(now))
	if err != nil {
		return tx.errorf("queue consent closes of %s: %w", clientID, err)
	}
	return nil
}

// QueueClose queues a revoked consent whose bank session or context could
// not be closed at once (reason says why), for the janitor to retry. A
// consent queued already keeps its place and attempts.
func (s *ConsentService) QueueClose(ctx context.Context, consentID, reason string) error {
	if len(reason) > 500 {
		reason = strings.ToValidUTF8(reason[:500], "")
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO consent_closes (consent_id, queued_at, last_error)
		SELECT id, `+s.db.dialect.TimeParam+`, `+s.db.dialect.TextParam+` FROM consents WHERE id = ? AND status = 'revoked'
		ON CONFLICT (consent_id) DO UPDATE SET last_error = excluded.last_error`,
		s.db.Time(s.db.Now()), reason, consentID); err != nil {
		return s.db.errorf("queue consent close %s: %w", consentID, err)
	}
	return nil
}

// PendingCloses returns up to limit revoked consents whose bank session and
// context are still to be closed, oldest first, leaving out those that
// failed MaxCloseAttempts times.
func (s *ConsentService) PendingCloses(ctx context.Context, limit int) ([]string, error) {
	var ids []string
	if err := s.db.SelectContext(ctx, &ids, `SELECT consent_id FROM consent_closes WHERE attempts < ?
		ORDER BY queued_at, consent_id LIMIT ?`, MaxCloseAttempts, limit); err != nil {
		return nil, s.db.errorf("pending consent closes: %w", err)
	}
	return ids, nil
}

// CloseDone takes a consent off the close queue.
func (s *ConsentService) CloseDone(ctx context.Context, consentID string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM consent_closes WHERE consent_id = ?`, consentID); err != nil {
		return s.db.errorf("consent close done %s: %w", consentID, err)
	}
	return nil
}

// CloseFailed records a failed close; the consent stays queued until
// MaxCloseAttempts.
func (s *ConsentService) CloseFailed(ctx context.Context, consentID, reason string) error {
	if len(reason) > 500 {
		reason = strings.ToValidUTF8(reason[:500], "")
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE consent_closes SET attempts = attempts + 1, last_error = ?
		WHERE consent_id = ?`, reason, consentID); err != nil {
		return s.db.errorf("consent close failed %s: %w", consentID, err)
	}
	return nil
}
