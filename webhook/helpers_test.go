package webhook_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/bunqtpp/tpp/webhook"
)

// fakeClock is a settable clock shared by the dispatcher and the store.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// waitFor polls cond until it holds or fails the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// received is one request a receiver got.
type received struct {
	Header http.Header
	Body   []byte
}

// receiver is a real HTTP endpoint whose answer per request is chosen by
// respond (nil: 204). It records every request.
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	got     []received
	respond func(n int, w http.ResponseWriter, r *http.Request)
}

func newReceiver(t testing.TB, respond func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{respond: respond}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, received{Header: r.Header.Clone(), Body: body})
		n := len(rc.got)
		rc.mu.Unlock()
		if rc.respond != nil {
			rc.respond(n, w, r)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.got)
}

// runDispatcher starts d.Run and returns a stop function that cancels it
// and waits for it to return (also run at cleanup).
func runDispatcher(t *testing.T, d *webhook.Dispatcher) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Error("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// results records OnResult calls.
type results struct {
	mu  sync.Mutex
	oks []bool
}

func (r *results) hook(eventType string, ok bool, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.oks = append(r.oks, ok)
}

func (r *results) get() []bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bool(nil), r.oks...)
}

// memStore is an in-memory Store for the dispatcher's timing unit tests
// only; the SQLite store is tested for real in sqlite_test.go.
type memStore struct {
	mu      sync.Mutex
	clock   *fakeClock
	order   []string
	items   map[string]*memItem
	secrets map[string][]string
	claims  int
	tokens  int
}

type memItem struct {
	d          webhook.Delivery
	next       time.Time
	leaseUntil time.Time
	attempts   int
	delivered  bool
	abandoned  bool
	failures   []webhook.Failure
}

func newMemStore(clock *fakeClock) *memStore {
	return &memStore{clock: clock, items: map[string]*memItem{}, secrets: map[string][]string{}}
}

func (s *memStore) add(id, clientID, url string, payload string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.order = append(s.order, id)
	s.items[id] = &memItem{
		d:    webhook.Delivery{EventID: id, ClientID: clientID, Type: "payment.updated", Payload: []byte(payload), URL: url},
		next: s.clock.Now(),
	}
}

func (s *memStore) ClaimDue(ctx context.Context, now, leaseUntil time.Time, limit int) ([]webhook.Delivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.claims++
	var out []webhook.Delivery
	for _, id := range s.order {
		it := s.items[id]
		if len(out) == limit {
			break
		}
		if it.delivered || it.abandoned || it.next.After(now) || it.leaseUntil.After(now) {
			continue
		}
		s.tokens++
		it.attempts++
		it.leaseUntil = leaseUntil
		it.d.Attempt = it.attempts
		it.d.LeaseToken = fmt.Sprint("lease-", s.tokens)
		out = append(out, it.d)
	}
	return out, nil
}

func (s *memStore) Secrets(ctx context.Context, clientID string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, ok := s.secrets[clientID]
	if !ok {
		return nil, errors.New("no such client")
	}
	return sec, nil
}

func (s *memStore) MarkDelivered(ctx context.Context, d webhook.Delivery, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.items[d.EventID]
	it.delivered = true
	it.leaseUntil = time.Time{}
	return nil
}

func (s *memStore) MarkFailed(ctx context.Context, d webhook.Delivery, f webhook.Failure) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.items[d.EventID]
	if it.d.LeaseToken != d.LeaseToken || it.delivered {
		return webhook.ErrLeaseLost
	}
	it.failures = append(it.failures, f)
	it.leaseUntil = time.Time{}
	if f.NextAttempt.IsZero() {
		it.abandoned = true
	} else {
		it.next = f.NextAttempt
	}
	return nil
}

// item returns a snapshot of one delivery's state.
func (s *memStore) item(id string) memItem {
	s.mu.Lock()
	defer s.mu.Unlock()
	it := *s.items[id]
	it.failures = append([]webhook.Failure(nil), it.failures...)
	return it
}

func (s *memStore) claimCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.claims
}
