package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bunqtpp/tpp"
	"golang.org/x/sync/singleflight"
)

// CacheOptions tune a Cache. Zero values pick the defaults.
type CacheOptions struct {
	// Sealer, if set, seals every cached value (account data is personal
	// data) with associated data "cache:<key>".
	Sealer Sealer
	// LockTTL bounds how long one replica may hold a key's load lock
	// (default 10 s). A load running longer lets another replica load too.
	LockTTL time.Duration
	// WaitForWinner is how long a replica that lost the load lock waits
	// for the winner's value before loading itself (default 3 s).
	WaitForWinner time.Duration
	// PollInterval is how often the loser checks for the value (default 10 ms).
	PollInterval time.Duration
	// LoadTimeout bounds a coalesced load, which outlives any one caller's
	// context (default 30 s).
	LoadTimeout time.Duration
	// OnError, if set, hears about Redis errors the cache absorbed: the
	// cache only saves work, so a Redis failure degrades it to loading.
	OnError func(op string, err error)
	// GroupFields, when above 0, groups keys by their first GroupFields
	// ':'-separated fields ("aisp:<consent>" for 2), so PurgeGroup can
	// delete a group's values (a revoked consent's account data). Each
	// group keeps an index of its live keys; a value whose index entry
	// cannot be written is not stored.
	GroupFields int
	// Clock dates read marks and group index entries (default
	// tpp.SystemClock). Waiting for another replica's value is measured
	// with real timers, so that wait reads the wall clock.
	Clock tpp.Clock
}

// Cache is a read-through cache in Redis under "<prefix>cache:<key>" that
// coalesces identical concurrent loads.
//
// What it guarantees, for callers with fresh=false and loads that finish
// within WaitForWinner and LockTTL: concurrent calls for one key in one
// process share one load (singleflight), and across replicas one replica
// loads while the others wait for its value, so N replicas × M callers
// cause exactly one load. A replica that waits longer than WaitForWinner
// loads itself, so with a slow loader each replica loads at most once.
// fresh=true skips the cached read; fresh calls coalesce within a process
// but each replica loads for its own, without the load lock: a fresh
// caller would not wait for another's value anyway, so the lock would cost
// two round trips per read for the benefit of non-fresh callers on other
// replicas that miss meanwhile (they load too). A fresh value is stored
// when this process read the key without fresh within the last ttl: a
// caller that always bypasses the cache would otherwise pay a write per
// read that nobody reads. Errors from load are returned, never cached.
type Cache struct {
	rdb    goredis.UniversalClient
	keys   Keys
	opts   CacheOptions
	locker *Locker
	group  singleflight.Group

	// readUntil holds, per key, until when a non-fresh read makes storing
	// a fresh value worthwhile (the read's time plus its ttl).
	mu        sync.Mutex
	readUntil map[string]time.Time
}

// maxReadMarks bounds Cache.readUntil.
const maxReadMarks = 10_000

// NewCache returns a cache storing in rdb.
func NewCache(rdb goredis.UniversalClient, keys Keys, opts CacheOptions) *Cache {
	if opts.LockTTL <= 0 {
		opts.LockTTL = 10 * time.Second
	}
	if opts.WaitForWinner <= 0 {
		opts.WaitForWinner = 3 * time.Second
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 10 * time.Millisecond
	}
	if opts.LoadTimeout <= 0 {
		opts.LoadTimeout = 30 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = tpp.SystemClock{}
	}
	return &Cache{rdb: rdb, keys: keys, opts: opts, locker: NewLocker(rdb, keys), readUntil: map[string]time.Time{}}
}

type cacheResult struct {
	value []byte
	hit   bool
}

