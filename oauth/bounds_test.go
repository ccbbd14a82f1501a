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

// The consent keeps where it was granted from: the IP address and user
// agent of the browser whose callback activated it, also in its audit
// record (PSD2 record; issue 10).
func TestGrantRecordsBrowserOrigin(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id, au := h.createConsent("accounts")
	b := h.newBrowser()
	req, _ := http.NewRequest("GET", h.decide(b.toBank(au), "approve"), nil)
	req.Header.Set("User-Agent", "TestBrowser/1.0 \u202egnp.exe")
	if p := b.b.Do(req); p.Status != http.StatusSeeOther || !strings.Contains(p.Location, "status=active") {
		t.Fatalf("callback: %d %s", p.Status, p.Location)
	}
	c := h.consent(id)
	if c.GrantedIP != "127.0.0.1" || c.GrantedUserAgent != "TestBrowser/1.0 ?gnp.exe" {
		t.Fatalf("granted from %q with %q, want 127.0.0.1 and the cleaned user agent", c.GrantedIP, c.GrantedUserAgent)
	}
	recs, err := h.audit.ListAudit(context.Background(), tpp.AuditFilter{ConsentID: id}, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, r := range recs {
		if r.Action == tpp.AuditConsentTransition && r.To == string(tpp.ConsentActive) {
			found = strings.Contains(r.Detail, "127.0.0.1") && strings.Contains(r.Detail, "TestBrowser/1.0")
		}
	}
	if !found {
		t.Fatalf("no activation audit record naming the browser: %+v", recs)
	}
}
