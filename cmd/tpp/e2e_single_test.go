package main

// End-to-end tests of single payments with two fintech clients, in
// headless Chromium: issue 10 item 2 (one pending single payment must not
// be approved inside another authorization).

import (
	"net/http"
	"strings"
	"testing"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/internal/banktest"
	"github.com/bunqtpp/tpp/internal/browsertest"
)

// TestE2ESinglePaymentsTwoClients: fintech B's €50 single payment does not
// execute when the user approves fintech A's accounts-only consent; and
// with A's €0.21 pending, B's €999 from the same debtor is refused, so
// approving A's payment moves €0.21 and nothing else.
func TestE2ESinglePaymentsTwoClients(t *testing.T) {
	t.Parallel()
	h := startHarness(t)
	user := h.person()
	keyB, _ := h.createClient("Fintech B", h.ReturnURL)
	payee := h.otherAccount(user)
	single := func(h *harness, key, amount, idem string) apiResponse {
		return h.apiAs(key, http.MethodPost, "/v1/single-payments", map[string]any{
			"debtor":   map[string]string{"iban": user.Accounts[0].IBAN, "name": user.DisplayName},
			"creditor": map[string]string{"iban": payee.IBAN, "name": "Bakkerij de Korenschoof"},
			"amount":   map[string]string{"amount": amount, "currency": "EUR"}, "description": "Order " + idem,
			"return_url": h.ReturnURL,
		}, http.Header{"Idempotency-Key": {idem}})
	}

	t.Run("accounts-only consent of A", func(t *testing.T) {
		h := h.forTest(t)
		before := h.balance(user.Accounts[0].ID)
		b := single(h, keyB, "50.00", "b-50")
		if b.Status != http.StatusCreated {
			t.Fatalf("B's single payment: %d %v", b.Status, b.Body)
		}
		id, _ := h.createConsent("accounts")
		if final := h.connectInBrowser(browsertest.New(t), id, user.DisplayName); !strings.Contains(final, "status=active") {
			t.Fatalf("A's consent flow ended at %q", final)
		}
		if got := h.balance(user.Accounts[0].ID); got != before {
			t.Fatalf("A's accounts-only authorization moved money: %d → %d", before, got)
		}
		if p := h.apiAs(keyB, http.MethodGet, "/v1/single-payments/"+b.Body.str("id"), nil, nil); p.Body.str("status") != "pending" {
			t.Fatalf("B's payment after A's authorization: %v", p.Body)
		}
		// B's own flow pays B's €50.
		final := h.browserFlow(browsertest.New(t), consentOf(t, b.Body.str("authorize_url")), user.DisplayName, "approve")
		if !strings.Contains(final, "status=executed") || !strings.Contains(final, b.Body.str("id")) {
			t.Fatalf("B's flow ended at %q", final)
		}
		if got := h.balance(user.Accounts[0].ID); got != before-5000 {
			t.Fatalf("balance %d, want %d", got, before-5000)
		}
	})

	t.Run("A's small payment and B's large one", func(t *testing.T) {
		h := h.forTest(t)
		before := h.balance(user.Accounts[0].ID)
		a := single(h, h.APIKey, "0.21", "a-021")
		if a.Status != http.StatusCreated {
			t.Fatalf("A's single payment: %d %v", a.Status, a.Body)
		}
		b := single(h, keyB, "999.00", "b-999")
		if b.Status != http.StatusConflict || b.Body.str("code") != tpp.EPaymentInProgress || b.Header.Get("Retry-After") == "" {
			t.Fatalf("B's single payment from the same debtor: %d %v", b.Status, b.Body)
		}
		final := h.browserFlow(browsertest.New(t), consentOf(t, a.Body.str("authorize_url")), user.DisplayName, "approve")
		if !strings.Contains(final, "status=executed") {
			t.Fatalf("A's flow ended at %q", final)
		}
		if got := h.balance(user.Accounts[0].ID); got != before-21 {
			t.Fatalf("balance %d, want %d (A's €0.21 only)", got, before-21)
		}
	})
}

// consentOf is the consent id in a /connect/{id} authorize URL.
func consentOf(t *testing.T, authorizeURL string) string {
	t.Helper()
	i := strings.LastIndex(authorizeURL, "/connect/")
	if i < 0 {
		t.Fatalf("authorize_url %q", authorizeURL)
	}
	return authorizeURL[i+len("/connect/"):]
}

// otherAccount is an account of another seeded user, to pay to.
func (h *harness) otherAccount(u banktest.User) banktest.Account {
	h.t.Helper()
	for _, o := range h.Env.Users(h.t) {
		if o.ID != u.ID && len(o.Accounts) > 0 {
			return o.Accounts[0]
		}
	}
	h.t.Fatal("no second user with an account")
	return banktest.Account{}
}

// balance is an account's balance at the bank, in minor units.
func (h *harness) balance(accountID int64) int64 {
	h.t.Helper()
	for _, u := range h.Env.Users(h.t) {
		for _, a := range u.Accounts {
			if a.ID == accountID {
				v, err := tpp.ParseSignedMinor(a.Balance.Value)
				if err != nil {
					h.t.Fatal(err)
				}
				return v
			}
		}
	}
	h.t.Fatalf("no account %d", accountID)
	return 0
}
