package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bunqtpp/tpp"
)

// slidingWindowScript is a sliding-window log: a sorted set of admission
// times (microseconds, from Redis TIME so replicas with skewed clocks agree)
// with unique members. It drops entries older than the window, then admits
// and returns 0 if fewer than limit remain, or returns how many
// microseconds until the oldest entry leaves the window.
//
// KEYS[1] log; ARGV[1] limit; ARGV[2] window in µs; ARGV[3] unique suffix.
var slidingWindowScript = goredis.NewScript(`
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, now .. ':' .. ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = tonumber(oldest[2]) + window - now
if wait < 1 then wait = 1 end
return wait
`)

// RateBudget admits calls within rate limits shared by every replica, under
// "<prefix>rate:<key>". It satisfies psd2.Budget.
type RateBudget struct {
	rdb  goredis.UniversalClient
	keys Keys
	// OnWait, if set, is called once per Wait that had to wait, with the
	// total time waited (for metrics).
	OnWait func(key string, d time.Duration)
}

// NewRateBudget returns a budget storing its logs in rdb.
func NewRateBudget(rdb goredis.UniversalClient, keys Keys) *RateBudget {
	return &RateBudget{rdb: rdb, keys: keys}
}

// Wait blocks until one more call under key fits in limit calls per
// window, or returns ctx.Err(). It never fails for being over the limit; it
// fails for invalid arguments and when Redis is unreachable (closed: no
// admission without the shared count).
func (b *RateBudget) Wait(ctx context.Context, key string, limit int, window time.Duration) error {
	if key == "" || limit < 1 || window < time.Microsecond {
		return fmt.Errorf("redis: rate budget %q: need a key, limit >= 1 and window >= 1µs (got %d per %s)", key, limit, window)
	}
	rkey := b.keys.Key("rate", key)
	var waited time.Duration
	for {
		waitUS, err := admit(ctx, b.rdb, rkey, limit, window)
		if err != nil {
			return fmt.Errorf("redis: rate budget %s: %w", key, err)
		}
		if waitUS == 0 {
			if waited > 0 && b.OnWait != nil {
				b.OnWait(key, waited)
			}
			return nil
		}
		d := time.Duration(waitUS) * time.Microsecond
		start := time.Now()
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			waited += time.Since(start)
			if b.OnWait != nil {
				b.OnWait(key, waited)
			}
			return ctx.Err()
		case <-t.C:
		}
		waited += time.Since(start)
	}
}

// admit runs the sliding-window script once and returns 0 when admitted or
// the microseconds to wait.
func admit(ctx context.Context, rdb goredis.UniversalClient, key string, limit int, window time.Duration) (int64, error) {
	n, err := slidingWindowScript.Run(ctx, rdb, []string{key}, limit, window.Microseconds(), tpp.RandomToken(8)).Int64()
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, errors.New("negative wait from script")
	}
	return n, nil
}
