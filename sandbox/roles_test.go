package sandbox_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/bunqtpp/tpp/internal/banktest"
)

// connectAs registers a PSP with certificate name cn, has user approve
// its OAuth request and returns the PSP's session and one on the grant.
func connectAs(t *testing.T, env *banktest.Env, cn string, user banktest.User) (psp, grant *tclient) {
	t.Helper()
	const redirect = "https://tpp.example/cb"
	psp, clientID, secret := oauthTPPNamed(t, env, redirect, cn)
	loc, err := url.Parse(env.Authorize(t, banktest.AuthorizeRequest{ClientID: clientID, RedirectURI: redirect, UserID: user.ID}))
	if err != nil {
		t.Fatal(err)
	}
	st, tok := exchange(t, env, false, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {redirect}, "client_id": {clientID}, "client_secret": {secret}})
	if st != 200 {
		t.Fatalf("exchange: %d %+v", st, tok)
	}
	grant = newClient(t, env)
	grant.context(tok.AccessToken)
	return psp, grant
}

// TestPSD2Roles: a PSD2 provider is limited to the roles its certificate
// names (docs/bunq-api.md §4.4, §5.3, §5.4): 403 outside them.
func TestPSD2Roles(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	alice := seeded(t, env, 0)
	main, savings := accountOf(t, alice, "MonetaryAccountBank"), accountOf(t, alice, "MonetaryAccountSavings")
	entry := map[string]any{"amount": map[string]string{"value": "1.00", "currency": "EUR"},
		"counterparty_alias": map[string]string{"type": "IBAN", "value": "NL91ABNA0417164300", "name": "Shop"}, "description": "x"}
	draft := map[string]any{"number_of_required_accepts": 1, "entries": []any{entry}}
	pspDraft := map[string]any{"sender_iban": main.IBAN, "counterparty_iban": "NL91ABNA0417164300", "counterparty_name": "Shop",
		"description": "x", "amount": map[string]string{"value": "1.00", "currency": "EUR"}}
	forbidden := func(r tresp, role, what string) {
		t.Helper()
		if r.status != 403 || !strings.Contains(r.errText(t), role) {
			t.Fatalf("%s: %d %s, want 403 naming %s", what, r.status, r.raw, role)
		}
	}
	ma := func(c *tclient, rest string) string {
		return userPath(c.userID, "/monetary-account/", itoa(main.ID), rest)
	}

	// AISP only: reads, but initiates nothing.
	psp, grant := connectAs(t, env, "Reader AISP", alice)
	forbidden(psp.post(userPath(psp.userID, "/payment-service-provider-draft-payment"), pspDraft, false), "PISP", "AISP creates a PSP draft")
	forbidden(psp.get(userPath(psp.userID, "/payment-service-provider-draft-payment")), "PISP", "AISP lists PSP drafts")
	forbidden(grant.post(ma(grant, "/draft-payment"), draft, true), "PISP", "AISP creates a draft")
	ps := grant.get(ma(grant, "/payment?count=5")).must(t, 200).elems(t)
	if len(ps) != 5 {
		t.Fatalf("AISP reads %d payments", len(ps))
	}
	paymentID := num(ps[0].obj["id"])
	grant.get(ma(grant, "/payment/"+itoa(paymentID))).must(t, 200)

	// PISP only: sees the accounts its drafts need, initiates, reads no history.
	psp, grant = connectAs(t, env, "Payer PISP", alice)
	psp.post(userPath(psp.userID, "/payment-service-provider-draft-payment"), pspDraft, false).must(t, 200)
	grant.get(userPath(grant.userID, "/monetary-account/", itoa(main.ID))).must(t, 200)
	id := num(grant.post(ma(grant, "/draft-payment"), draft, true).must(t, 200).elems(t)[0].obj["id"])
	grant.get(ma(grant, "/draft-payment/"+itoa(id))).must(t, 200)
	forbidden(grant.get(ma(grant, "/payment")), "AISP", "PISP lists payments")
	forbidden(grant.get(ma(grant, "/payment/"+itoa(paymentID))), "AISP", "PISP reads a payment")

	// Both roles: still no direct payment, not even between own accounts.
	_, grant = connectAs(t, env, "Both AISP PISP", alice)
	own := map[string]any{"amount": map[string]string{"value": "1.00", "currency": "EUR"},
		"counterparty_alias": map[string]string{"type": "IBAN", "value": savings.IBAN, "name": alice.DisplayName}, "description": "own"}
	if r := grant.post(ma(grant, "/payment"), own, true); r.status != 403 || !strings.Contains(r.errText(t), "draft payment") {
		t.Fatalf("PSD2 provider's own-account payment: %d %s", r.status, r.raw)
	}
	// The user's own API key is not limited.
	c := newClient(t, env)
	c.context(alice.APIKey)
	c.post(ma(c, "/payment"), own, true).must(t, 200)
}
