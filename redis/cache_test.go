package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bunqtpp/tpp/internal/redistest"
)

// loader counts loads and returns "v<n>" after delay.
type loader struct {
	n     atomic.Int32
	delay time.Duration
}

func (l *loader) load(ctx context.Context) ([]byte, error) {
	n := l.n.Add(1)
	select {
	case <-time.After(l.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return []byte(fmt.Sprintf("v%d", n)), nil
}

// callers runs GetOrLoad on each cache from per goroutines at once and
// returns the values they got.
func callers(t *testing.T, caches []*Cache, per int, key string, l *loader) [][]byte {
	t.Helper()
	ctx := context.Background()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		got   [][]byte
		start = make(chan struct{})
	)
	for _, c := range caches {
		for range per {
			wg.Go(func() {
				<-start
				v, _, err := c.GetOrLoad(ctx, key, time.Minute, false, l.load)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got = append(got, v)
				mu.Unlock()
			})
		}
	}
	close(start)
	wg.Wait()
	return got
}

func TestCacheCoalescesInProcess(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		rdb := srv.Client(t)
		c := NewCache(rdb, Keys{}, CacheOptions{})
		l := &loader{delay: 50 * time.Millisecond}
		got := callers(t, []*Cache{c}, 20, "acct:1", l)
		if n := l.n.Load(); n != 1 {
			t.Fatalf("%d loads for 20 concurrent callers, want 1", n)
		}
		if len(got) != 20 {
			t.Fatalf("%d results", len(got))
		}
		for _, v := range got {
			if string(v) != "v1" {
				t.Fatalf("caller got %q, want v1", v)
			}
		}
		// Callers get their own copies.
		got[0][0] = 'X'
		if string(got[1]) != "v1" {
			t.Fatal("callers share one byte slice")
		}
	})
}

// Two Cache instances with their own clients stand in for two replicas:
// with a loader faster than WaitForWinner, exactly one load happens.
func TestCacheCoalescesAcrossReplicas(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		a := NewCache(srv.Client(t), Keys{}, CacheOptions{})
		b := NewCache(srv.Client(t), Keys{}, CacheOptions{})
		l := &loader{delay: 100 * time.Millisecond}
		got := callers(t, []*Cache{a, b}, 10, "acct:2", l)
		if n := l.n.Load(); n != 1 {
			t.Fatalf("%d loads across two replicas, want 1", n)
		}
		for _, v := range got {
			if string(v) != "v1" {
				t.Fatalf("caller got %q, want v1", v)
			}
		}
	})
}

// A winner slower than WaitForWinner: the other replica stops waiting and
// loads itself, so each replica loads exactly once.
func TestCacheSlowWinner(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		opts := CacheOptions{WaitForWinner: 50 * time.Millisecond}
		a := NewCache(srv.Client(t), Keys{}, opts)
		b := NewCache(srv.Client(t), Keys{}, opts)
		// The winner's load does not finish until the loser has given up on it
		// and started its own load (or 10 s pass, and the count below fails).
		var loads atomic.Int32
		second := make(chan struct{})
		load := func(ctx context.Context) ([]byte, error) {
			switch loads.Add(1) {
			case 1:
				select {
				case <-second:
				case <-time.After(10 * time.Second):
				}
			case 2:
				close(second)
			}
			return []byte("v"), nil
		}
		var wg sync.WaitGroup
		for _, c := range []*Cache{a, a, a, b, b, b} {
			wg.Go(func() {
				if v, _, err := c.GetOrLoad(context.Background(), "acct:3", time.Minute, false, load); err != nil || string(v) != "v" {
					t.Errorf("GetOrLoad = %q, %v", v, err)
				}
			})
		}
		wg.Wait()
		if n := loads.Load(); n != 2 {
			t.Fatalf("%d loads, want 2 (one per replica)", n)
		}
	})
}

