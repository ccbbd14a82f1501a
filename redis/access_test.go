package redis

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bunqtpp/tpp/internal/redistest"
)

func TestAccessWindowPSD2Default(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := context.Background()
		rdb := srv.Client(t)
		aw, err := NewAccessWindow(rdb, Keys{}, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i, remaining := range []int{3, 2, 1, 0} {
			d, err := aw.Allow(ctx, "consent-1")
			if err != nil {
				t.Fatal(err)
			}
			if !d.Allowed || d.Limit != 4 || d.Remaining != remaining || d.RetryAfter != 0 {
				t.Fatalf("read %d: %+v, want allowed with %d remaining", i+1, d, remaining)
			}
		}
		d, err := aw.Allow(ctx, "consent-1")
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed || d.Remaining != 0 || d.Limit != 4 {
			t.Fatalf("5th read: %+v, want refused", d)
		}
		// The first read ages out 24 h after it happened, a moment ago.
		if d.RetryAfter > 24*time.Hour || d.RetryAfter < 24*time.Hour-time.Minute {
			t.Fatalf("RetryAfter = %s, want just under 24h", d.RetryAfter)
		}
		// Other consents have their own window.
		if d, err := aw.Allow(ctx, "consent-2"); err != nil || !d.Allowed || d.Remaining != 3 {
			t.Fatalf("other consent: %+v, %v", d, err)
		}
	})
}

// The window slides: a read frees its slot exactly one window after it.
func TestAccessWindowSlides(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := context.Background()
		rdb := srv.Client(t)
		const window, gap = time.Second, 500 * time.Millisecond
		aw, err := NewAccessWindow(rdb, Keys{}, 2, window)
		if err != nil {
			t.Fatal(err)
		}
		first := time.Now()
		if d, err := aw.Allow(ctx, "c"); err != nil || !d.Allowed || d.Remaining != 1 {
			t.Fatalf("1st read: %+v, %v", d, err)
		}
		firstDone := time.Now()
		time.Sleep(gap)
		second := time.Now()
		if d, err := aw.Allow(ctx, "c"); err != nil || !d.Allowed || d.Remaining != 0 {
			t.Fatalf("2nd read: %+v, %v", d, err)
		}
		thirdStart := time.Now()
		d, err := aw.Allow(ctx, "c")
		if err != nil || d.Allowed {
			t.Fatalf("3rd read: %+v, %v; want refused", d, err)
		}
		// The first read frees its slot one window after it happened, and it
		// happened at least thirdStart-firstDone before the third.
		if want := window - thirdStart.Sub(firstDone); d.RetryAfter <= 0 || d.RetryAfter > want+time.Millisecond {
			t.Fatalf("RetryAfter = %s, want in (0, %s]", d.RetryAfter, want)
		}
		time.Sleep(d.RetryAfter + 5*time.Millisecond)
		d, err = aw.Allow(ctx, "c")
		if err != nil || !d.Allowed {
			t.Fatalf("after RetryAfter: %+v, %v; want allowed", d, err)
		}
		if time.Since(first) < window-20*time.Millisecond {
			t.Fatal("a slot was freed before the window passed")
		}
		// Sliding, not fixed: the second read still holds its slot (unless this
		// machine stalled past its window, which the check must not mistake).
		if time.Since(second) < window-100*time.Millisecond {
			if d.Remaining != 0 {
				t.Fatalf("Remaining = %d, want 0: the second read still counts", d.Remaining)
			}
			if d, err := aw.Allow(ctx, "c"); err != nil || d.Allowed {
				t.Fatalf("next read: %+v, %v; want refused", d, err)
			}
		}
	})
}

// Replicas racing for the same consent: exactly Limit reads get through.
func TestAccessWindowConcurrent(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := context.Background()
		var allowed, refused atomic.Int32
		var wg sync.WaitGroup
		for range 20 {
			aw, err := NewAccessWindow(srv.Client(t), Keys{}, 4, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				d, err := aw.Allow(ctx, "c")
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					allowed.Add(1)
				} else {
					refused.Add(1)
				}
			})
		}
		wg.Wait()
		if allowed.Load() != 4 || refused.Load() != 16 {
			t.Fatalf("allowed=%d refused=%d, want 4 and 16", allowed.Load(), refused.Load())
		}
	})
}

func TestAccessWindowValidates(t *testing.T) {
	t.Parallel()
	if _, err := NewAccessWindow(nil, Keys{}, -1, time.Hour); err == nil {
		t.Fatal("negative limit accepted")
	}
	if _, err := NewAccessWindow(nil, Keys{}, 4, -time.Hour); err == nil {
		t.Fatal("negative window accepted")
	}
}

// With Redis down the window cannot count, so it must not allow.
func TestAccessWindowFailsClosed(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	aw, err := NewAccessWindow(fastFailClient(t, srv), Keys{}, 4, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop(t)
	d, err := aw.Allow(context.Background(), "c")
	if err == nil || d.Allowed {
		t.Fatalf("Allow with Redis down = %+v, %v; want an error and not allowed", d, err)
	}
}

func TestAccessWindowPeekDoesNotCount(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := context.Background()
		rdb := srv.Client(t)
		aw, err := NewAccessWindow(rdb, Keys{}, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			if d, err := aw.Peek(ctx, "c"); err != nil || d.Remaining != 4 || d.Limit != 4 {
				t.Fatalf("peek on an empty window: %+v, %v", d, err)
			}
		}
		if _, err := aw.Allow(ctx, "c"); err != nil {
			t.Fatal(err)
		}
		if d, err := aw.Peek(ctx, "c"); err != nil || d.Remaining != 3 || !d.Allowed {
			t.Fatalf("peek after one read: %+v, %v", d, err)
		}
	})
}

