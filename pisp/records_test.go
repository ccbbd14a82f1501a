package pisp_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/bunqtpp/tpp"
)

// A request the bank would refuse (an account the consent does not see, a
// currency the account does not hold) is answered before anything is
// recorded: no payment, no webhook, nothing at the bank.
func TestRefusedBeforeTheBankLeavesNoPayment(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	con := h.connect()
	var body map[string]any
	_ = json.Unmarshal([]byte(h.paymentBody("1.00", "Elsewhere")), &body)
	body["account_id"] = tpp.AccountID(987654321) // no such account under this consent
	foreign, _ := json.Marshal(body)
	_ = json.Unmarshal([]byte(h.paymentBody("1.00", "Dollars")), &body)
	body["amount"] = map[string]string{"amount": "1.00", "currency": "USD"}
	dollars, _ := json.Marshal(body)
	h.env.ResetStats(t)
	for _, tc := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"unknown account", string(foreign), 404, tpp.EAccountNotFound},
		{"wrong currency", string(dollars), 400, tpp.EInvalidCurrency},
	} {
		r := h.req("POST", "/v1/consents/"+con+"/payments", tc.body, key("k-"+tc.code))
		if r.status != tc.status || r.str("code") != tc.code {
			t.Errorf("%s: %d %s", tc.name, r.status, r.raw)
		}
	}
	if n := h.count("payments"); n != 0 {
		t.Fatalf("%d payments recorded for refused requests", n)
	}
	if n := h.env.Stats(t)[draftCreate]; n != 0 {
		t.Fatalf("%d drafts sent to the bank", n)
	}
}

// Failed and rejected payments say why, as a code and in words.
func TestFailureReason(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	con := h.connect()
	r := h.createPayment(con, "k-rej", h.paymentBody("2.00", "Declined in the app"))
	if r.body["failure_reason"] != nil || r.body["failure_message"] != nil {
		t.Fatalf("pending payment with a failure: %s", r.raw)
	}
	h.env.RejectDraftPayment(t, bankID(t, r))
	h.waitStatus(r.str("id"), tpp.PaymentRejected)
	g := h.req("GET", "/v1/consents/"+con+"/payments/"+r.str("id"), "", nil)
	if g.str("failure_reason") != "rejected_by_user" || g.str("failure_message") == "" {
		t.Fatalf("rejected payment: %s", g.raw)
	}
	s := h.req("POST", "/v1/single-payments", h.singleBody("3.00", "Declined at bunq"), key("s-rej"))
	back := h.authorize(s.str("authorize_url"), "deny")
	if !strings.Contains(back, "status=rejected") || !strings.Contains(back, "error=access_denied") {
		t.Fatalf("return URL %s", back)
	}
	if g := h.req("GET", "/v1/single-payments/"+s.str("id"), "", nil); g.str("status") != "rejected" ||
		g.str("failure_reason") != "access_denied" || g.str("failure_message") != "The user declined at bunq." {
		t.Fatalf("declined single payment: %s (return %s)", g.raw, back)
	}
}
