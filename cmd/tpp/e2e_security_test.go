package main

// End-to-end tests of attacks on the browser flow (issue 10): two fintech
// clients, two browsers, one of them hostile.

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdpfetch "github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"

	"github.com/bunqtpp/tpp/internal/browsertest"
)

// holdCallbacks makes b stop at our OAuth callback instead of sending it:
// the request is answered in the browser with a stand-in page, and its URL
// (with the code) is handed to the test, as a leaked redirect would be.
// release lets later navigations through again.
func holdCallbacks(t *testing.T, b *browsertest.Browser) (held func() string, release func()) {
	t.Helper()
	got := make(chan string, 1)
	var once sync.Once
	if err := chromedp.Listen(b.Ctx, func(ev any) {
		e, ok := ev.(*cdpfetch.EventRequestPaused)
		if !ok {
			return
		}
		once.Do(func() { got <- e.Request.URL })
		// Commands may not be sent from inside a listener.
		go func() {
			_, _ = chromedp.Call(b.Ctx, cdpfetch.FulfillRequest, cdpfetch.FulfillRequestParams{
				RequestID: e.RequestID, ResponseCode: 200,
				ResponseHeaders: []*cdpfetch.HeaderEntry{{Name: "Content-Type", Value: "text/html"}},
				Body:            []byte(`<!doctype html><title>held</title><h1 id="held">held</h1>`),
			})
		}()
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(b.Ctx, 10*time.Second)
	defer cancel()
	if _, err := chromedp.Call(ctx, cdpfetch.Enable, cdpfetch.EnableParams{Patterns: []*cdpfetch.RequestPattern{{URLPattern: "*/oauth/callback*"}}}); err != nil {
		t.Fatal(err)
	}
	held = func() string {
		select {
		case u := <-got:
			return u
		case <-time.After(30 * time.Second):
			t.Fatal("the browser never reached the callback")
			return ""
		}
	}
	release = func() {
		ctx, cancel := context.WithTimeout(b.Ctx, 10*time.Second)
		defer cancel()
		if _, err := chromedp.Call(ctx, cdpfetch.Disable, cdp.Empty{}); err != nil {
			t.Fatal(err)
		}
	}
	return held, release
}

// TestE2EStolenCodeInAnotherFlow is issue 10 item 1 through the real
// browser flow: fintech B's user (the attacker) takes the unused code of
// fintech A's user and presents it at our callback with the state of his
// own consent, in his own browser. His consent never becomes active; the
// victim's flow, resumed afterwards, still succeeds.
func TestE2EStolenCodeInAnotherFlow(t *testing.T) {
	t.Parallel()
	h := startHarness(t)
	user := h.person()
	attackerKey, _ := h.createClientWith("Evil Fintech", "--return-url", h.ReturnURL)

	// The victim approves at bunq; the redirect back leaks before it lands.
	victimID, _ := h.createConsent("accounts")
	victim := browsertest.New(t)
	held, release := holdCallbacks(t, victim)
	uid := strconv.FormatInt(user.ID, 10)
	victim.Run("victim approves at bunq",
		chromedp.Navigate(h.URL+"/connect/"+url.PathEscape(victimID)),
		chromedp.Click(`form[action$="/continue"] button`),
		chromedp.Click(`input[name="user_id"][value="`+uid+`"]`),
		chromedp.Click(`form[action="/auth"] button.primary`),
		chromedp.Click(`button[value="approve"]`),
		chromedp.WaitVisible(`#held`),
	)
	victimCallback := held()
	stolen := mustQuery(t, victimCallback).Get("code")
	if stolen == "" {
		t.Fatalf("held callback %q has no code", victimCallback)
	}
	h.secrets.add("OAuth code", stolen)

	// The attacker starts his own flow at fintech B, up to bunq's page.
	r := h.apiAs(attackerKey, http.MethodPost, "/v1/consents", map[string]any{"user_ref": "mallory", "scopes": []string{"accounts"}, "return_url": h.ReturnURL}, nil)
	if r.Status != http.StatusCreated {
		t.Fatalf("attacker's consent: %d %v", r.Status, r.Body)
	}
	attackerID := r.Body.str("id")
	attacker := browsertest.New(t)
	attacker.Run("attacker continues to bunq",
		chromedp.Navigate(r.Body.str("authorize_url")),
		chromedp.Click(`form[action$="/continue"] button`),
		chromedp.WaitVisible(`form[action="/auth"]`),
	)
	state := mustQuery(t, attacker.Location()).Get("state")
	attacker.Run("attacker presents the stolen code",
		chromedp.Navigate(h.URL+"/oauth/callback?"+url.Values{"state": {state}, "code": {stolen}}.Encode()),
		chromedp.WaitVisible(`h1`),
	)
	attacker.Screenshot("stolen-code-refused")
	if txt := attacker.Text(); !strings.Contains(txt, "belongs to another request") {
		t.Fatalf("attacker's page: %q", txt)
	}
	ac := h.apiAs(attackerKey, http.MethodGet, "/v1/consents/"+attackerID, nil, nil)
	if ac.Body.str("status") != "pending" || ac.Body["bank_user"] != nil {
		t.Fatalf("attacker's consent after the attack = %v, want pending without a bank user", ac.Body)
	}
	if acc := h.apiAs(attackerKey, http.MethodGet, "/v1/accounts?consent_id="+attackerID, nil, nil); acc.Status == http.StatusOK {
		t.Fatalf("the attacker read accounts: %v", acc.Body)
	}

	// The victim's redirect lands after all, and the flow finishes.
	release()
	victim.Run("victim's callback lands",
		chromedp.Navigate(victimCallback),
		chromedp.WaitVisible(`#fintech-landing`),
	)
	victim.Screenshot("victim-finished")
	if q := mustQuery(t, victim.Location()); q.Get("status") != "active" || q.Get("consent_id") != victimID {
		t.Fatalf("victim ended at %q", victim.Location())
	}
	if c := h.consent(victimID); c.str("status") != "active" || c.obj("bank_user").str("display_name") != user.DisplayName {
		t.Fatalf("victim's consent = %v", c)
	}
	if ac := h.apiAs(attackerKey, http.MethodGet, "/v1/consents/"+attackerID, nil, nil); ac.Body.str("status") != "pending" {
		t.Fatalf("attacker's consent after the victim finished = %v", ac.Body)
	}
}