// Peek counts only reads inside the window, by Redis time, as Allow does,
// whether or not an Allow has dropped the old ones since.
func TestAccessWindowPeekSlides(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := context.Background()
		rdb := srv.Client(t)
		const window = 300 * time.Millisecond
		aw, err := NewAccessWindow(rdb, Keys{}, 3, window)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if d, err := aw.Allow(ctx, "c"); err != nil || !d.Allowed {
				t.Fatalf("Allow: %+v, %v", d, err)
			}
		}
		start := time.Now()
		d, err := aw.Peek(ctx, "c")
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(start) < window/2 && (d.Remaining != 1 || !d.Allowed || d.Limit != 3) {
			t.Fatalf("peek inside the window: %+v, want 1 remaining", d)
		}
		time.Sleep(window + 50*time.Millisecond)
		if d, err := aw.Peek(ctx, "c"); err != nil || d.Remaining != 3 || !d.Allowed {
			t.Fatalf("peek after the window: %+v, %v; want all 3 back", d, err)
		}
		// The aged-out reads are still in the log until the next Allow drops
		// them: Peek must not count them.
		if n, err := rdb.ZCard(ctx, Keys{}.Key("access", "c")).Result(); err != nil || n != 2 {
			t.Fatalf("log holds %d entries, %v; the test needs the 2 aged-out ones", n, err)
		}
	})
}

// With Redis down Peek reports an error, not a full budget.
func TestAccessWindowPeekRedisDown(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	aw, err := NewAccessWindow(fastFailClient(t, srv), Keys{}, 4, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop(t)
	if d, err := aw.Peek(context.Background(), "c"); err == nil {
		t.Fatalf("Peek with Redis down = %+v, want an error", d)
	}
}

// Peek answers from memory for at most PeekMaxAge: another replica's read
// shows after it, this process's own reads at once.
func TestAccessWindowPeekRemembers(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := context.Background()
		rdb := srv.Client(t)
		aw, err := NewAccessWindow(rdb, Keys{}, 4, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		aw.PeekMaxAge = 300 * time.Millisecond
		other, err := NewAccessWindow(srv.Client(t), Keys{}, 4, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if d, err := aw.Peek(ctx, "c"); err != nil || d.Remaining != 4 {
			t.Fatalf("first peek: %+v, %v", d, err)
		}
		start := time.Now()
		if d, err := other.Allow(ctx, "c"); err != nil || !d.Allowed {
			t.Fatalf("other replica's read: %+v, %v", d, err)
		}
		d, err := aw.Peek(ctx, "c")
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(start) < aw.PeekMaxAge && d.Remaining != 4 {
			// Not an error as such (it is fresher), but then Peek did not
			// remember: the round trip it exists to save was made.
			t.Fatalf("peek right after another replica's read: %+v, want the remembered 4", d)
		}
		time.Sleep(aw.PeekMaxAge)
		if d, err := aw.Peek(ctx, "c"); err != nil || d.Remaining != 3 {
			t.Fatalf("peek after PeekMaxAge: %+v, %v; want 3", d, err)
		}
		// This process's own read shows at once.
		if d, err := aw.Allow(ctx, "c"); err != nil || !d.Allowed || d.Remaining != 2 {
			t.Fatalf("own read: %+v, %v", d, err)
		}
		if d, err := aw.Peek(ctx, "c"); err != nil || d.Remaining != 2 {
			t.Fatalf("peek after an own read: %+v, %v; want 2", d, err)
		}
		// Without memory every Peek asks Redis.
		aw2, err := NewAccessWindow(srv.Client(t), Keys{}, 4, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		aw2.PeekMaxAge = 0
		if _, err := aw2.Peek(ctx, "c"); err != nil {
			t.Fatal(err)
		}
		if d, err := other.Allow(ctx, "c"); err != nil || !d.Allowed {
			t.Fatalf("other replica's read: %+v, %v", d, err)
		}
		if d, err := aw2.Peek(ctx, "c"); err != nil || d.Remaining != 1 {
			t.Fatalf("peek without memory: %+v, %v; want 1", d, err)
		}
	})
}

// Reset forgets a revoked consent's window in Redis and in memory.
func TestAccessWindowReset(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := context.Background()
		rdb := srv.Client(t)
		aw, err := NewAccessWindow(rdb, Keys{}, 4, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := aw.Allow(ctx, "c1"); err != nil {
			t.Fatal(err)
		}
		if d, err := aw.Peek(ctx, "c1"); err != nil || d.Remaining != 3 {
			t.Fatalf("Peek = %+v, %v", d, err)
		}
		if err := aw.Reset(ctx, "c1"); err != nil {
			t.Fatal(err)
		}
		if rdb.Exists(ctx, "tpp:access:c1").Val() != 0 {
			t.Fatal("the window survived Reset")
		}
		if d, err := aw.Peek(ctx, "c1"); err != nil || d.Remaining != 4 {
			t.Fatalf("Peek after Reset = %+v, %v (remembered the old window?)", d, err)
		}
	})
}
