package redis

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bunqtpp/tpp"
)

// Compare-and-delete and compare-and-extend: only the holder's token may
// touch the lock, so a holder whose lock expired cannot free someone else's.
var (
	releaseScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)
	extendScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`)
)

// Locker hands out distributed locks stored under "<prefix>lock:<name>".
// One Redis instance decides; the lock is for efficiency (one context
// rebuild per consent at a time), and holders must not assume more than
// "nobody else held it until ttl, unless Extend succeeded".
type Locker struct {
	rdb  goredis.UniversalClient
	keys Keys
	// Backoff between attempts in Acquire grows from MinBackoff to MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
}

// NewLocker returns a Locker with backoff from 5 ms to 100 ms.
func NewLocker(rdb goredis.UniversalClient, keys Keys) *Locker {
	return &Locker{rdb: rdb, keys: keys, MinBackoff: 5 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
}

// Lock is a held lock; Locker hands it out as a tpp.Lock.
type Lock struct {
	rdb   goredis.UniversalClient
	key   string
	token string
}

// TryAcquire takes the lock name for ttl, or returns tpp.ErrLocked at once.
func (lk *Locker) TryAcquire(ctx context.Context, name string, ttl time.Duration) (tpp.Lock, error) {
	if name == "" {
		return nil, errors.New("redis: lock: empty name")
	}
	if ttl < time.Millisecond {
		return nil, fmt.Errorf("redis: lock %s: ttl %s is below 1 ms", name, ttl)
	}
	l := &Lock{rdb: lk.rdb, key: lk.keys.Key("lock", name), token: tpp.RandomToken(16)}
	ok, err := lk.rdb.SetNX(ctx, l.key, l.token, ttl).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: lock %s: %w", name, err)
	}
	if !ok {
		return nil, tpp.ErrLocked
	}
	return l, nil
}

// Acquire takes the lock name for ttl, waiting with jittered exponential
// backoff while someone else holds it, until ctx ends.
func (lk *Locker) Acquire(ctx context.Context, name string, ttl time.Duration) (tpp.Lock, error) {
	backoff := max(lk.MinBackoff, time.Millisecond)
	for {
		l, err := lk.TryAcquire(ctx, name, ttl)
		if !errors.Is(err, tpp.ErrLocked) {
			return l, err
		}
		// Full jitter keeps many waiters from retrying in lockstep.
		d := time.Duration(mrand.Int64N(int64(backoff))) + time.Millisecond
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("redis: lock %s: %w", name, ctx.Err())
		case <-t.C:
		}
		backoff = min(backoff*2, max(lk.MaxBackoff, lk.MinBackoff))
	}
}

// Release frees the lock if it is still ours; tpp.ErrLockLost if it expired.
func (l *Lock) Release(ctx context.Context) error {
	n, err := releaseScript.Run(ctx, l.rdb, []string{l.key}, l.token).Int()
	if err != nil {
		return fmt.Errorf("redis: release %s: %w", l.key, err)
	}
	if n == 0 {
		return tpp.ErrLockLost
	}
	return nil
}

// Extend resets the lock's expiry to ttl from now if it is still ours;
// tpp.ErrLockLost if it expired.
func (l *Lock) Extend(ctx context.Context, ttl time.Duration) error {
	if ttl < time.Millisecond {
		return fmt.Errorf("redis: extend %s: ttl %s is below 1 ms", l.key, ttl)
	}
	n, err := extendScript.Run(ctx, l.rdb, []string{l.key}, l.token, ttl.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("redis: extend %s: %w", l.key, err)
	}
	if n == 0 {
		return tpp.ErrLockLost
	}
	return nil
}
