package redis

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

func TestStateStoreSingleUse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, rdb := newRedis(t)
	now := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	s := NewStateStore(rdb, Keys{}, 0, fixedClock{now})
	const state = "st-Zq81xk3L0-random"
	if err := s.Put(ctx, state, tpp.OAuthState{ConsentID: "c7", BrowserHash: "h1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, state, tpp.OAuthState{ConsentID: "evil"}); !errors.Is(err, ErrStateExists) {
		t.Fatalf("second Put = %v, want ErrStateExists", err)
	}
	// The state itself is not readable from Redis keys; the TTL is the default.
	keys, err := rdb.Keys(ctx, "tpp:oauth:state:*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys = %v, %v", keys, err)
	}
	if strings.Contains(keys[0], state) || !strings.HasPrefix(keys[0], "tpp:oauth:state:") {
		t.Fatalf("state key %q", keys[0])
	}
	if ttl := rdb.PTTL(ctx, keys[0]).Val(); ttl <= 9*time.Minute || ttl > 10*time.Minute {
		t.Fatalf("PTTL = %s, want about 10 min", ttl)
	}

	st, err := s.Take(ctx, state, "h1")
	if err != nil {
		t.Fatal(err)
	}
	if st.ConsentID != "c7" || st.BrowserHash != "h1" || !st.CreatedAt.Equal(now) {
		t.Fatalf("Take = %+v", st)
	}
	if _, err := s.Take(ctx, state, "h1"); !errors.Is(err, tpp.ErrNotFound) {
		t.Fatalf("replayed Take = %v, want tpp.ErrNotFound", err)
	}
	if _, err := s.Take(ctx, "never-issued", "h1"); !errors.Is(err, tpp.ErrNotFound) {
		t.Fatalf("Take of unknown state = %v", err)
	}
}

func TestStateStoreExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, rdb := newRedis(t)
	s := NewStateStore(rdb, Keys{}, 500*time.Millisecond, nil)
	if err := s.Put(ctx, "short", tpp.OAuthState{ConsentID: "c", BrowserHash: "b"}); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.PTTL(ctx, s.key("short")).Val(); ttl <= 0 || ttl > 500*time.Millisecond {
		t.Fatalf("PTTL = %s, want (0, 500ms]", ttl)
	}
	if err := s.Put(ctx, "taken-in-time", tpp.OAuthState{ConsentID: "c", BrowserHash: "b"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Take(ctx, "taken-in-time", "b"); err != nil {
		t.Fatalf("Take within TTL: %v", err)
	}
	eventually(t, 3*time.Second, "state expires", func() bool {
		return rdb.Exists(ctx, s.key("short")).Val() == 0
	})
	if _, err := s.Take(ctx, "short", "b"); !errors.Is(err, tpp.ErrNotFound) {
		t.Fatalf("Take after TTL = %v, want tpp.ErrNotFound", err)
	}
}

// Two callbacks racing with the same state (a replayed redirect hitting two
// replicas): exactly one wins.
func TestStateStoreConcurrentTake(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, rdb := newRedis(t)
	if err := NewStateStore(rdb, Keys{}, 0, nil).Put(ctx, "race", tpp.OAuthState{ConsentID: "c", BrowserHash: "b"}); err != nil {
		t.Fatal(err)
	}
	var wins, misses atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		s := NewStateStore(srv.Client(t), Keys{}, 0, nil)
		wg.Go(func() {
			_, err := s.Take(ctx, "race", "b")
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, tpp.ErrNotFound):
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
}

// A callback from a browser without the flow's cookie must not burn the
// state: the browser that started the flow can still finish (issue 10).
func TestStateStoreForeignBrowserLeavesState(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, rdb := newRedis(t)
	s := NewStateStore(rdb, Keys{}, 0, nil)
	if err := s.Put(ctx, "st", tpp.OAuthState{ConsentID: "c1", BrowserHash: "right"}); err != nil {
		t.Fatal(err)
	}
	for _, hash := range []string{"wrong", ""} {
		if _, err := s.Take(ctx, "st", hash); !errors.Is(err, tpp.ErrForeignBrowser) {
			t.Fatalf("Take with browser hash %q = %v, want tpp.ErrForeignBrowser", hash, err)
		}
	}
	st, err := s.Take(ctx, "st", "right")
	if err != nil || st.ConsentID != "c1" {
		t.Fatalf("Take by the right browser after foreign tries = %+v, %v", st, err)
	}
	if _, err := s.Take(ctx, "st", "right"); !errors.Is(err, tpp.ErrNotFound) {
		t.Fatalf("second Take = %v, want tpp.ErrNotFound (single use)", err)
	}
}

// A consent holds at most MaxStatesPerConsent live states; a further one
// drops the oldest, and other consents are not touched.
func TestStateStoreBoundsStatesPerConsent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, rdb := newRedis(t)
	s := NewStateStore(rdb, Keys{}, 0, nil)
	if err := s.Put(ctx, "other", tpp.OAuthState{ConsentID: "c2", BrowserHash: "b"}); err != nil {
		t.Fatal(err)
	}
	const n = MaxStatesPerConsent + 3
	for i := range n {
		if err := s.Put(ctx, "st-"+strconv.Itoa(i), tpp.OAuthState{ConsentID: "c1", BrowserHash: "b"}); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := rdb.Keys(ctx, "tpp:oauth:state:*").Result()
	if err != nil || len(keys) != MaxStatesPerConsent+1 {
		t.Fatalf("state keys = %d (%v), want %d for c1 and 1 for c2", len(keys), err, MaxStatesPerConsent)
	}
	for i := range n {
		_, err := s.Take(ctx, "st-"+strconv.Itoa(i), "b")
		if dropped := i < n-MaxStatesPerConsent; dropped != errors.Is(err, tpp.ErrNotFound) || (!dropped && err != nil) {
			t.Errorf("Take st-%d = %v, want dropped=%v", i, err, dropped)
		}
	}
	if _, err := s.Take(ctx, "other", "b"); err != nil {
		t.Fatalf("another consent's state: %v", err)
	}
}

// What is parked for a state lives as long as the state and is read once;
// nothing is parked for a state that is gone.
func TestStateStorePark(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, rdb := newRedis(t)
	s := NewStateStore(rdb, Keys{}, 0, nil)
	if ok, err := s.Park(ctx, "gone", []byte("x")); ok || err != nil {
		t.Fatalf("Park for an unknown state = %v, %v; want false", ok, err)
	}
	if err := s.Put(ctx, "st", tpp.OAuthState{ConsentID: "c1", BrowserHash: "b"}); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Park(ctx, "st", []byte("sealed")); !ok || err != nil {
		t.Fatalf("Park = %v, %v", ok, err)
	}
	if ttl := rdb.PTTL(ctx, s.parkedKey("st")).Val(); ttl <= 9*time.Minute || ttl > 10*time.Minute {
		t.Fatalf("parked PTTL = %s, want the state's", ttl)
	}
	if b, err := s.TakeParked(ctx, "st"); err != nil || string(b) != "sealed" {
		t.Fatalf("TakeParked = %q, %v", b, err)
	}
	if _, err := s.TakeParked(ctx, "st"); !errors.Is(err, tpp.ErrNotFound) {
		t.Fatalf("second TakeParked = %v, want tpp.ErrNotFound", err)
	}
}

// The embedded Redis (demo, no --redis-url) runs the same scripts.
func TestStateStoreOnEmbeddedRedis(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, stop, err := Embedded(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	s := NewStateStore(rdb, Keys{}, 0, nil)
	for i := range MaxStatesPerConsent + 1 {
		if err := s.Put(ctx, "st-"+strconv.Itoa(i), tpp.OAuthState{ConsentID: "c1", BrowserHash: "b"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Take(ctx, "st-0", "b"); !errors.Is(err, tpp.ErrNotFound) {
		t.Fatalf("oldest state after the bound = %v, want tpp.ErrNotFound", err)
	}
	if _, err := s.Take(ctx, "st-1", "x"); !errors.Is(err, tpp.ErrForeignBrowser) {
		t.Fatalf("foreign Take = %v", err)
	}
	if st, err := s.Take(ctx, "st-1", "b"); err != nil || st.ConsentID != "c1" {
		t.Fatalf("Take = %+v, %v", st, err)
	}
}
