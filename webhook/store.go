package webhook

import (
	"context"
	"errors"
	"time"
)

// Delivery is one event to send, as claimed from the outbox.
type Delivery struct {
	EventID  string // sent as webhook-id; stable across retries
	ClientID string
	Type     string // "consent.updated", "payment.updated"
	Payload  []byte // the exact JSON body that is signed and sent
	URL      string // the client's webhook URL, read at claim time
	// Attempt is the number of this attempt, 1 for the first. The store
	// counts an attempt when it is claimed, so a worker that dies mid-send
	// still uses one up and a poison delivery cannot loop forever.
	Attempt int
	// LeaseToken proves which claim a result belongs to.
	LeaseToken string
	CreatedAt  time.Time
}

// Failure is the outcome of a failed attempt.
type Failure struct {
	At    time.Time
	Error string // what went wrong, for the operator; never secrets or URLs
	// NextAttempt is when to try again; the zero time means give up.
	NextAttempt time.Time
}

// Store is the durable outbox the Dispatcher drains. Implementations must
// be safe for concurrent use by several dispatchers, in this process or
// others sharing the database.
type Store interface {
	// ClaimDue leases up to limit deliveries that are neither delivered nor
	// abandoned, whose next attempt is at or before now, and that carry no
	// lease still valid at now. It sets each one's lease to expire at
	// leaseUntil under a fresh token and counts the attempt, atomically, so
	// no other claimer gets the same delivery until the lease expires.
	ClaimDue(ctx context.Context, now, leaseUntil time.Time, limit int) ([]Delivery, error)
	// Secrets returns the client's signing secrets in plain form
	// ("whsec_..."): the current one first, then any still being rotated
	// out. Each adds one signature.
	Secrets(ctx context.Context, clientID string) ([]string, error)
	// MarkDelivered records success and clears the lease. It may return
	// ErrLeaseLost when another claim holds the delivery; that claim will
	// then send it again (at least once).
	MarkDelivered(ctx context.Context, d Delivery, at time.Time) error
	// MarkFailed records a failed attempt, schedules the next one at
	// f.NextAttempt (or gives up when it is zero) and clears the lease. It
	// returns ErrLeaseLost, changing nothing, when d.LeaseToken no longer
	// holds the delivery.
	MarkFailed(ctx context.Context, d Delivery, f Failure) error
}

// ErrLeaseLost means another claimer took the delivery after this one's
// lease expired; the newer claim decides what happens next.
var ErrLeaseLost = errors.New("webhook: delivery lease lost")
