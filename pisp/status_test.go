package pisp_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
)

// Real PSP drafts reach COMPLETED once the money moved (bunq-api.md
// §12.1): the payment is executed, never failed. Here the bank completes
// the draft before the browser comes back.
func TestSinglePaymentCompletedIsExecuted(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	r := h.req("POST", "/v1/single-payments", h.singleBody("8.00", "Completed"), key("c-1"))
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	b := h.stack.NewBrowser()
	cb := h.stack.Decide(b.ToBank(r.str("authorize_url")), "approve")
	h.env.AdvanceClock(t, 2*time.Minute)
	p := h.payment(r.str("id"))
	if d, err := h.bc.GetPSPDraftPayment(context.Background(), h.bank.Context, p.BunqID); err != nil || d.Status != "COMPLETED" {
		t.Fatalf("draft at the bank: %+v %v", d, err)
	}
	back := b.Get(cb)
	if back.Status != http.StatusSeeOther || !strings.Contains(back.Location, "status=executed") {
		t.Fatalf("callback: %d %s", back.Status, back.Location)
	}
	if p := h.payment(r.str("id")); p.Status != tpp.PaymentExecuted {
		t.Fatalf("payment: %s %s", p.Status, p.ErrorCode)
	}
}

// A PSP draft nobody answers EXPIRES at the bank: the payment fails with
// consent_expired at the next look.
func TestSinglePaymentExpiredAtTheBank(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	r := h.req("POST", "/v1/single-payments", h.singleBody("9.00", "Expires at bunq"), key("e-1"))
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	h.stack.NewBrowser().ToBank(r.str("authorize_url"))
	h.env.AdvanceClock(t, 61*time.Minute)
	g := h.req("GET", "/v1/single-payments/"+r.str("id"), "", nil)
	if g.str("status") != "failed" {
		t.Fatalf("get: %s\nlogs:\n%s", g.raw, h.logs.String())
	}
	if p := h.payment(r.str("id")); p.ErrorCode != tpp.EConsentExpired {
		t.Fatalf("payment: %s %s", p.Status, p.ErrorCode)
	}
}
