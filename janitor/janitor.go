// Package janitor applies the deadlines that no request triggers: pending
// consents whose 15 minutes ran out become expired, active consents past
// their 180-day re-authentication date become reauth_required (their bank
// context is purged: the token is gone with the transition), both through
// the consent gate (package consent) as for a request, and expired
// idempotency records are deleted. Seven days before a consent's
// re-authentication date it stores a consent.expiring webhook, once per
// authorization period. Requests apply the same rules when they
// touch a consent; the janitor makes the metrics and webhooks timely.
//
// It also closes what a revocation could not: 'tpp clients revoke' revokes
// a client's consents in SQLite only and queues them, and a revocation
// whose bank or Redis call failed queues its consent; the janitor ends
// their bunq sessions and purges their Redis contexts.
package janitor

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/bunqtpp/tpp"
)

// Consents lists the consents whose deadline has passed (the consent
// store).
type Consents interface {
	DueConsents(ctx context.Context, now time.Time, limit int) ([]*tpp.Consent, error)
}

// Deadlines applies a consent's deadline: the move, its audit record and
// the purge of the context are the gate's, as for a request
// (*consent.Gate).
type Deadlines interface {
	ApplyDeadline(ctx context.Context, c *tpp.Consent) (*tpp.Consent, bool, error)
}

// Expiring sends the consent.expiring webhook tpp.ConsentExpiringNotice
// before a consent's re-authentication date (*sqlite.ConsentService).
type Expiring interface {
	NotifyExpiring(ctx context.Context, now time.Time, notice time.Duration, limit int) (int, error)
}

// Idempotency purges expired idempotency records.
type Idempotency interface {
	PurgeIdempotency(ctx context.Context, now time.Time) (int64, error)
}

// Closes is the queue of revoked consents whose bunq session and context
// are still open (*sqlite.ConsentService; 'tpp clients revoke' and failed
// closes at revocation fill it).
type Closes interface {
	PendingCloses(ctx context.Context, limit int) ([]string, error)
	CloseDone(ctx context.Context, consentID string) error
	CloseFailed(ctx context.Context, consentID, reason string) error
}

// Sessions ends a revoked consent's bunq session, if its context is still
// stored, and purges the context (*bankctx.Provider).
type Sessions interface {
	Close(ctx context.Context, consentID string) error
}

// Janitor sweeps periodically. Several replicas may run one each: every
// transition is conditional on the status it read, so at most one wins;
// two replicas closing one consent's session at once cost a refused
// second delete at the bank, nothing more.
type Janitor struct {
	// Consents and Deadlines, both set, apply the deadlines no request
	// triggers.
	Consents    Consents
	Deadlines   Deadlines
	Expiring    Expiring // optional
	Idempotency Idempotency
	// Closes and Sessions, both set, close the sessions of consents
	// revoked with their client or whose close failed at revocation.
	Closes   Closes
	Sessions Sessions
	Clock    tpp.Clock
	Logger   *slog.Logger
	Interval time.Duration // default 1 minute
}

// batch bounds one sweep's work, so a backlog is worked off in steps.
const batch = 200

// closeBatch and closeWorkers bound the session closes of one sweep: each
// may wait for the bank (bankctx bounds one to 5 s), and the deadlines of
// the next sweep must not wait long behind them.
const (
	closeBatch   = 50
	closeWorkers = 4
)

// Run sweeps every Interval until ctx ends.
func (j *Janitor) Run(ctx context.Context) error {
	interval := j.Interval
	if interval <= 0 {
		interval = time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := j.Sweep(ctx); err != nil && ctx.Err() == nil {
			j.log().Error("janitor sweep failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Result counts what one sweep did.
type Result struct {
	Expired, ReauthRequired int
	// ExpiringNotified counts consent.expiring events stored.
	ExpiringNotified int
	// Closed counts revoked consents whose session and context were closed.
	Closed            int
	IdempotencyPurged int64
}

// Sweep runs once.
func (j *Janitor) Sweep(ctx context.Context) (Result, error) {
	var res Result
	now := j.Clock.Now()
	var errs []error
	if j.Consents != nil && j.Deadlines != nil {
		due, err := j.Consents.DueConsents(ctx, now, batch)
		if err != nil {
			return res, err
		}
		errs = j.applyDeadlines(ctx, due, &res)
	}
	if j.Expiring != nil {
		n, err := j.Expiring.NotifyExpiring(ctx, now, tpp.ConsentExpiringNotice, batch)
		res.ExpiringNotified = n
		if err != nil {
			errs = append(errs, err)
		}
	}
	if j.Closes != nil && j.Sessions != nil {
		n, err := j.closeRevoked(ctx)
		res.Closed = n
		if err != nil {
			errs = append(errs, err)
		}
	}
	if j.Idempotency != nil {
		n, err := j.Idempotency.PurgeIdempotency(ctx, now)
		if err != nil {
			errs = append(errs, err)
		}
		res.IdempotencyPurged = n
	}
	if res != (Result{}) {
		j.log().Info("janitor sweep", "expired", res.Expired, "reauth_required", res.ReauthRequired,
			"expiring_notified", res.ExpiringNotified,
			"sessions_closed", res.Closed, "idempotency_purged", res.IdempotencyPurged)
	}
	return res, errors.Join(errs...)
}

// applyDeadlines moves the consents whose deadline has passed. A consent
// another replica or a request moved first is skipped.
func (j *Janitor) applyDeadlines(ctx context.Context, due []*tpp.Consent, res *Result) []error {
	var errs []error
	for _, c := range due {
		nc, moved, err := j.Deadlines.ApplyDeadline(ctx, c)
		switch {
		case err != nil:
			errs = append(errs, err)
		case !moved:
		case nc.Status == tpp.ConsentExpired:
			res.Expired++
		case nc.Status == tpp.ConsentReauthRequired:
			res.ReauthRequired++
		}
	}
	return errs
}

// closeRevoked works off one batch of the close queue. A close whose bank
// call failed has still purged the context (bankctx.Provider.Close), so
// the retry at the next sweep finds nothing stored and only confirms the
// purge: a session the bank could not delete is left to expire there.
func (j *Janitor) closeRevoked(ctx context.Context) (int, error) {
	ids, err := j.Closes.PendingCloses(ctx, closeBatch)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	var (
		mu     sync.Mutex
		closed int
		errs   []error
		wg     sync.WaitGroup
	)
	work := make(chan string)
	for range min(closeWorkers, len(ids)) {
		wg.Go(func() {
			for id := range work {
				ok, err := j.closeOne(ctx, id)
				mu.Lock()
				if ok {
					closed++
				}
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		})
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		work <- id
	}
	close(work)
	wg.Wait()
	return closed, errors.Join(errs...)
}

// closeOne closes one queued consent. A failed close is logged and
// counted on its row for the next sweep; only store failures are errors.
func (j *Janitor) closeOne(ctx context.Context, id string) (bool, error) {
	if err := j.Sessions.Close(ctx, id); err != nil {
		j.log().Warn("closing the bank session of a revoked consent failed",
			"consent_id", id, "error", err)
		return false, j.Closes.CloseFailed(ctx, id, err.Error())
	}
	return true, j.Closes.CloseDone(ctx, id)
}

func (j *Janitor) log() *slog.Logger {
	if j.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return j.Logger
}
