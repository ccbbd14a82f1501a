package pisp_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/bunqtpp/tpp"
)

// A bank callback about a payment whose consent the fintech has since
// revoked has nothing left to do: it is acknowledged (the callback handler
// answers 200), not failed, so bunq does not retry it for nothing, and the
// payment is left as the revocation left it.
func TestDraftCallbackAfterConsentRevoked(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{noCallbacks: true})
	con := h.connect()
	r := h.createPayment(con, "k-revoked", h.paymentBody("3.00", "Revoked later"))
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	p := h.payment(r.str("id"))
	if d := h.req("DELETE", "/v1/consents/"+con, "", nil); d.status/100 != 2 {
		t.Fatalf("revoke: %d %s", d.status, d.raw)
	}
	obj := fmt.Sprintf(`{"id":%d}`, p.BunqID)
	if err := h.svc.OnDraftPayment(context.Background(), "DraftPayment", []byte(obj), "req-cb"); err != nil {
		t.Fatalf("callback for a revoked consent's payment: %v, want nil (200)", err)
	}
	if got := h.payment(p.ID); got.Status != tpp.PaymentPending && got.Status != tpp.PaymentCancelled {
		t.Fatalf("payment after the callback: %s", got.Status)
	}
}
