package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
	goredis "github.com/redis/go-redis/v9"
)

// ClientLimit is a per-client request rate: Rate requests per Period, with
// bursts of up to Burst requests.
type ClientLimit struct {
	Rate   int
	Period time.Duration
	Burst  int
}

// RateDecision is the answer for one request.
type RateDecision struct {
	Allowed bool
	// Limit is the burst: how many requests may come at once.
	Limit     int
	Remaining int
	// RetryAfter is when the next request would be allowed (0 if allowed).
	RetryAfter time.Duration
	// ResetAfter is when the client is back to a full burst.
	ResetAfter time.Duration
}

// ClientRateLimiter limits each fintech client's API requests across all
// replicas with a GCRA limiter (go-redis/redis_rate) under
// "rate:<prefix>client:<client id>": one key and one script call per
// request, timed by Redis TIME.
type ClientRateLimiter struct {
	limiter *redis_rate.Limiter
	keys    Keys
	limit   redis_rate.Limit
}

// NewClientRateLimiter returns a limiter of l per client.
func NewClientRateLimiter(rdb goredis.UniversalClient, keys Keys, l ClientLimit) (*ClientRateLimiter, error) {
	if l.Rate < 1 || l.Period < time.Millisecond || l.Burst < 1 {
		return nil, fmt.Errorf("redis: client rate limit: need rate >= 1, period >= 1ms and burst >= 1 (got %d per %s, burst %d)", l.Rate, l.Period, l.Burst)
	}
	return &ClientRateLimiter{
		limiter: redis_rate.NewLimiter(rdb),
		keys:    keys,
		limit:   redis_rate.Limit{Rate: l.Rate, Period: l.Period, Burst: l.Burst},
	}, nil
}

// Allow counts one request of clientID. A Redis error is returned as such:
// the caller decides (the API answers 503 rather than serve unlimited).
func (r *ClientRateLimiter) Allow(ctx context.Context, clientID string) (RateDecision, error) {
	if clientID == "" {
		return RateDecision{}, errors.New("redis: client rate limit: empty client id")
	}
	res, err := r.limiter.Allow(ctx, r.keys.Key("client", clientID), r.limit)
	if err != nil {
		return RateDecision{}, fmt.Errorf("redis: client rate limit for %s: %w", clientID, err)
	}
	d := RateDecision{Allowed: res.Allowed > 0, Limit: r.limit.Burst, Remaining: res.Remaining, ResetAfter: max(res.ResetAfter, 0)}
	if !d.Allowed {
		d.RetryAfter = max(res.RetryAfter, time.Millisecond)
	}
	return d, nil
}
