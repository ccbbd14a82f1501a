package redis

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
)

// 20 replicas (separate clients) contend for one lock: never two holders.
func TestLockMutualExclusion(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		const workers, rounds = 20, 3
		var holders, maxHolders, done atomic.Int32
		var wg sync.WaitGroup
		for range workers {
			lk := NewLocker(srv.Client(t), Keys{})
			wg.Go(func() {
				for range rounds {
					l, err := lk.Acquire(ctx, "rebuild:consent-1", 5*time.Second)
					if err != nil {
						t.Error(err)
						return
					}
					n := holders.Add(1)
					for {
						m := maxHolders.Load()
						if n <= m || maxHolders.CompareAndSwap(m, n) {
							break
						}
					}
					time.Sleep(time.Millisecond)
					holders.Add(-1)
					if err := l.Release(ctx); err != nil {
						t.Error(err)
						return
					}
					done.Add(1)
				}
			})
		}
		wg.Wait()
		if maxHolders.Load() != 1 {
			t.Fatalf("at most %d holders at once, want exactly 1", maxHolders.Load())
		}
		if done.Load() != workers*rounds {
			t.Fatalf("%d critical sections ran, want %d", done.Load(), workers*rounds)
		}
	})
}

// A holder that crashes (never releases) blocks others only until its TTL;
// afterwards it cannot release or extend the new holder's lock.
func TestLockExpiryFreesCrashedHolder(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := context.Background()
		rdb := srv.Client(t)
		a := NewLocker(rdb, Keys{})
		b := NewLocker(srv.Client(t), Keys{})

		lockKey := Keys{}.Key("lock", "c1")
		crashed, err := a.TryAcquire(ctx, "c1", 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.TryAcquire(ctx, "c1", time.Second); !errors.Is(err, tpp.ErrLocked) {
			t.Fatalf("TryAcquire of held lock = %v, want tpp.ErrLocked", err)
		}
		type result struct {
			l   tpp.Lock
			err error
			at  time.Time
		}
		got := make(chan result, 1)
		go func() {
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			l, err := b.Acquire(wctx, "c1", 5*time.Second)
			got <- result{l, err, time.Now()}
		}()
		// b waits while the holder is silent; then its TTL runs out (shortened
		// here rather than waited for).
		time.Sleep(50 * time.Millisecond)
		select {
		case r := <-got:
			t.Fatalf("Acquire returned while the lock was held: %v", r.err)
		default:
		}
		expired := time.Now()
		if err := rdb.PExpire(ctx, lockKey, 20*time.Millisecond).Err(); err != nil {
			t.Fatal(err)
		}
		r := <-got
		if r.err != nil {
			t.Fatalf("Acquire after holder crashed: %v", r.err)
		}
		if r.at.Before(expired) {
			t.Fatal("acquired before the crashed holder's lock expired")
		}
		next := r.l
		if err := crashed.Release(ctx); !errors.Is(err, tpp.ErrLockLost) {
			t.Fatalf("stale Release = %v, want tpp.ErrLockLost", err)
		}
		if err := crashed.Extend(ctx, time.Minute); !errors.Is(err, tpp.ErrLockLost) {
			t.Fatalf("stale Extend = %v, want tpp.ErrLockLost", err)
		}
		if n := rdb.Exists(ctx, lockKey).Val(); n != 1 {
			t.Fatal("a stale holder removed the new holder's lock")
		}
		if err := next.Extend(ctx, time.Minute); err != nil {
			t.Fatal(err)
		}
		if ttl := rdb.PTTL(ctx, lockKey).Val(); ttl < 50*time.Second {
			t.Fatalf("PTTL after Extend = %s", ttl)
		}
		if err := next.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if n := rdb.Exists(ctx, lockKey).Val(); n != 0 {
			t.Fatal("Release left the key")
		}
	})
}

func TestLockAcquireHonoursContext(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := context.Background()
		rdb := srv.Client(t)
		lk := NewLocker(rdb, Keys{})
		if _, err := lk.TryAcquire(ctx, "held", time.Minute); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 80*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := lk.Acquire(wctx, "held", time.Second)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Acquire = %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("Acquire returned %s after its deadline", d)
		}
		if _, err := lk.TryAcquire(ctx, "x", 0); err == nil {
			t.Fatal("TryAcquire with zero ttl succeeded")
		}
	})
}