func TestCacheHitFreshAndTTL(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := context.Background()
		rdb := srv.Client(t)
		c := NewCache(rdb, Keys{}, CacheOptions{})
		l := &loader{}

		v, hit, err := c.GetOrLoad(ctx, "k", time.Minute, false, l.load)
		if err != nil || hit || string(v) != "v1" {
			t.Fatalf("first = %q, %v, %v", v, hit, err)
		}
		v, hit, err = c.GetOrLoad(ctx, "k", time.Minute, false, l.load)
		if err != nil || !hit || string(v) != "v1" || l.n.Load() != 1 {
			t.Fatalf("second = %q, %v, %v (loads %d); want a hit", v, hit, err, l.n.Load())
		}
		// fresh bypasses the read, and stores what it loaded.
		v, hit, err = c.GetOrLoad(ctx, "k", time.Minute, true, l.load)
		if err != nil || hit || string(v) != "v2" {
			t.Fatalf("fresh = %q, %v, %v", v, hit, err)
		}
		v, hit, err = c.GetOrLoad(ctx, "k", 200*time.Millisecond, false, l.load)
		if err != nil || !hit || string(v) != "v2" {
			t.Fatalf("after fresh = %q, %v, %v; want the fresh value from cache", v, hit, err)
		}
		// A short TTL expires.
		if _, _, err := c.GetOrLoad(ctx, "short", 500*time.Millisecond, false, l.load); err != nil {
			t.Fatal(err)
		}
		if ttl := rdb.PTTL(ctx, "tpp:cache:short").Val(); ttl <= 0 || ttl > 500*time.Millisecond {
			t.Fatalf("PTTL = %s", ttl)
		}
		eventually(t, 3*time.Second, "cached value expires", func() bool {
			return rdb.Exists(ctx, "tpp:cache:short").Val() == 0
		})
		before := l.n.Load()
		if _, hit, err := c.GetOrLoad(ctx, "short", time.Minute, false, l.load); err != nil || hit || l.n.Load() != before+1 {
			t.Fatalf("after TTL: hit=%v err=%v loads %d→%d; want a new load", hit, err, before, l.n.Load())
		}
		if err := c.Delete(ctx, "short"); err != nil {
			t.Fatal(err)
		}
		if _, hit, _ := c.GetOrLoad(ctx, "short", time.Minute, false, l.load); hit {
			t.Fatal("hit after Delete")
		}
	})
}

func TestCacheDoesNotCacheErrors(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := context.Background()
		rdb := srv.Client(t)
		c := NewCache(rdb, Keys{}, CacheOptions{})
		boom := errors.New("bunq said 500")
		var calls atomic.Int32
		failing := func(context.Context) ([]byte, error) { calls.Add(1); return nil, boom }
		if _, _, err := c.GetOrLoad(ctx, "k", time.Minute, false, failing); !errors.Is(err, boom) {
			t.Fatalf("err = %v, want the load error", err)
		}
		if n := rdb.Exists(ctx, "tpp:cache:k", "tpp:lock:cache:k").Val(); n != 0 {
			t.Fatalf("%d keys left after a failed load", n)
		}
		v, hit, err := c.GetOrLoad(ctx, "k", time.Minute, false, func(context.Context) ([]byte, error) { return []byte("ok"), nil })
		if err != nil || hit || string(v) != "ok" {
			t.Fatalf("after failure = %q, %v, %v", v, hit, err)
		}
		if calls.Load() != 1 {
			t.Fatalf("failing loader ran %d times", calls.Load())
		}
	})
}

