package sandbox_test

import (
	"strings"
	"testing"

	"github.com/bunqtpp/tpp/internal/banktest"
)

// The user approves draft payments in the bunq app, never the TPP: a grant
// session that sets a draft to ACCEPTED gets 403, signed or not, and the
// draft stays pending (bunq-api.md §12.6). The user's own answer works.
func TestGrantCannotAcceptDraftPayment(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	alice := seeded(t, env, 0)
	acc := accountOf(t, alice, "MonetaryAccountBank")
	_, grant := connectAs(t, env, "Test TPP AISP PISP", alice)
	drafts := userPath(grant.userID, "/monetary-account/", itoa(acc.ID), "/draft-payment")
	id := num(grant.post(drafts, map[string]any{"number_of_required_accepts": 1, "entries": []map[string]any{{
		"amount":             map[string]string{"value": "2.00", "currency": "EUR"},
		"counterparty_alias": map[string]string{"type": "IBAN", "value": "NL91ABNA0417164300", "name": "Shop"},
		"description":        "TPP tries to accept"}}}, true).must(t, 200).elems(t)[0].obj["id"])
	for _, sig := range []string{"", "auto"} {
		r := grant.call("PUT", drafts+"/"+itoa(id), map[string]string{"status": "ACCEPTED"}, grant.sessToken, sig)
		if r.status != 403 || !strings.Contains(r.errText(t), "bunq app") {
			t.Fatalf("grant accepting a draft (signature %q): %d %s", sig, r.status, r.raw)
		}
	}
	if s := grant.get(drafts+"/"+itoa(id)).must(t, 200).elems(t)[0].obj["status"]; s != "PENDING" {
		t.Fatalf("draft after the grant's attempts: %v", s)
	}
	// The grant may still withdraw its own draft.
	grant.call("PUT", drafts+"/"+itoa(id), map[string]string{"status": "CANCELLED"}, grant.sessToken, "").must(t, 200)
}

// A PSP draft payment's sender must be a bunq IBAN: 400 at creation
// (bunq-api.md §12.5), checked with the emulator's own IBAN code.
func TestPSPDraftSenderMustBeBunq(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	psp, _, _ := oauthTPP(t, env, "https://tpp.example/cb")
	path := userPath(psp.userID, "/payment-service-provider-draft-payment")
	body := func(sender string) map[string]any {
		return map[string]any{"sender_iban": sender, "counterparty_iban": "NL91ABNA0417164300", "counterparty_name": "Shop",
			"description": "x", "amount": map[string]string{"value": "1.00", "currency": "EUR"}}
	}
	for sender, want := range map[string]string{
		"NL91ABNA0417164300":     "bunq account",
		"DE89370400440532013000": "bunq account",
		"NL00BUNQ0000000000":     "not a valid IBAN",
	} {
		r := psp.post(path, body(sender), false)
		if r.status != 400 || !strings.Contains(r.errText(t), want) {
			t.Errorf("sender %s: %d %s", sender, r.status, r.raw)
		}
	}
	alice := seeded(t, env, 0)
	iban := accountOf(t, alice, "MonetaryAccountBank").IBAN
	psp.post(path, body(strings.ToLower(iban[:4])+" "+iban[4:]), false).must(t, 200)
}
