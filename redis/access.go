package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// PSD2 allows at most 4 unattended account reads per consent per day.
const (
	DefaultAccessLimit  = 4
	DefaultAccessWindow = 24 * time.Hour
)

// accessScript is the sliding-window log of slidingWindowScript, reporting
// a decision instead of a wait: {allowed 0/1, remaining, retry after µs}.
// Refused calls are not recorded.
//
// KEYS[1] log; ARGV[1] limit; ARGV[2] window in µs; ARGV[3] unique suffix.
var accessScript = goredis.NewScript(`
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if n < limit then
  redis.call('ZADD', KEYS[1], now, now .. ':' .. ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
  return {1, limit - n - 1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = tonumber(oldest[2]) + window - now
if wait < 1 then wait = 1 end
return {0, 0, wait}
`)

// Decision is the outcome of AccessWindow.Allow.
type Decision struct {
	Allowed bool
	// Limit is the number of reads allowed per window.
	Limit int
	// Remaining is how many more reads the window allows after this one.
	Remaining int
	// RetryAfter is, when refused, how long until the oldest read in the
	// window ages out and one more is allowed.
	RetryAfter time.Duration
}

// AccessWindow enforces the PSD2 access frequency for unattended reads
// (no PSU-IP-Address): at most Limit reads per consent in any rolling
// Window. It is a sliding log, not a fixed calendar day: a read counts
// for exactly Window after it happened, so no burst of 2×Limit can
// straddle a day boundary. Logs live under "<prefix>access:<consent id>"
// and use Redis time, so every replica agrees.
type AccessWindow struct {
	rdb    goredis.UniversalClient
	keys   Keys
	limit  int
	window time.Duration
}

// NewAccessWindow returns a window of limit reads per window
// (DefaultAccessLimit and DefaultAccessWindow when 0).
func NewAccessWindow(rdb goredis.UniversalClient, keys Keys, limit int, window time.Duration) (*AccessWindow, error) {
	if limit == 0 {
		limit = DefaultAccessLimit
	}
	if window == 0 {
		window = DefaultAccessWindow
	}
	if limit < 1 || window < time.Millisecond {
		return nil, fmt.Errorf("redis: access window: need limit >= 1 and window >= 1ms (got %d per %s)", limit, window)
	}
	return &AccessWindow{rdb: rdb, keys: keys, limit: limit, window: window}, nil
}

// Allow records one unattended read of consentID if the window has room.
// A Redis error is returned as such: callers must refuse the read then
// (fail closed), not treat it as allowed.
func (a *AccessWindow) Allow(ctx context.Context, consentID string) (Decision, error) {
	if consentID == "" {
		return Decision{}, errors.New("redis: access window: empty consent id")
	}
	res, err := accessScript.Run(ctx, a.rdb, []string{a.keys.Key("access", consentID)}, a.limit, a.window.Microseconds(), randomToken(8)).Int64Slice()
	if err != nil {
		return Decision{}, fmt.Errorf("redis: access window for consent %s: %w", consentID, err)
	}
	if len(res) != 3 {
		return Decision{}, fmt.Errorf("redis: access window for consent %s: unexpected script reply %v", consentID, res)
	}
	return Decision{
		Allowed:    res[0] == 1,
		Limit:      a.limit,
		Remaining:  int(res[1]),
		RetryAfter: time.Duration(res[2]) * time.Microsecond,
	}, nil
}

// peekScript counts the reads in the window without recording one.
//
// KEYS[1] log; ARGV[1] window in µs.
var peekScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
return redis.call('ZCOUNT', KEYS[1], '(' .. (now - tonumber(ARGV[1])), '+inf')
`)

// Peek tells how many unattended reads the window still allows, without
// using one: attended reads report it in their RateLimit headers.
func (a *AccessWindow) Peek(ctx context.Context, consentID string) (Decision, error) {
	if consentID == "" {
		return Decision{}, errors.New("redis: access window: empty consent id")
	}
	n, err := peekScript.Run(ctx, a.rdb, []string{a.keys.Key("access", consentID)}, a.window.Microseconds()).Int64()
	if err != nil {
		return Decision{}, fmt.Errorf("redis: access window for consent %s: %w", consentID, err)
	}
	remaining := a.limit - int(n)
	if remaining < 0 {
		remaining = 0
	}
	return Decision{Allowed: remaining > 0, Limit: a.limit, Remaining: remaining}, nil
}
