// Package janitor applies the deadlines that no request triggers: pending
// consents whose 15 minutes ran out become expired, active consents past
// their 180-day re-authentication date become reauth_required (their bank
// context is purged: the token is gone with the transition), and expired
// idempotency records are deleted. Requests apply the same rules when they
// touch a consent; the janitor makes the metrics and webhooks timely.
package janitor

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/bunqtpp/tpp"
)

// Consents is the consent store the janitor needs.
type Consents interface {
	DueConsents(ctx context.Context, now time.Time, limit int) ([]*tpp.Consent, error)
	TransitionConsent(ctx context.Context, t tpp.ConsentTransition) (*tpp.Consent, error)
}

// Idempotency purges expired idempotency records.
type Idempotency interface {
	PurgeIdempotency(ctx context.Context, now time.Time) (int64, error)
}

// Contexts forgets a consent's bank context.
type Contexts interface {
	Purge(ctx context.Context, consentID string) error
}

// Janitor sweeps periodically. Several replicas may run one each: every
// transition is conditional on the status it read, so at most one wins.
type Janitor struct {
	Consents    Consents
	Idempotency Idempotency
	Contexts    Contexts
	Clock       tpp.Clock
	Logger      *slog.Logger
	Interval    time.Duration // default 1 minute
}

// batch bounds one sweep's work, so a backlog is worked off in steps.
const batch = 200

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
	IdempotencyPurged       int64
}

// Sweep runs once.
func (j *Janitor) Sweep(ctx context.Context) (Result, error) {
	var res Result
	now := j.Clock.Now()
	due, err := j.Consents.DueConsents(ctx, now, batch)
	if err != nil {
		return res, err
	}
	var errs []error
	for _, c := range due {
		to := tpp.ConsentExpired
		if c.Status == tpp.ConsentActive {
			to = tpp.ConsentReauthRequired
		}
		_, err := j.Consents.TransitionConsent(ctx, tpp.ConsentTransition{
			ID: c.ID, From: c.Status, To: to, Actor: tpp.ActorSystem, Detail: "deadline passed",
		})
		if tpp.ErrorCode(err) == tpp.EConflict {
			continue // another replica or a request got there first
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if to == tpp.ConsentExpired {
			res.Expired++
			continue
		}
		res.ReauthRequired++
		if j.Contexts != nil {
			if err := j.Contexts.Purge(ctx, c.ID); err != nil {
				errs = append(errs, err)
			}
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
		j.log().Info("janitor sweep", "expired", res.Expired, "reauth_required", res.ReauthRequired, "idempotency_purged", res.IdempotencyPurged)
	}
	return res, errors.Join(errs...)
}

func (j *Janitor) log() *slog.Logger {
	if j.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return j.Logger
}
