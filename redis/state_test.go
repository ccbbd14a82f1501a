package redis

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

func TestStateStoreSingleUse(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := context.Background()
		rdb := srv.Client(t)
		now := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
		s := NewStateStore(rdb, Keys{}, 0, fixedClock{now})
		const state = "st-Zq81xk3L0-random"
		if err := s.Put(ctx, state, State{ConsentID: "c7", BrowserHash: "h1"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, state, State{ConsentID: "evil"}); !errors.Is(err, ErrStateExists) {
			t.Fatalf("second Put = %v, want ErrStateExists", err)
		}
		// The state itself is not readable from Redis keys; the TTL is the default.
		keys, err := rdb.Keys(ctx, "*").Result()
		if err != nil || len(keys) != 1 {
			t.Fatalf("keys = %v, %v", keys, err)
		}
		if strings.Contains(keys[0], state) || !strings.HasPrefix(keys[0], "tpp:oauth:state:") {
			t.Fatalf("state key %q", keys[0])
		}
		if ttl := rdb.PTTL(ctx, keys[0]).Val(); ttl <= 9*time.Minute || ttl > 10*time.Minute {
			t.Fatalf("PTTL = %s, want about 10 min", ttl)
		}

		st, err := s.Take(ctx, state)
		if err != nil {
			t.Fatal(err)
		}
		if st.ConsentID != "c7" || st.BrowserHash != "h1" || !st.CreatedAt.Equal(now) {
			t.Fatalf("Take = %+v", st)
		}
		if _, err := s.Take(ctx, state); !errors.Is(err, ErrNotFound) {
			t.Fatalf("replayed Take = %v, want ErrNotFound", err)
		}
		if _, err := s.Take(ctx, "never-issued"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Take of unknown state = %v", err)
		}
	})
}

func TestStateStoreExpiry(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := context.Background()
		rdb := srv.Client(t)
		s := NewStateStore(rdb, Keys{}, 500*time.Millisecond, nil)
		if err := s.Put(ctx, "short", State{ConsentID: "c"}); err != nil {
			t.Fatal(err)
		}
		if ttl := rdb.PTTL(ctx, s.key("short")).Val(); ttl <= 0 || ttl > 500*time.Millisecond {
			t.Fatalf("PTTL = %s, want (0, 500ms]", ttl)
		}
		if err := s.Put(ctx, "taken-in-time", State{ConsentID: "c"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Take(ctx, "taken-in-time"); err != nil {
			t.Fatalf("Take within TTL: %v", err)
		}
		eventually(t, 3*time.Second, "state expires", func() bool {
			return rdb.Exists(ctx, s.key("short")).Val() == 0
		})
		if _, err := s.Take(ctx, "short"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Take after TTL = %v, want ErrNotFound", err)
		}
	})
}

// Two callbacks racing with the same state (a replayed redirect hitting two
// replicas): exactly one wins.
func TestStateStoreConcurrentTake(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := context.Background()
		rdb := srv.Client(t)
		if err := NewStateStore(rdb, Keys{}, 0, nil).Put(ctx, "race", State{ConsentID: "c"}); err != nil {
			t.Fatal(err)
		}
		var wins, misses atomic.Int32
		var wg sync.WaitGroup
		for range 20 {
			s := NewStateStore(srv.Client(t), Keys{}, 0, nil)
			wg.Go(func() {
				_, err := s.Take(ctx, "race")
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, ErrNotFound):
					misses.Add(1)
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 || misses.Load() != 19 {
			t.Fatalf("wins=%d misses=%d, want 1 and 19", wins.Load(), misses.Load())
		}
	})
}
