package aisp_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/aisp"
	"github.com/bunqtpp/tpp/aisp/aisptest"
	"github.com/bunqtpp/tpp/redis"
)

const accountListKey = "GET /v1/user/{id}/monetary-account"

// PSD2: four unattended reads per consent and day; attended reads are free.
func TestAccessFrequency(t *testing.T) {
	t.Parallel()
	s, _ := setup(t, aisp.Config{})
	c := s.ActiveConsent(tpp.ScopeAccounts)
	other := s.ActiveConsent(tpp.ScopeAccounts)
	acc := tpp.AccountID(mainAccount(t, s).ID)
	base := "/v1/consents/" + c.ID
	reads := []string{base + "/accounts", base + "/accounts/" + acc, base + "/accounts/" + acc + "/transactions?limit=5", base + "/accounts"}
	for i, p := range reads {
		var h []string
		if i == 3 {
			h = []string{"Cache-Control", "no-cache"} // a fresh read counts like any other
		}
		res := s.Do("GET", p, nil, h...)
		if res.Status != 200 {
			t.Fatalf("read %d: %d %s", i+1, res.Status, res.Body)
		}
		if res.Header.Get("RateLimit-Limit") != "4" || res.Header.Get("RateLimit-Remaining") != strconv.Itoa(3-i) {
			t.Errorf("read %d: RateLimit-Limit %q, RateLimit-Remaining %q", i+1, res.Header.Get("RateLimit-Limit"), res.Header.Get("RateLimit-Remaining"))
		}
	}
	for _, p := range reads[:3] {
		res := s.Do("GET", p, nil)
		if res.Status != 429 || res.Code(t) != tpp.EAccessLimitExceed {
			t.Fatalf("5th unattended read %s: %d %s", p, res.Status, res.Body)
		}
		ra, err := strconv.Atoi(res.Header.Get("Retry-After"))
		if err != nil || ra < 1 || ra > 24*3600 {
			t.Errorf("Retry-After %q", res.Header.Get("Retry-After"))
		}
		if res.Header.Get("RateLimit-Remaining") != "0" {
			t.Errorf("RateLimit-Remaining %q on 429", res.Header.Get("RateLimit-Remaining"))
		}
	}
	// Attended reads go on, are not counted, and report the budget left.
	for range 3 {
		res := s.Do("GET", base+"/accounts", nil, attended...)
		if res.Status != 200 || res.Header.Get("RateLimit-Remaining") != "0" || res.Header.Get("RateLimit-Limit") != "4" {
			t.Fatalf("attended read: %d %v %s", res.Status, res.Header, res.Body)
		}
	}
	// The budget is per consent.
	if res := s.Do("GET", "/v1/consents/"+other.ID+"/accounts", nil); res.Status != 200 || res.Header.Get("RateLimit-Remaining") != "3" {
		t.Errorf("other consent: %d %s %s", res.Status, res.Header.Get("RateLimit-Remaining"), res.Body)
	}
}

// 20 identical concurrent reads make one bank call; later reads within the
// TTL come from the cache; no-cache goes to the bank.
func TestCacheAndCoalescing(t *testing.T) {
	t.Parallel()
	s, _ := setup(t, aisp.Config{CacheTTL: 400 * time.Millisecond})
	c := s.ActiveConsent(tpp.ScopeAccounts)
	if _, err := s.Provider.Get(t.Context(), c); err != nil { // build the context first: only reads count
		t.Fatal(err)
	}
	s.Env.ResetStats(t)
	path := s.URL + "/v1/consents/" + c.ID + "/accounts"

	const n = 20
	var wg sync.WaitGroup
	bodies := make([]string, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, _ := http.NewRequest("GET", path, nil)
			req.Header.Set("Authorization", "Bearer "+s.APIKey)
			req.Header.Set("PSU-IP-Address", "203.0.113.7")
			res, err := s.HTTP.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			if res.StatusCode != 200 {
				bodies[i] = strconv.Itoa(res.StatusCode) + string(b)
				return
			}
			bodies[i] = string(b)
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || bodies[i] != bodies[0] {
			t.Fatalf("read %d: %v %s (first: %s)", i, errs[i], bodies[i], bodies[0])
		}
	}
	if got := s.Env.Stats(t)[accountListKey]; got != 1 {
		t.Errorf("%d concurrent identical reads made %d bank calls, want 1", n, got)
	}
	s.Do("GET", "/v1/consents/"+c.ID+"/accounts", nil, attended...)
	if got := s.Env.Stats(t)[accountListKey]; got != 1 {
		t.Errorf("a cached read went to the bank (%d calls)", got)
	}
	s.Do("GET", "/v1/consents/"+c.ID+"/accounts", nil, append(attended, "Cache-Control", "no-cache")...)
	if got := s.Env.Stats(t)[accountListKey]; got != 2 {
		t.Errorf("no-cache: %d bank calls, want 2", got)
	}
	time.Sleep(500 * time.Millisecond) // past the 400 ms TTL
	s.Do("GET", "/v1/consents/"+c.ID+"/accounts", nil, attended...)
	if got := s.Env.Stats(t)[accountListKey]; got != 3 {
		t.Errorf("after the TTL: %d bank calls, want 3", got)
	}
	// The cache is per consent: another consent of the same user reads the bank.
	c2 := s.ActiveConsent(tpp.ScopeAccounts)
	s.Do("GET", "/v1/consents/"+c2.ID+"/accounts", nil, attended...)
	if got := s.Env.Stats(t)[accountListKey]; got != 4 {
		t.Errorf("another consent: %d bank calls, want 4", got)
	}
}

