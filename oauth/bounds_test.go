package oauth

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/redis"
)

// A CSRF cookie value the browser brings but we never issued (planted by
// a sibling site, or chosen by an attacker who then knows it) is replaced
// by a fresh one, and a form posted with it is refused (issue 10).
func TestCSRFCookieNeverAdopted(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id, au := h.createConsent()
	planted := strings.Repeat("A", 43)
	req, _ := http.NewRequest("GET", au, nil)
	req.AddCookie(&http.Cookie{Name: "tpp_csrf", Value: planted})
	p := h.newBrowser().b.Do(req)
	if p.Status != http.StatusOK {
		t.Fatalf("consent page: %d", p.Status)
	}
	var set *http.Cookie
	for _, c := range (&http.Response{Header: p.Header}).Cookies() {
		if c.Name == "tpp_csrf" {
			set = c
		}
	}
	if set == nil || set.Value == planted || !csrfCookieIssued(h.svc.csrfKey, set.Value) {
		t.Fatalf("CSRF cookie set = %+v, want a fresh one of ours instead of %q", set, planted)
	}
	// A form token made for the planted value does not pass either.
	form := url.Values{"csrf_token": {csrfToken(h.svc.csrfKey, planted, id)}}
	req, _ = http.NewRequest("POST", au+"/continue", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "tpp_csrf", Value: planted})
	if p := h.newBrowser().b.Do(req); p.Status != http.StatusForbidden {
		t.Fatalf("continue with a planted cookie: %d", p.Status)
	}
}

// Pressing Continue in a loop does not pile up states: a consent holds at
// most redis.MaxStatesPerConsent, the oldest is dropped (its callback
// finds the state gone), and the newest still finishes (issue 10).
func TestContinueLoopKeepsFewStates(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id, au := h.createConsent("accounts")
	b := h.newBrowser()
	var banks []*url.URL
	for range redis.MaxStatesPerConsent + 3 {
		banks = append(banks, b.toBank(au))
	}
	keys, err := h.rdb.Keys(context.Background(), h.stack.Keys.Key("oauth", "state", "*")).Result()
	if err != nil || len(keys) != redis.MaxStatesPerConsent {
		t.Fatalf("state keys in Redis = %d (%v), want %d", len(keys), err, redis.MaxStatesPerConsent)
	}
	if p := b.get(h.decide(banks[0], "approve")); p.status != http.StatusBadRequest || !strings.Contains(p.body, "already been used or has expired") {
		t.Fatalf("callback of the oldest state: %d %s", p.status, p.location)
	}
	if c := h.consent(id); c.Status != tpp.ConsentPending {
		t.Fatalf("consent after a dropped state: %s", c.Status)
	}
	if p := b.get(h.decide(banks[len(banks)-1], "approve")); p.status != http.StatusSeeOther || !strings.Contains(p.location, "status=active") {
		t.Fatalf("callback of the newest state: %d %s", p.status, p.location)
	}
}