// With a sealer, Redis holds ciphertext bound to the key.
func TestCacheSealed(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := context.Background()
		rdb := srv.Client(t)
		var errs atomic.Int32
		c := NewCache(rdb, Keys{}, CacheOptions{Sealer: testKeyring(t), OnError: func(string, error) { errs.Add(1) }})
		secret := []byte(`{"iban":"NL02BUNQ0123456789","balance":"1234.56"}`)
		load := func(context.Context) ([]byte, error) { return secret, nil }
		if _, _, err := c.GetOrLoad(ctx, "acct:a", time.Minute, false, load); err != nil {
			t.Fatal(err)
		}
		raw, err := rdb.Get(ctx, "tpp:cache:acct:a").Bytes()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"NL02BUNQ", "1234.56", "iban"} {
			if bytes.Contains(raw, []byte(s)) {
				t.Fatalf("raw cached value contains %q", s)
			}
		}
		if v, hit, err := c.GetOrLoad(ctx, "acct:a", time.Minute, false, load); err != nil || !hit || !bytes.Equal(v, secret) {
			t.Fatalf("hit = %q, %v, %v", v, hit, err)
		}
		// Copied under another key, it does not open: a miss, then a load.
		rdb.Set(ctx, "tpp:cache:acct:b", raw, time.Minute)
		other := []byte("b's data")
		v, hit, err := c.GetOrLoad(ctx, "acct:b", time.Minute, false, func(context.Context) ([]byte, error) { return other, nil })
		if err != nil || hit || !bytes.Equal(v, other) {
			t.Fatalf("copied value: %q, %v, %v; want a miss and b's own data", v, hit, err)
		}
		if errs.Load() == 0 {
			t.Fatal("unreadable cached value not reported")
		}
	})
}

// The cache only saves work: with Redis down, calls still load.
func TestCacheRedisDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := redistest.Start(t)
	rdb := fastFailClient(t, srv)
	var errs atomic.Int32
	c := NewCache(rdb, Keys{}, CacheOptions{OnError: func(string, error) { errs.Add(1) }})
	srv.Stop(t)
	v, hit, err := c.GetOrLoad(ctx, "k", time.Minute, false, func(context.Context) ([]byte, error) { return []byte("direct"), nil })
	if err != nil || hit || string(v) != "direct" {
		t.Fatalf("with Redis down = %q, %v, %v", v, hit, err)
	}
	if errs.Load() == 0 {
		t.Fatal("Redis errors not reported")
	}
}

// A caller that gives up does not cancel the load others share.
func TestCacheCallerCancelDoesNotCancelSharedLoad(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		rdb := srv.Client(t)
		c := NewCache(rdb, Keys{}, CacheOptions{})
		l := &loader{delay: 150 * time.Millisecond}
		quitter, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		errc := make(chan error, 1)
		go func() {
			_, _, err := c.GetOrLoad(quitter, "k", time.Minute, false, l.load)
			errc <- err
		}()
		time.Sleep(10 * time.Millisecond)
		v, _, err := c.GetOrLoad(context.Background(), "k", time.Minute, false, l.load)
		if err != nil || string(v) != "v1" {
			t.Fatalf("patient caller = %q, %v", v, err)
		}
		if err := <-errc; !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("quitter = %v", err)
		}
		if l.n.Load() != 1 {
			t.Fatalf("%d loads", l.n.Load())
		}
	})
}

