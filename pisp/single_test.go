package pisp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/internal/banktest"
	"github.com/bunqtpp/tpp/web"
)

func (h *harness) singleBody(amount, description string) string {
	h.t.Helper()
	from := h.payer().Accounts[0]
	to := h.payee()
	b, _ := json.Marshal(map[string]any{
		"debtor":   map[string]string{"iban": strings.ToLower(from.IBAN), "name": h.payer().DisplayName},
		"creditor": map[string]string{"iban": to.IBAN, "name": "Bakkerij de Korenschoof"},
		"amount":   map[string]string{"amount": amount, "currency": "EUR"}, "description": description,
		"return_url": returnURL0,
	})
	return string(b)
}

// A single payment: a PSP draft at the bank and an authorize_url; the user
// approves at bunq's authorization page and the payment is executed.
func TestSinglePaymentApproved(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	from := h.payer().Accounts[0]
	h.env.ResetStats(t)
	body := h.singleBody("25.00", "Order 1043")
	r := h.req("POST", "/v1/single-payments", body, key("s-1"))
	if r.status != 201 || r.str("status") != "pending" || r.header.Get("Location") != "/v1/single-payments/"+r.str("id") {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	au := r.str("authorize_url")
	if !strings.HasPrefix(au, h.srv.URL+"/connect/con_") {
		t.Fatalf("authorize_url %q", au)
	}
	// Nothing at the bank before the user continues to it: bunq would
	// show the draft on any other authorization of this user.
	if h.env.Stats(t)[pspCreate] != 0 {
		t.Fatalf("a PSP draft was made at POST: %v", h.env.Stats(t))
	}
	if d := r.body["debtor"].(map[string]any); d["iban"] != from.IBAN {
		t.Fatalf("debtor IBAN not normalised: %v", d)
	}
	// Replay: same response, no second PSP draft.
	again := h.req("POST", "/v1/single-payments", body, key("s-1"))
	if again.status != 201 || string(again.raw) != string(r.raw) || again.header.Get("Idempotent-Replayed") != "true" || h.env.Stats(t)[pspCreate] != 0 {
		t.Fatalf("replay: %d %s", again.status, again.raw)
	}
	id := r.str("id")
	if g := h.req("GET", "/v1/single-payments/"+id, "", nil); g.str("status") != "pending" || g.str("authorize_url") != au {
		t.Fatalf("get before: %s", g.raw)
	}

	// Our page shows the payment the user is about to approve.
	page, err := http.Get(au)
	if err != nil {
		t.Fatal(err)
	}
	html, _ := io.ReadAll(page.Body)
	page.Body.Close()
	for _, want := range []string{"Approve a payment for", "€ 25.00", "Bakkerij de Korenschoof", "Order 1043", web.FormatIBAN(from.IBAN)} {
		if page.StatusCode != http.StatusOK || !strings.Contains(string(html), want) {
			t.Fatalf("the page at authorize_url (%d) lacks %q:\n%s", page.StatusCode, want, html)
		}
	}

	back := h.authorize(au, "approve")
	if !strings.HasPrefix(back, returnURL0) || !strings.Contains(back, "status=executed") {
		t.Fatalf("browser ends at %s", back)
	}
	if n := h.env.Stats(t)[pspCreate]; n != 1 {
		t.Fatalf("PSP draft POSTs = %d, want 1", n)
	}
	g := h.req("GET", "/v1/single-payments/"+id, "", nil)
	if g.status != 200 || g.str("status") != "executed" || g.body["authorize_url"] != nil {
		t.Fatalf("get after: %d %s", g.status, g.raw)
	}
	if got, want := minor(t, h.account(from.ID).Balance.Value), minor(t, from.Balance.Value)-2500; got != want {
		t.Errorf("payer balance %d, want %d", got, want)
	}
	evs := h.events(id)
	if len(evs) != 1 || evs[0].Kind != "single" || evs[0].Status != "executed" {
		t.Fatalf("events: %+v", evs)
	}
	// The consent made for it cannot be used for other payments: under
	// the consents API it does not exist.
	p := h.payment(id)
	if c := h.req("POST", "/v1/consents/"+p.ConsentID+"/payments", h.paymentBody("1.00", "Sneaky"), key("s-x")); c.status != 404 || c.str("code") != tpp.EConsentNotFound {
		t.Fatalf("draft payment under a single payment's consent: %d %s", c.status, c.raw)
	}
	if c := h.req("GET", "/v1/consents/"+p.ConsentID+"/payments", "", nil); c.status != 404 || c.str("code") != tpp.EConsentNotFound {
		t.Fatalf("listing a single payment's consent's payments: %d %s", c.status, c.raw)
	}
}

// Denied at bunq: the PSP draft is rejected with the authorization.
func TestSinglePaymentDenied(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	from := h.payer().Accounts[0]
	r := h.req("POST", "/v1/single-payments", h.singleBody("3.00", "Denied"), key("s-2"))
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	back := h.authorize(r.str("authorize_url"), "deny")
	if !strings.Contains(back, "status=rejected") {
		t.Fatalf("browser ends at %s", back)
	}
	g := h.req("GET", "/v1/single-payments/"+r.str("id"), "", nil)
	if g.str("status") != "rejected" || g.body["authorize_url"] != nil {
		t.Fatalf("get: %s", g.raw)
	}
	if got := h.account(from.ID).Balance.Value; got != from.Balance.Value {
		t.Errorf("balance moved: %s → %s", from.Balance.Value, got)
	}
}

// The user never comes: once the consent's 15 minutes are over the poller
// cancels the PSP draft at the bank and fails the payment.
func TestSinglePaymentExpires(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	r := h.req("POST", "/v1/single-payments", h.singleBody("4.00", "Never approved"), key("s-exp"))
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	id := r.str("id")
	// The user continues to bunq (the PSP draft is made) and never decides.
	h.stack.NewBrowser().ToBank(r.str("authorize_url"))
	if n, err := h.svc.Poll(context.Background()); err != nil || n != 0 {
		t.Fatalf("early poll: %d %v", n, err)
	}
	h.clock.Advance(16 * time.Minute)
	if n, err := h.svc.Poll(context.Background()); err != nil || n != 1 {
		t.Fatalf("poll: %d %v", n, err)
	}
	p := h.payment(id)
	if p.Status != tpp.PaymentFailed || p.ErrorCode != tpp.EConsentExpired {
		t.Fatalf("payment: %s %s", p.Status, p.ErrorCode)
	}
	d, err := h.bc.GetPSPDraftPayment(context.Background(), h.bank.Context, p.BunqID)
	if err != nil || d.Status != "CANCELLED" {
		t.Fatalf("PSP draft at the bank: %+v %v", d, err)
	}
	if g := h.req("GET", "/v1/single-payments/"+id, "", nil); g.str("status") != "failed" || g.body["authorize_url"] != nil {
		t.Fatalf("get: %s", g.raw)
	}
}

// The PSP draft is made as the user continues, but its answer is lost:
// found by listing, no second one.
func TestSinglePaymentAmbiguousFailure(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	h.env.ResetStats(t)
	body := h.singleBody("6.50", "Dropped")
	r := h.req("POST", "/v1/single-payments", body, key("s-drop"))
	if r.status != 201 || h.env.Stats(t)[pspCreate] != 0 {
		t.Fatalf("create: %d %s stats %v", r.status, r.raw, h.env.Stats(t))
	}
	h.env.Fault(t, banktest.Fault{Method: "POST", Path: "/v1/user/*/payment-service-provider-draft-payment", Kind: banktest.FaultDrop, Count: 1})
	h.stack.NewBrowser().ToBank(r.str("authorize_url"))
	p := h.payment(r.str("id"))
	if p.BunqID == 0 || h.env.Stats(t)[pspCreate] != 1 {
		t.Fatalf("no bank id after reconciliation (stats %v)", h.env.Stats(t))
	}
	// The user authorizes the reconciled draft: it executes.
	h.authorize(r.str("authorize_url"), "approve")
	if g := h.req("GET", "/v1/single-payments/"+r.str("id"), "", nil); g.str("status") != "executed" {
		t.Fatalf("get: %s", g.raw)
	}
	// Dropped before sending: nothing at the bank; the continue shows an
	// error page and the payment stays pending; the next continue makes it.
	h.env.Fault(t, banktest.Fault{Method: "POST", Path: "/v1/user/*/payment-service-provider-draft-payment", Kind: banktest.FaultDropBefore, Count: 1})
	r2 := h.req("POST", "/v1/single-payments", h.singleBody("6.60", "Dropped before"), key("s-drop2"))
	if r2.status != 201 {
		t.Fatalf("create: %d %s", r2.status, r2.raw)
	}
	b := h.stack.NewBrowser()
	_, tok := b.Open(r2.str("authorize_url"))
	if c := b.Post(r2.str("authorize_url")+"/continue", url.Values{"csrf_token": {tok}}); c.Status != http.StatusServiceUnavailable {
		t.Fatalf("continue while the bank drops the create: %d %s", c.Status, c.Body)
	}
	if p := h.payment(r2.str("id")); p.Status != tpp.PaymentPending || p.BunqID != 0 {
		t.Fatalf("payment after a failed continue: %s %d", p.Status, p.BunqID)
	}
	if back := h.authorize(r2.str("authorize_url"), "approve"); !strings.Contains(back, "status=executed") {
		t.Fatalf("retry: browser ends at %s", back)
	}
	if n := h.env.Stats(t)[pspCreate]; n != 3 {
		t.Fatalf("PSP draft POSTs = %d, want 3", n)
	}
}

// The race behind a flaky TestSinglePaymentExpires: the poller cancels an
// expired single payment's PSP draft at the bank, and the bank's callback
// about that cancellation is applied before the poller records its
// outcome. The cancelled draft read back is the abandonment: failed with
// consent_expired, never "cancelled".
func TestSinglePaymentCancelledDraftOfExpiredConsent(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{noCallbacks: true})
	r := h.req("POST", "/v1/single-payments", h.singleBody("4.10", "Cancel raced"), key("s-race"))
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	// The user continues to bunq (the PSP draft is made) and never decides.
	h.stack.NewBrowser().ToBank(r.str("authorize_url"))
	p := h.payment(r.str("id"))
	h.clock.Advance(16 * time.Minute)
	// The poller's cancel has reached the bank; its record has not.
	if err := h.bc.UpdatePSPDraftPayment(context.Background(), h.bank.Context, p.BunqID, "CANCELLED"); err != nil {
		t.Fatal(err)
	}
	obj := fmt.Sprintf(`{"id":%d}`, p.BunqID)
	if err := h.svc.OnDraftPayment(context.Background(), "PaymentServiceProviderDraftPayment", []byte(obj), "req-cb"); err != nil {
		t.Fatal(err)
	}
	if p = h.payment(p.ID); p.Status != tpp.PaymentFailed || p.ErrorCode != tpp.EConsentExpired {
		t.Fatalf("payment: %s %s, want failed consent_expired", p.Status, p.ErrorCode)
	}
}
