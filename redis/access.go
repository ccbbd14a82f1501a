package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bunqtpp/tpp"
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

	// PeekMaxAge is how long Peek may answer from memory (default
	// DefaultPeekMaxAge; 0 or less always asks Redis). Peek only informs
	// (attended reads' RateLimit headers, which every attended read would
	// otherwise pay a round trip for): a remembered answer is dropped when
	// this process records a read or a read ages out of the window, so it
	// misses only other replicas' unattended reads, for at most this long.
	// Allow always asks Redis. Set it before use.
	PeekMaxAge time.Duration

	mu    sync.Mutex
	peeks map[string]peeked
	// allows counts finished Allow calls, so that a Peek that raced one
	// does not remember what it read before it.
	allows atomic.Uint64
}

// DefaultPeekMaxAge bounds how stale a Peek may be about other replicas.
const DefaultPeekMaxAge = time.Second

// maxPeeks bounds the remembered Peek answers.
const maxPeeks = 10_000

type peeked struct {
	d     tpp.AccessDecision
	until time.Time
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
	return &AccessWindow{rdb: rdb, keys: keys, limit: limit, window: window, PeekMaxAge: DefaultPeekMaxAge, peeks: map[string]peeked{}}, nil
}

// Allow records one unattended read of consentID if the window has room.
// A Redis error is returned as such: callers must refuse the read then
// (fail closed), not treat it as allowed.
func (a *AccessWindow) Allow(ctx context.Context, consentID string) (tpp.AccessDecision, error) {
	if consentID == "" {
		return tpp.AccessDecision{}, errors.New("redis: access window: empty consent id")
	}
	res, err := accessScript.Run(ctx, a.rdb, []string{a.keys.Key("access", consentID)}, a.limit, a.window.Microseconds(), tpp.RandomToken(8)).Int64Slice()
	// Whatever happened, a remembered Peek of this consent may be wrong now.
	a.allows.Add(1)
	a.mu.Lock()
	delete(a.peeks, consentID)
	a.mu.Unlock()
	if err != nil {
		return tpp.AccessDecision{}, fmt.Errorf("redis: access window for consent %s: %w", consentID, err)
	}
	if len(res) != 3 {
		return tpp.AccessDecision{}, fmt.Errorf("redis: access window for consent %s: unexpected script reply %v", consentID, res)
	}
	return tpp.AccessDecision{
		Allowed:    res[0] == 1,
		Limit:      a.limit,
		Remaining:  int(res[1]),
		RetryAfter: time.Duration(res[2]) * time.Microsecond,
	}, nil
}

// Reset deletes consentID's window (the consent was revoked: nothing is
// left to count) and this process's memory of it.
func (a *AccessWindow) Reset(ctx context.Context, consentID string) error {
	if consentID == "" {
		return errors.New("redis: access window: empty consent id")
	}
	err := a.rdb.Del(ctx, a.keys.Key("access", consentID)).Err()
	a.allows.Add(1) // a Peek in flight must not remember the old log
	a.mu.Lock()
	delete(a.peeks, consentID)
	a.mu.Unlock()
	if err != nil {
		return fmt.Errorf("redis: access window for consent %s: reset: %w", consentID, err)
	}
	return nil
}

// Peek tells how many unattended reads the window still allows, without
// using one: attended reads report it in their RateLimit headers. It may
// answer from memory (see PeekMaxAge). It reads the log and Redis's clock
// in one pipeline rather than with a script: the log holds at most Limit
// live entries (Allow records none beyond), so counting them here is
// cheap, and a script costs an embedded Redis far more than two commands.
func (a *AccessWindow) Peek(ctx context.Context, consentID string) (tpp.AccessDecision, error) {
	if consentID == "" {
		return tpp.AccessDecision{}, errors.New("redis: access window: empty consent id")
	}
	start := time.Now()
	if a.PeekMaxAge > 0 {
		a.mu.Lock()
		p, ok := a.peeks[consentID]
		a.mu.Unlock()
		if ok && start.Before(p.until) {
			return p.d, nil
		}
	}
	allows := a.allows.Load()
	pipe := a.rdb.Pipeline()
	now := pipe.Time(ctx)
	log := pipe.ZRangeWithScores(ctx, a.keys.Key("access", consentID), 0, -1)
	if _, err := pipe.Exec(ctx); err != nil {
		return tpp.AccessDecision{}, fmt.Errorf("redis: access window for consent %s: %w", consentID, err)
	}
	// As Allow counts: reads scored (µs of Redis time) after now - window.
	nowUS := now.Val().UnixMicro()
	since := nowUS - a.window.Microseconds()
	n := 0
	oldest := int64(-1)
	for _, z := range log.Val() {
		if sc := int64(z.Score); sc > since {
			n++
			if oldest < 0 || sc < oldest {
				oldest = sc
			}
		}
	}
	remaining := max(a.limit-n, 0)
	d := tpp.AccessDecision{Allowed: remaining > 0, Limit: a.limit, Remaining: remaining}
	if a.PeekMaxAge > 0 {
		until := start.Add(a.PeekMaxAge)
		if oldest >= 0 {
			// The answer changes when the oldest read ages out.
			if ages := start.Add(time.Duration(oldest-since) * time.Microsecond); ages.Before(until) {
				until = ages
			}
		}
		a.remember(consentID, peeked{d: d, until: until}, allows, start)
	}
	return d, nil
}

// remember keeps a Peek answer unless an Allow finished since it was read.
func (a *AccessWindow) remember(consentID string, p peeked, allows uint64, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.allows.Load() != allows {
		return
	}
	if len(a.peeks) >= maxPeeks {
		for k, v := range a.peeks {
			if !now.Before(v.until) {
				delete(a.peeks, k)
			}
		}
		if len(a.peeks) >= maxPeeks {
			clear(a.peeks)
		}
	}
	a.peeks[consentID] = p
}
