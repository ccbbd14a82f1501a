package redis

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Each client has its own budget: one client over its limit is refused
// with a wait, another client is not affected.
func TestClientRateLimiter(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := context.Background()
		rdb := srv.Client(t)
		// One request per hour, bursts of 3: nothing refills during the test.
		rl, err := NewClientRateLimiter(rdb, Keys{}, ClientLimit{Rate: 1, Period: time.Hour, Burst: 3})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		allowed := 0
		for range 5 {
			wg.Go(func() {
				d, err := rl.Allow(ctx, "cli_noisy")
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if d.Allowed {
					allowed++
				} else if d.RetryAfter <= 0 || d.RetryAfter > time.Hour {
					t.Errorf("refused with RetryAfter %s", d.RetryAfter)
				}
				if d.Limit != 3 {
					t.Errorf("Limit = %d, want the burst 3", d.Limit)
				}
			})
		}
		wg.Wait()
		if allowed != 3 {
			t.Fatalf("%d of 5 concurrent requests allowed, want the burst of 3", allowed)
		}
		d, err := rl.Allow(ctx, "cli_quiet")
		if err != nil || !d.Allowed || d.Remaining != 2 {
			t.Fatalf("another client: %+v, %v; want allowed with 2 remaining", d, err)
		}
		if n := rdb.Exists(ctx, "rate:tpp:client:cli_noisy").Val(); n != 1 {
			t.Fatal("no limiter key rate:tpp:client:cli_noisy")
		}
		if _, err := NewClientRateLimiter(rdb, Keys{}, ClientLimit{Rate: 0, Period: time.Second, Burst: 1}); err == nil {
			t.Fatal("a zero rate was accepted")
		}
	})
}
