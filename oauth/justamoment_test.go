package oauth

import (
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/internal/banktest"
	"github.com/bunqtpp/tpp/internal/stacktest"
)

var metaRefresh = regexp.MustCompile(`<meta http-equiv="refresh" content="(\d+);url=([^"]+)">`)

// TestRateLimitedActivationShowsJustAMoment: when bunq rate limits the
// context creation for longer than the user's patience, the callback shows
// a page that retries by itself; the consent stays pending, the retry works
// only in the same browser, and it activates the consent without another
// code exchange (bunq answers a code once).
func TestRateLimitedActivationShowsJustAMoment(t *testing.T) {
	t.Parallel()
	frozen := time.Now().UTC()
	env := banktest.Start(t, banktest.WithRateLimits(), banktest.WithClock(func() time.Time { return frozen }))
	h := newHarnessBudget(t, env, nil, stacktest.Unlimited{}, func(_ *harness, c *Config) {
		c.ActivationRetry, c.ActivationPatience = 20*time.Millisecond, 100*time.Millisecond
	})
	env.AdvanceClock(t, 31*time.Second) // the registration's own session
	h.connect()                         // uses the session-server slot of the next 30 s

	id, au := h.createConsent()
	b := h.newBrowser()
	p := b.get(h.decide(b.toBank(au), "approve"))
	m := metaRefresh.FindStringSubmatch(p.body)
	if p.status != http.StatusServiceUnavailable || !strings.Contains(p.body, "Just a moment") || m == nil {
		t.Fatalf("rate-limited callback: %d %s", p.status, p.body)
	}
	if c := h.consent(id); c.Status != tpp.ConsentPending {
		t.Fatalf("consent after the rate-limited callback is %s, want pending", c.Status)
	}
	retry := h.stack.URL + html.UnescapeString(m[2])
	if !strings.HasPrefix(m[2], CallbackPath+"?") {
		t.Fatalf("refresh URL %q", m[2])
	}

	// Another browser cannot use the retry.
	if p := h.newBrowser().get(retry); p.status != http.StatusBadRequest {
		t.Fatalf("retry from another browser: %d %s", p.status, p.location)
	}
	// Still limited: the page comes again, the consent still waits.
	if p := b.get(retry); p.status != http.StatusServiceUnavailable || metaRefresh.FindString(p.body) == "" {
		t.Fatalf("retry while still limited: %d %s", p.status, p.body)
	}
	env.AdvanceClock(t, 30*time.Second)
	if p := b.get(retry); p.status != http.StatusSeeOther || !strings.Contains(p.location, "status=active") {
		t.Fatalf("retry after the limit: %d %s %s", p.status, p.location, p.body)
	}
	if c := h.consent(id); c.Status != tpp.ConsentActive {
		t.Fatalf("consent %s", c.Status)
	}
	// The state is used up now.
	if p := b.get(retry); p.status != http.StatusBadRequest {
		t.Fatalf("retry after activation: %d", p.status)
	}
}
