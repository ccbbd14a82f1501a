package oauth

import (
	"net/http"
	"strings"
	"testing"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/internal/banktest"
)

// A failure of bunq's token endpoint that may pass (5xx, a dropped
// connection) is retried within the request; when it lasts, the user sees
// a "try again" page that restarts the flow for the same consent, which
// stays pending instead of being rejected for good (issue 13).
func TestTokenEndpointOutage(t *testing.T) {
	t.Parallel()
	h := newHarness(t)

	t.Run("a short failure is retried within the request", func(t *testing.T) {
		for _, f := range []banktest.Fault{
			{Method: "POST", Path: "/v1/token", Kind: banktest.FaultStatus, Status: 503, Count: 1},
			{Method: "POST", Path: "/v1/token", Kind: banktest.FaultDrop, Count: 1},
		} {
			id, au := h.createConsent("accounts")
			b := h.newBrowser()
			cb := h.decide(b.toBank(au), "approve")
			h.env.Fault(t, f)
			if p := b.get(cb); p.status != http.StatusSeeOther || !strings.Contains(p.location, "status=active") {
				t.Fatalf("%s: callback %d %s\n%s", f.Kind, p.status, p.location, p.body)
			}
			if c := h.consent(id); c.Status != tpp.ConsentActive {
				t.Fatalf("%s: consent %s", f.Kind, c.Status)
			}
		}
	})

	t.Run("a lasting failure offers to try again", func(t *testing.T) {
		id, au := h.createConsent("accounts")
		b := h.newBrowser()
		cb := h.decide(b.toBank(au), "approve")
		h.env.Fault(t, banktest.Fault{Method: "POST", Path: "/v1/token", Kind: banktest.FaultStatus, Status: 502, Count: 10})
		p := b.get(cb)
		h.env.ClearFaults(t)
		if p.status != http.StatusServiceUnavailable || !strings.Contains(p.body, "bunq did not answer") {
			t.Fatalf("callback during an outage: %d %s\n%s", p.status, p.location, p.body)
		}
		retry := `href="/connect/` + id + `"`
		if !strings.Contains(p.body, retry) || !strings.Contains(p.body, "Try again") {
			t.Fatalf("outage page has no Try again link to %s:\n%s", retry, p.body)
		}
		if c := h.consent(id); c.Status != tpp.ConsentPending || len(h.trail(id)) != 0 {
			t.Fatalf("consent after an outage: %s %v, want pending and unchanged", c.Status, h.trail(id))
		}
		// Try again: the same consent, a fresh trip to bunq.
		if p := b.get(h.decide(b.toBank(au), "approve")); p.status != http.StatusSeeOther || !strings.Contains(p.location, "status=active") {
			t.Fatalf("after trying again: %d %s", p.status, p.location)
		}
	})
}