// A fresh load takes no load lock (it would not wait for another's value
// anyway): while it runs, the lock key is absent, and a non-fresh caller
// on another replica loads for itself rather than waiting for it.
func TestCacheFreshTakesNoLock(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := context.Background()
		rdb := srv.Client(t)
		a := NewCache(rdb, Keys{}, CacheOptions{})
		b := NewCache(srv.Client(t), Keys{}, CacheOptions{})
		// A read through a's cache, so that a stores its fresh value; then
		// the value goes, so that b finds none.
		if _, _, err := a.GetOrLoad(ctx, "k", time.Minute, false, (&loader{}).load); err != nil {
			t.Fatal(err)
		}
		if err := a.Delete(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		release := make(chan struct{})
		started := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			_, _, err := a.GetOrLoad(ctx, "k", time.Minute, true, func(context.Context) ([]byte, error) {
				close(started)
				<-release
				return []byte("fresh"), nil
			})
			done <- err
		}()
		<-started
		if n, err := rdb.Exists(ctx, Keys{}.Key("lock", "cache:k")).Result(); err != nil || n != 0 {
			t.Fatalf("lock key during a fresh load: exists %d, %v", n, err)
		}
		l := &loader{}
		v, hit, err := b.GetOrLoad(ctx, "k", time.Minute, false, l.load)
		if err != nil || hit || string(v) != "v1" || l.n.Load() != 1 {
			t.Fatalf("other replica during a fresh load = %q, %v, %v (loads %d); want its own load", v, hit, err, l.n.Load())
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		// The fresh value, stored last, is what the next read sees.
		if v, hit, err := b.GetOrLoad(ctx, "k", time.Minute, false, l.load); err != nil || !hit || string(v) != "fresh" {
			t.Fatalf("after the fresh load = %q, %v, %v; want the fresh value from cache", v, hit, err)
		}
	})
}

// A fresh value is stored only when the process also reads the key through
// the cache: a caller that always bypasses it makes no writes.
func TestCacheFreshStoresOnlyWhenRead(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := context.Background()
		rdb := srv.Client(t)
		c := NewCache(rdb, Keys{}, CacheOptions{})
		rkey := Keys{}.Key("cache", "k")
		l := &loader{}
		for range 3 {
			if _, hit, err := c.GetOrLoad(ctx, "k", time.Minute, true, l.load); err != nil || hit {
				t.Fatalf("fresh read: hit %v, %v", hit, err)
			}
		}
		if n, err := rdb.Exists(ctx, rkey).Result(); err != nil || n != 0 {
			t.Fatalf("after fresh reads only: exists %d, %v; want nothing stored", n, err)
		}
		// Once read through the cache, fresh values are stored for the next
		// reads, until the read's ttl has passed.
		const ttl = 300 * time.Millisecond
		if v, _, err := c.GetOrLoad(ctx, "k", ttl, false, l.load); err != nil || string(v) != "v4" {
			t.Fatalf("cached read = %q, %v", v, err)
		}
		if v, _, err := c.GetOrLoad(ctx, "k", ttl, true, l.load); err != nil || string(v) != "v5" {
			t.Fatalf("fresh read = %q, %v", v, err)
		}
		if v, hit, err := c.GetOrLoad(ctx, "k", ttl, false, l.load); err != nil || !hit || string(v) != "v5" {
			t.Fatalf("read after a fresh one = %q, %v, %v; want the fresh value from cache", v, hit, err)
		}
		time.Sleep(ttl + 50*time.Millisecond)
		if err := c.Delete(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.GetOrLoad(ctx, "k", ttl, true, l.load); err != nil {
			t.Fatal(err)
		}
		if n, err := rdb.Exists(ctx, rkey).Result(); err != nil || n != 0 {
			t.Fatalf("fresh read a ttl after the last cached one: exists %d, %v; want nothing stored", n, err)
		}
	})
}

