package oauth

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/internal/banktest"
	"github.com/bunqtpp/tpp/internal/stacktest"
)

// TestConcurrentActivationsUnderPerIPLimits: bunq allows one session-server
// call per 30 s per IP. Five users authorizing at once all end active: the
// callback retries rate-limited context creation within the user's
// patience instead of failing the consent (the bank's clock moves 30 s
// while they wait).
func TestConcurrentActivationsUnderPerIPLimits(t *testing.T) {
	t.Parallel()
	frozen := time.Now().UTC()
	env := banktest.Start(t, banktest.WithRateLimits(), banktest.WithClock(func() time.Time { return frozen }))
	h := newHarnessBudget(t, env, nil, stacktest.Unlimited{}, func(_ *harness, c *Config) {
		c.ActivationRetry, c.ActivationPatience = 50*time.Millisecond, time.Minute
	})
	const n = 5
	env.AdvanceClock(t, 31*time.Second) // the registration's own session
	ids := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, au := h.createConsent()
			b := h.newBrowser()
			cb := h.decide(b.toBank(au), "approve")
			if p := b.get(cb); p.status != http.StatusSeeOther || !strings.Contains(p.location, "status=active") {
				t.Errorf("callback: %d %s", p.status, p.location)
			}
			ids <- id
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for waiting := true; waiting; {
		select {
		case <-done:
			waiting = false
		case <-time.After(300 * time.Millisecond):
			env.AdvanceClock(t, 30*time.Second)
		}
	}
	close(ids)
	for id := range ids {
		if c := h.consent(id); c.Status != tpp.ConsentActive {
			t.Errorf("consent %s is %s", id, c.Status)
		}
	}
	if got := env.Stats(t)["POST /v1/session-server"]; got <= n {
		t.Logf("session-server calls %d: no 429 was met (the test would not show the retry)", got)
	}
}