// GetOrLoad returns the value of key: from Redis if present and !fresh
// (hit is true), else from load, storing the result for ttl. hit is also
// true when another replica loaded the value for us.
func (c *Cache) GetOrLoad(ctx context.Context, key string, ttl time.Duration, fresh bool, load func(context.Context) ([]byte, error)) ([]byte, bool, error) {
	if key == "" {
		return nil, false, errors.New("redis: cache: empty key")
	}
	if ttl < time.Millisecond {
		return nil, false, fmt.Errorf("redis: cache %s: ttl %s is below 1 ms", key, ttl)
	}
	rkey := c.keys.Key("cache", key)
	store := true
	if fresh {
		store = c.readRecently(key)
	} else {
		c.markRead(key, ttl)
		if v, ok := c.read(ctx, key, rkey); ok {
			return v, true, nil
		}
	}
	flight := "0" + key
	if fresh {
		flight = "1" + key
	}
	ch := c.group.DoChan(flight, func() (any, error) {
		// The load is shared: one caller giving up must not cancel it
		// for the others.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.LoadTimeout)
		defer cancel()
		if fresh {
			if !store {
				v, err := load(fctx)
				return cacheResult{value: v}, err
			}
			return c.loadAndStore(fctx, key, rkey, ttl, load)
		}
		return c.fill(fctx, key, rkey, ttl, load)
	})
	select {
	case <-ctx.Done():
		return nil, false, ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return nil, false, r.Err
		}
		res := r.Val.(cacheResult)
		v := res.value
		if r.Shared {
			v = bytes.Clone(v) // callers may modify what they get
		}
		return v, res.hit, nil
	}
}

// markRead notes a non-fresh read of key.
func (c *Cache) markRead(key string, ttl time.Duration) {
	now := c.opts.Clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.readUntil[key]; !ok && len(c.readUntil) >= maxReadMarks {
		for k, t := range c.readUntil {
			if !now.Before(t) {
				delete(c.readUntil, k)
			}
		}
		if len(c.readUntil) >= maxReadMarks {
			clear(c.readUntil) // at worst a few fresh values go unstored
		}
	}
	c.readUntil[key] = now.Add(ttl)
}

// readRecently reports whether key was read without fresh within the ttl
// of that read.
func (c *Cache) readRecently(key string) bool {
	c.mu.Lock()
	t, ok := c.readUntil[key]
	c.mu.Unlock()
	return ok && c.opts.Clock.Now().Before(t)
}

// Delete drops key from the cache.
func (c *Cache) Delete(ctx context.Context, key string) error {
	if err := c.rdb.Del(ctx, c.keys.Key("cache", key)).Err(); err != nil {
		return fmt.Errorf("redis: cache delete %s: %w", key, err)
	}
	return nil
}

// fill loads key once across replicas: the holder of the key's load lock
// loads and stores; the others poll for its value.
func (c *Cache) fill(ctx context.Context, key, rkey string, ttl time.Duration, load func(context.Context) ([]byte, error)) (cacheResult, error) {
	giveUp := time.Now().Add(c.opts.WaitForWinner)
	for {
		lock, err := c.locker.TryAcquire(ctx, "cache:"+key, c.opts.LockTTL)
		if err == nil {
			defer func() {
				if err := lock.Release(context.WithoutCancel(ctx)); err != nil {
					c.report("unlock", err)
				}
			}()
			// Another replica may have stored it since our first read.
			if v, ok := c.read(ctx, key, rkey); ok {
				return cacheResult{v, true}, nil
			}
			return c.loadAndStore(ctx, key, rkey, ttl, load)
		}
		if !errors.Is(err, tpp.ErrLocked) {
			c.report("lock", err)
			return c.loadAndStore(ctx, key, rkey, ttl, load)
		}
		lockKey := c.keys.Key("lock", "cache:"+key)
		for {
			if !time.Now().Before(giveUp) {
				return c.loadAndStore(ctx, key, rkey, ttl, load)
			}
			t := time.NewTimer(c.opts.PollInterval)
			select {
			case <-ctx.Done():
				t.Stop()
				return cacheResult{}, ctx.Err()
			case <-t.C:
			}
			if v, ok := c.read(ctx, key, rkey); ok {
				return cacheResult{v, true}, nil
			}
			n, err := c.rdb.Exists(ctx, lockKey).Result()
			if err != nil {
				c.report("lock", err)
				return c.loadAndStore(ctx, key, rkey, ttl, load)
			}
			if n == 0 {
				// The winner finished without a value (its load failed):
				// compete for the lock again.
				break
			}
		}
	}
}