// PurgeGroup deletes every value of one group (a revoked consent's cached
// account answers), fresh and coalesced alike, and leaves other groups.
func TestCachePurgeGroup(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := context.Background()
		rdb := srv.Client(t)
		var cacheErrs []error
		c := NewCache(rdb, Keys{}, CacheOptions{GroupFields: 2, OnError: func(_ string, err error) { cacheErrs = append(cacheErrs, err) }})
		l := &loader{}
		for _, k := range []string{"aisp:c1:accounts", "aisp:c1:account:a", "aisp:c1:tx:a:cursor", "aisp:c2:accounts"} {
			if _, _, err := c.GetOrLoad(ctx, k, time.Minute, false, l.load); err != nil {
				t.Fatal(err)
			}
		}
		c.GetOrLoad(ctx, "aisp:c1:accounts", time.Minute, true, l.load) // a fresh store, same key
		if len(cacheErrs) > 0 {
			t.Fatal(cacheErrs)
		}
		if ttl := rdb.TTL(ctx, "tpp:cacheidx:aisp:c1").Val(); ttl <= 0 || ttl > time.Minute+3*time.Second {
			t.Fatalf("index TTL = %s, want just over the values' minute", ttl)
		}

		if err := c.PurgeGroup(ctx, "aisp:c1"); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"tpp:cache:aisp:c1:accounts", "tpp:cache:aisp:c1:account:a", "tpp:cache:aisp:c1:tx:a:cursor", "tpp:cacheidx:aisp:c1"} {
			if rdb.Exists(ctx, k).Val() != 0 {
				t.Errorf("%s survived PurgeGroup", k)
			}
		}
		if rdb.Exists(ctx, "tpp:cache:aisp:c2:accounts").Val() != 1 {
			t.Error("PurgeGroup of c1 deleted c2's value")
		}
		// Purging an empty group is fine; ungrouped keys are not indexed.
		if err := c.PurgeGroup(ctx, "aisp:none"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.GetOrLoad(ctx, "plain", time.Minute, false, l.load); err != nil {
			t.Fatal(err)
		}
		if n := rdb.Exists(ctx, "tpp:cacheidx:plain").Val(); n != 0 {
			t.Error("a key without a group was indexed")
		}
	})
}

// The index trims entries whose values have expired, so a busy consent's
// index does not grow with every transaction page ever read.
func TestCacheGroupIndexTrims(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := context.Background()
		rdb := srv.Client(t)
		c := NewCache(rdb, Keys{}, CacheOptions{GroupFields: 2})
		l := &loader{}
		if _, _, err := c.GetOrLoad(ctx, "aisp:c1:old", time.Millisecond, false, l.load); err != nil {
			t.Fatal(err)
		}
		// The old entry's index score is its expiry plus 2 s of slack.
		eventually(t, 10*time.Second, "the old value's index entry ages out", func() bool {
			if _, _, err := c.GetOrLoad(ctx, "aisp:c1:new", time.Minute, true, l.load); err != nil {
				t.Fatal(err)
			}
			return rdb.ZScore(ctx, "tpp:cacheidx:aisp:c1", "tpp:cache:aisp:c1:old").Err() != nil
		})
	})
}

// settableClock is a clock a test moves by hand.
type settableClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *settableClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *settableClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// The cache dates its read marks and group index entries by its clock, not
// the wall clock: moved past a read's ttl, a fresh value goes unstored, and
// index scores are the clock's expiry.
func TestCacheDatesWithClock(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := context.Background()
		rdb := srv.Client(t)
		clock := &settableClock{t: time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)}
		c := NewCache(rdb, Keys{}, CacheOptions{GroupFields: 2, Clock: clock})
		l := &loader{}
		if _, _, err := c.GetOrLoad(ctx, "aisp:c1:k", time.Minute, false, l.load); err != nil {
			t.Fatal(err)
		}
		score, err := rdb.ZScore(ctx, "tpp:cacheidx:aisp:c1", "tpp:cache:aisp:c1:k").Result()
		if want := clock.Now().Add(time.Minute + 2*time.Second).UnixMilli(); err != nil || int64(score) != want {
			t.Fatalf("index score = %v, %v; want %d (the clock's expiry)", score, err, want)
		}
		clock.Add(2 * time.Minute)
		if err := c.Delete(ctx, "aisp:c1:k"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.GetOrLoad(ctx, "aisp:c1:k", time.Minute, true, l.load); err != nil {
			t.Fatal(err)
		}
		if n, err := rdb.Exists(ctx, "tpp:cache:aisp:c1:k").Result(); err != nil || n != 0 {
			t.Fatalf("fresh read after the clock passed the read's ttl: exists %d, %v; want nothing stored", n, err)
		}
	})
}
