package webhook

import (
	"context"
	"fmt"
	"time"

	"github.com/bunqtpp/tpp"
)

// Outbox is the part of tpp.WebhookOutbox (implemented by sqlite.Outbox)
// that delivery needs.
type Outbox interface {
	ClaimDeliveries(ctx context.Context, limit int, lease time.Duration) ([]*tpp.WebhookDelivery, error)
	MarkDelivered(ctx context.Context, eventID, leaseToken string) error
	MarkFailed(ctx context.Context, eventID, leaseToken, reason string) error
}

// RetryScheduler is an optional method of an Outbox that takes the
// dispatcher's retry time (with jitter and the receiver's Retry-After)
// instead of its own schedule: next is when to try again, and the zero time
// means give up. OutboxStore uses it when the outbox has it.
type RetryScheduler interface {
	ScheduleRetry(ctx context.Context, eventID, leaseToken, reason string, next time.Time) error
}

// SecretSource opens a client's sealed webhook signing secret
// (tpp.ClientService, e.g. *sqlite.ClientService, has this method).
type SecretSource interface {
	WebhookSecret(ctx context.Context, clientID string) (string, error)
}

// OutboxStore adapts a tpp.WebhookOutbox and a SecretSource to Store.
//
// The outbox keeps its own clock: it takes the lease length from ClaimDue's
// arguments. Unless it also implements RetryScheduler, tpp.WebhookOutbox's
// MarkFailed stores the reason but schedules the next attempt itself
// (tpp.WebhookRetryDelay), so Failure.NextAttempt, and with it the
// dispatcher's jitter and a receiver's Retry-After, is not applied. Give the
// database and the Dispatcher the same clock, and leave Options.Backoff at
// its default, which is that same schedule, so both agree on when a
// delivery is given up.
type OutboxStore struct {
	outbox  Outbox
	secrets SecretSource
}

var _ Store = (*OutboxStore)(nil)

// NewOutboxStore returns a Store over outbox, signing with the secrets
// from secrets.
func NewOutboxStore(outbox Outbox, secrets SecretSource) *OutboxStore {
	return &OutboxStore{outbox: outbox, secrets: secrets}
}

// ClaimDue claims up to limit due deliveries for leaseUntil - now.
func (s *OutboxStore) ClaimDue(ctx context.Context, now, leaseUntil time.Time, limit int) ([]Delivery, error) {
	lease := leaseUntil.Sub(now)
	if lease <= 0 || limit <= 0 {
		return nil, fmt.Errorf("webhook: claim with lease %v and limit %d", lease, limit)
	}
	ds, err := s.outbox.ClaimDeliveries(ctx, limit, lease)
	if err != nil {
		return nil, err
	}
	out := make([]Delivery, 0, len(ds))
	for _, d := range ds {
		out = append(out, Delivery{
			EventID:    d.Event.ID,
			ClientID:   d.Event.ClientID,
			Type:       d.Event.Type,
			Payload:    d.Event.Payload,
			URL:        d.URL,
			Attempt:    d.Attempt,
			LeaseToken: d.LeaseToken,
			CreatedAt:  d.Event.CreatedAt,
		})
	}
	return out, nil
}

// Secrets returns the client's one current secret.
func (s *OutboxStore) Secrets(ctx context.Context, clientID string) ([]string, error) {
	sec, err := s.secrets.WebhookSecret(ctx, clientID)
	if err != nil {
		return nil, err
	}
	return []string{sec}, nil
}

// MarkDelivered records success; a lost lease becomes ErrLeaseLost.
func (s *OutboxStore) MarkDelivered(ctx context.Context, d Delivery, _ time.Time) error {
	return leaseErr(s.outbox.MarkDelivered(ctx, d.EventID, d.LeaseToken))
}

// MarkFailed records the failure, at f.NextAttempt when the outbox is a
// RetryScheduler, else on the outbox's own schedule. A lost lease becomes
// ErrLeaseLost.
func (s *OutboxStore) MarkFailed(ctx context.Context, d Delivery, f Failure) error {
	if rs, ok := s.outbox.(RetryScheduler); ok {
		return leaseErr(rs.ScheduleRetry(ctx, d.EventID, d.LeaseToken, f.Error, f.NextAttempt))
	}
	return leaseErr(s.outbox.MarkFailed(ctx, d.EventID, d.LeaseToken, f.Error))
}

// leaseErr maps the outbox's EConflict (lease lost) to ErrLeaseLost.
func leaseErr(err error) error {
	if err != nil && tpp.ErrorCode(err) == tpp.EConflict {
		return fmt.Errorf("%w: %w", ErrLeaseLost, err)
	}
	return err
}