// What each consent state answers is held for every role at once in
// package consent (TestEveryRoleAnswersTheSameForTheSameConsent); here, what
// is the AISP's own: a refused read is not counted against the access
// frequency, and no API key is 401.
func TestConsentStates(t *testing.T) {
	t.Parallel()
	s, _ := setup(t, aisp.Config{})
	acc := tpp.AccountID(mainAccount(t, s).ID)
	paths := func(id string) []string {
		b := "/v1/consents/" + id + "/accounts"
		return []string{b, b + "/" + acc, b + "/" + acc + "/transactions"}
	}
	mine := s.ActiveConsent(tpp.ScopeAccounts)
	if res := s.DoAs("", "GET", paths(mine.ID)[0], nil); res.Status != 401 {
		t.Errorf("no API key: %d %s", res.Status, res.Body)
	}
	due := s.ActiveConsent(tpp.ScopeAccounts)
	s.Clock.Advance(tpp.ConsentReauthAfter + time.Hour)
	for _, p := range paths(due.ID) {
		res := s.Do("GET", p, nil)
		if res.Status != 403 || res.Code(t) != tpp.EConsentReauthRequired {
			t.Errorf("reauth %s: %d %s", p, res.Status, res.Body)
		}
		if res.Header.Get("RateLimit-Remaining") != "" {
			t.Errorf("a refused read was counted")
		}
	}
}

// Without Redis the access frequency cannot be counted: unattended reads
// are refused, not waved through.
func TestAccessFrequencyFailsClosed(t *testing.T) {
	t.Parallel()
	s, _ := setup(t, aisp.Config{})
	c := s.ActiveConsent(tpp.ScopeAccounts)
	s.Redis.Stop(t)
	res := s.Do("GET", "/v1/consents/"+c.ID+"/accounts", nil)
	if res.Status != 500 || res.Code(t) != tpp.EInternal || res.Header.Get("RateLimit-Remaining") != "" {
		t.Errorf("unattended read without Redis: %d %s", res.Status, res.Body)
	}
}

// peeking adds Peek to the real window, answering from a fixed decision:
// it stands for a window implementation that can tell the budget left.
type peeking struct {
	*redis.AccessWindow
	peeks int
	mu    sync.Mutex
}

func (p *peeking) Peek(context.Context, string) (tpp.AccessDecision, error) {
	p.mu.Lock()
	p.peeks++
	p.mu.Unlock()
	return tpp.AccessDecision{Allowed: true, Limit: 4, Remaining: 2}, nil
}

func TestAttendedReadsShowTheBudgetWhenTheWindowCanPeek(t *testing.T) {
	t.Parallel()
	s := aisptest.New(t)
	aw, err := redis.NewAccessWindow(s.RDB, s.Keys, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	pk := &peeking{AccessWindow: aw}
	h, _ := aisp.NewHandler(s.Service(aisp.Config{Access: pk}))
	h.Register(s.V1)
	c := s.ActiveConsent(tpp.ScopeAccounts)
	res := s.Do("GET", "/v1/consents/"+c.ID+"/accounts", nil, attended...)
	pk.mu.Lock()
	peeks := pk.peeks
	pk.mu.Unlock()
	if res.Status != 200 || res.Header.Get("RateLimit-Limit") != "4" || res.Header.Get("RateLimit-Remaining") != "2" || peeks != 1 {
		t.Errorf("attended read: %d %v (%d peeks)", res.Status, res.Header, peeks)
	}
	// The attended read did not use the real budget.
	if res := s.Do("GET", "/v1/consents/"+c.ID+"/accounts", nil); res.Header.Get("RateLimit-Remaining") != "3" {
		t.Errorf("first unattended read: %v", res.Header)
	}
}
