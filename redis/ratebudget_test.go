package redis

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bunqtpp/tpp/internal/redistest"
)

// budget is the interface psd2 declares; RateBudget must satisfy it.
type budget interface {
	Wait(ctx context.Context, key string, limit int, window time.Duration) error
}

var _ budget = (*RateBudget)(nil)

// N replicas × M calls with 3 per 300 ms: the calls take at least the time
// the limit implies and no 300 ms window ever holds more than 3 admissions.
func TestRateBudgetSlidingWindow(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		const (
			replicas = 4
			calls    = 3
			limit    = 3
			window   = 300 * time.Millisecond
			// Admission times are taken client-side after the reply, so each
			// may lag the server's admission by a round trip plus scheduling
			// delay on a loaded machine. A limiter that fails (no limit, or a
			// fixed window letting 2×limit through at a boundary) puts 4
			// admissions within a few ms, far below window-slack.
			slack = 100 * time.Millisecond
		)
		var (
			mu       sync.Mutex
			admitted []time.Time
			waits    atomic.Int32
			wg       sync.WaitGroup
		)
		start := time.Now()
		for range replicas {
			b := NewRateBudget(srv.Client(t), Keys{})
			b.OnWait = func(key string, d time.Duration) {
				if key != "bunq:user:1" || d <= 0 {
					t.Errorf("OnWait(%q, %s)", key, d)
				}
				waits.Add(1)
			}
			wg.Go(func() {
				for range calls {
					if err := b.Wait(ctx, "bunq:user:1", limit, window); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					admitted = append(admitted, time.Now())
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)

		total := replicas * calls
		if len(admitted) != total {
			t.Fatalf("%d admissions, want %d", len(admitted), total)
		}
		// 12 calls at 3 per window need at least 3 full windows after the first batch.
		if minimum := time.Duration(total/limit-1) * window; elapsed < minimum {
			t.Fatalf("%d calls took %s, want at least %s", total, elapsed, minimum)
		}
		slices.SortFunc(admitted, func(a, b time.Time) int { return a.Compare(b) })
		for i := 0; i+limit < len(admitted); i++ {
			if gap := admitted[i+limit].Sub(admitted[i]); gap < window-slack {
				t.Fatalf("admissions %d and %d are %s apart: %d calls inside one %s window", i, i+limit, gap, limit+1, window)
			}
		}
		if waits.Load() == 0 {
			t.Fatal("OnWait never called although calls had to wait")
		}
	})
}

func TestRateBudgetKeysAreIndependent(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := context.Background()
		rdb := srv.Client(t)
		b := NewRateBudget(rdb, NewKeys("x"))
		start := time.Now()
		for _, key := range []string{"a", "b", "c"} {
			if err := b.Wait(ctx, key, 1, time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("three keys with room took %s", d)
		}
		if n := rdb.ZCard(ctx, "x:rate:a").Val(); n != 1 {
			t.Fatalf("x:rate:a holds %d entries, want 1", n)
		}
		if ttl := rdb.PTTL(ctx, "x:rate:a").Val(); ttl <= time.Minute || ttl > time.Minute+2*time.Second {
			t.Fatalf("log PTTL = %s, want just over the window", ttl)
		}
	})
}

func TestRateBudgetHonoursContext(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := context.Background()
		rdb := srv.Client(t)
		b := NewRateBudget(rdb, Keys{})
		var waited atomic.Int64
		b.OnWait = func(_ string, d time.Duration) { waited.Store(int64(d)) }
		if err := b.Wait(ctx, "k", 1, time.Hour); err != nil {
			t.Fatal(err)
		}
		// The deadline leaves room for the script itself: the embedded
		// server runs Lua slowly under -race.
		wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		if err := b.Wait(wctx, "k", 1, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait over the limit = %v, want DeadlineExceeded", err)
		}
		elapsed := time.Since(start)
		if elapsed > 3*time.Second {
			t.Fatalf("Wait returned %s after a 300 ms deadline", elapsed)
		}
		if w := time.Duration(waited.Load()); w <= 0 || w > elapsed {
			t.Fatalf("OnWait reported %s of a %s Wait", w, elapsed)
		}
		// Refused (timed-out) calls are not recorded.
		if n := rdb.ZCard(ctx, "tpp:rate:k").Val(); n != 1 {
			t.Fatalf("log holds %d entries, want 1", n)
		}
	})
}

func TestRateBudgetFailsClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := redistest.Start(t)
	b := NewRateBudget(fastFailClient(t, srv), Keys{})
	for _, tc := range []struct {
		key    string
		limit  int
		window time.Duration
	}{{"", 1, time.Second}, {"k", 0, time.Second}, {"k", 1, 0}} {
		if err := b.Wait(ctx, tc.key, tc.limit, tc.window); err == nil {
			t.Errorf("Wait(%q, %d, %s) succeeded", tc.key, tc.limit, tc.window)
		}
	}
	srv.Stop(t)
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := b.Wait(wctx, "k", 10, time.Second); err == nil {
		t.Fatal("Wait admitted a call with Redis down")
	}
}