func (c *Cache) loadAndStore(ctx context.Context, key, rkey string, ttl time.Duration, load func(context.Context) ([]byte, error)) (cacheResult, error) {
	v, err := load(ctx)
	if err != nil {
		return cacheResult{}, err
	}
	stored := v
	if c.opts.Sealer != nil {
		stored, err = c.opts.Sealer.Seal(v, cacheAD(key))
		if err != nil {
			// Never fall back to storing personal data in clear.
			c.report("seal", err)
			return cacheResult{v, false}, nil
		}
	}
	if group := c.groupOf(key); group != "" {
		// Index first: a value in Redis is always one PurgeGroup finds.
		if err := c.index(ctx, group, rkey, ttl); err != nil {
			c.report("index", err)
			return cacheResult{v, false}, nil
		}
	}
	if err := c.rdb.Set(ctx, rkey, stored, ttl).Err(); err != nil {
		c.report("set", err)
	}
	return cacheResult{v, false}, nil
}

// groupOf returns the group of key ("" when keys are not grouped or key has
// fewer fields).
func (c *Cache) groupOf(key string) string {
	n := c.opts.GroupFields
	if n <= 0 {
		return ""
	}
	parts := strings.SplitN(key, ":", n+1)
	if len(parts) <= n {
		return ""
	}
	return strings.Join(parts[:n], ":")
}

// index records rkey in its group's index, a sorted set under
// "<prefix>cacheidx:<group>" scored by the value's expiry (Unix ms). Stale
// members are trimmed as it goes and the index lives as long as its
// longest-lived value. Each command touches the index key only (Redis
// Cluster); PurgeGroup deletes the members one key per command.
func (c *Cache) index(ctx context.Context, group, rkey string, ttl time.Duration) error {
	ikey := c.keys.Key("cacheidx", group)
	now := c.opts.Clock.Now()
	// Slack covers clock skew between replicas and EXPIRE's whole seconds.
	keep := ttl + 2*time.Second
	pipe := c.rdb.Pipeline()
	pipe.ZAdd(ctx, ikey, goredis.Z{Score: float64(now.Add(keep).UnixMilli()), Member: rkey})
	pipe.ZRemRangeByScore(ctx, ikey, "-inf", "("+strconv.FormatInt(now.UnixMilli(), 10))
	// NX sets the expiry of a new index, GT extends an existing one.
	pipe.ExpireNX(ctx, ikey, keep)
	pipe.ExpireGT(ctx, ikey, keep)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redis: cache index %s: %w", group, err)
	}
	return nil
}

// PurgeGroup deletes every value stored under group (see
// CacheOptions.GroupFields) and the group's index. A load in flight while
// it runs may still store its value afterwards; that value expires with
// its TTL.
func (c *Cache) PurgeGroup(ctx context.Context, group string) error {
	if group == "" {
		return errors.New("redis: cache: empty group")
	}
	ikey := c.keys.Key("cacheidx", group)
	members, err := c.rdb.ZRange(ctx, ikey, 0, -1).Result()
	if err != nil {
		return fmt.Errorf("redis: cache purge %s: %w", group, err)
	}
	pipe := c.rdb.Pipeline()
	for _, m := range members {
		pipe.Del(ctx, m) // one key per command: keys of a group may sit in different slots
	}
	pipe.Del(ctx, ikey)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redis: cache purge %s: %w", group, err)
	}
	return nil
}

// read returns the cached value, or false when it is missing, unreadable
// or Redis fails.
func (c *Cache) read(ctx context.Context, key, rkey string) ([]byte, bool) {
	b, err := c.rdb.Get(ctx, rkey).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, false
	}
	if err != nil {
		c.report("get", err)
		return nil, false
	}
	if c.opts.Sealer == nil {
		return b, true
	}
	pt, err := c.opts.Sealer.Open(b, cacheAD(key))
	if err != nil {
		c.report("open", fmt.Errorf("%w: cache %s: %w", tpp.ErrUnreadable, key, err))
		return nil, false
	}
	return pt, true
}

func cacheAD(key string) []byte { return []byte("cache:" + key) }

func (c *Cache) report(op string, err error) {
	if c.opts.OnError != nil {
		c.opts.OnError(op, err)
	}
}
