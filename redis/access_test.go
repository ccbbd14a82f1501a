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
	ctx := context.Background()
	_, rdb := newRedis(t)
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
}

// The window slides: a read frees its slot exactly one window after it.
func TestAccessWindowSlides(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, rdb := newRedis(t)
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
}

// Replicas racing for the same consent: exactly Limit reads get through.
func TestAccessWindowConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, _ := newRedis(t)
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
	ctx := context.Background()
	_, rdb := newRedis(t)
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
}
