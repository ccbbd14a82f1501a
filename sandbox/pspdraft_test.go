package sandbox_test

import (
	"strings"
	"testing"
	"time"

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

// A PSP draft's life on the emulator's clock (bunq-api.md §12.1):
// ACCEPTED becomes COMPLETED once the money moved; an unanswered draft
// becomes EXPIRED, is no longer shown for authorization and cannot be
// accepted.
func TestPSPDraftCompletesAndExpires(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	const redirect = "https://tpp.example/cb"
	psp, clientID, _ := oauthTPP(t, env, redirect)
	alice := seeded(t, env, 0)
	from := accountOf(t, alice, "MonetaryAccountBank").IBAN
	drafts := userPath(psp.userID, "/payment-service-provider-draft-payment")
	status := func(id int64) string {
		t.Helper()
		return psp.get(drafts+"/"+itoa(id)).must(t, 200).elems(t)[0].obj["status"].(string)
	}
	accepted, unanswered := createPSPDraft(t, psp, from, "Paid", "1.00"), createPSPDraft(t, psp, from, "Ignored", "2.00")
	env.AcceptPSPDraftPayment(t, accepted)
	if s := status(accepted); s != "ACCEPTED" {
		t.Fatalf("just accepted: %s", s)
	}
	env.AdvanceClock(t, 61*time.Second)
	if s1, s2 := status(accepted), status(unanswered); s1 != "COMPLETED" || s2 != "PENDING" {
		t.Fatalf("a minute later: %s %s", s1, s2)
	}
	psp.session(psp.secret) // the PSD2 key's second session lasts 90 days
	env.AdvanceClock(t, time.Hour)
	if s := status(unanswered); s != "EXPIRED" {
		t.Fatalf("an hour later: %s", s)
	}
	list := psp.get(drafts).must(t, 200).elems(t)
	seen := map[string]bool{}
	for _, e := range list {
		seen[e.obj["status"].(string)] = true
	}
	if !seen["COMPLETED"] || !seen["EXPIRED"] {
		t.Fatalf("list statuses %v", seen)
	}
	page, form := signIn(t, env, clientID, redirect, "s", alice.ID)
	if strings.Contains(page, "Ignored") || len(form["psp_draft_payment_id"]) != 0 {
		t.Fatalf("an expired draft is shown for authorization:\n%s", page)
	}
}

// bunq does not document echoing a draft entry's merchant_reference: the
// emulator echoes it by default and reads null with the switch off.
func TestMerchantReferenceEchoSwitch(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	alice := seeded(t, env, 0)
	acc := accountOf(t, alice, "MonetaryAccountBank")
	_, grant := connectAs(t, env, "Test TPP AISP PISP", alice)
	drafts := userPath(grant.userID, "/monetary-account/", itoa(acc.ID), "/draft-payment")
	id := num(grant.post(drafts, map[string]any{"number_of_required_accepts": 1, "entries": []map[string]any{{
		"amount":             map[string]string{"value": "2.00", "currency": "EUR"},
		"counterparty_alias": map[string]string{"type": "IBAN", "value": "NL91ABNA0417164300", "name": "Shop"},
		"description":        "Ref", "merchant_reference": "pay_123"}}}, true).must(t, 200).elems(t)[0].obj["id"])
	ref := func() any {
		t.Helper()
		e := grant.get(drafts+"/"+itoa(id)).must(t, 200).elems(t)[0].obj["entries"].([]any)[0].(map[string]any)
		v, ok := e["merchant_reference"]
		if !ok {
			t.Fatal("entry without a merchant_reference field")
		}
		return v
	}
	if v := ref(); v != "pay_123" {
		t.Fatalf("echo on: %v", v)
	}
	env.SetMerchantReferenceEcho(t, false)
	if v := ref(); v != nil {
		t.Fatalf("echo off: %v, want null", v)
	}
}
