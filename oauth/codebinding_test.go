package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/redis"
)

// refusals returns the consent's audit records of refused authorizations.
func (h *harness) refusals(id string) []tpp.AuditRecord {
	h.t.Helper()
	recs, err := h.audit.ListAudit(context.Background(), tpp.AuditFilter{ConsentID: id}, 0, 100)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []tpp.AuditRecord
	for _, r := range recs {
		if r.Action == tpp.AuditConsentAuthRefused {
			out = append(out, r)
		}
	}
	return out
}

// codeOf is the code in a callback URL.
func codeOf(t *testing.T, callback string) string {
	t.Helper()
	u, err := url.Parse(callback)
	if err != nil || u.Query().Get("code") == "" {
		t.Fatalf("callback %q has no code", callback)
	}
	return u.Query().Get("code")
}

// Issue 10 item 1: fintech B's user (the attacker) obtains the unused code
// of fintech A's user (a leaked redirect) and presents it in B's own flow,
// with B's own state and cookie. The attacker's consent must not become
// active on the victim's bank account, nothing may be stored for it, and
// the victim's own callback must still finish.
func TestCodeRedeemableOnlyInItsOwnFlow(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, attackerKey := h.stack.NewClient("Evil Fintech", returnURL0)

	victimID, victimAuth := h.createConsent("accounts")
	victim := h.newBrowser()
	victimCallback := h.decide(victim.toBank(victimAuth), "approve")
	stolenCode := codeOf(t, victimCallback)

	st, out := h.callAs(attackerKey, "POST", "/v1/consents", map[string]any{"user_ref": "mallory", "scopes": []string{"accounts"}, "return_url": returnURL0})
	if st != http.StatusCreated {
		t.Fatalf("attacker's consent: %d %v", st, out)
	}
	attackerID := out["id"].(string)
	attacker := h.newBrowser()
	attackerState := attacker.toBank(out["authorize_url"].(string)).Query().Get("state")

	p := attacker.get(h.srv.URL + CallbackPath + "?" + url.Values{"state": {attackerState}, "code": {stolenCode}}.Encode())
	if p.status != http.StatusBadRequest || p.location != "" || !strings.Contains(p.body, "belongs to another request") {
		t.Fatalf("attacker's callback with the victim's code: %d → %q\n%s", p.status, p.location, p.body)
	}
	ac := h.consent(attackerID)
	if ac.Status != tpp.ConsentPending || ac.BunqUserID != 0 || ac.AuthorizedAt != nil {
		t.Fatalf("attacker's consent after the attack = %s (bunq user %d), want pending with no bank user", ac.Status, ac.BunqUserID)
	}
	if tok, err := h.consents.AccessToken(context.Background(), attackerID); err == nil && tok != "" {
		t.Fatal("an access token was stored for the attacker's consent")
	}
	store, err := redis.NewContextStore(h.rdb, h.stack.Keys, h.keyring, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Get(context.Background(), attackerID); !errors.Is(err, tpp.ErrNotFound) {
		t.Fatalf("bank context of the attacker's consent: %v, want none stored", err)
	}
	if rs := h.refusals(attackerID); len(rs) != 1 || !strings.Contains(rs[0].Detail, "another flow") {
		t.Fatalf("audit of the refusal = %+v, want one record saying why", rs)
	}

	// The victim's own callback still succeeds.
	p = victim.get(victimCallback)
	if p.status != http.StatusSeeOther || !strings.Contains(p.location, "status=active") || !strings.Contains(p.location, victimID) {
		t.Fatalf("victim's callback after the attack: %d → %q\n%s", p.status, p.location, p.body)
	}
	if vc := h.consent(victimID); vc.Status != tpp.ConsentActive || vc.BunqUserID == 0 {
		t.Fatalf("victim's consent = %s (bunq user %d), want active", vc.Status, vc.BunqUserID)
	}
	if h.consent(attackerID).Status != tpp.ConsentPending {
		t.Fatal("the attacker's consent moved after the victim finished")
	}
}

// A token answer without state (an older bunq answer) is refused unless
// the operator accepts such answers.
func TestTokenAnswerWithoutState(t *testing.T) {
	t.Parallel()
	for _, accept := range []bool{false, true} {
		name := map[bool]string{false: "refused by default", true: "accepted when configured"}[accept]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHarnessWith(t, nil, nil, func(_ *harness, c *Config) { c.AcceptTokenWithoutState = accept })
			h.env.SetTokenState(t, false)
			id, au := h.createConsent("accounts")
			b := h.newBrowser()
			p := b.get(h.decide(b.toBank(au), "approve"))
			c := h.consent(id)
			if accept {
				if p.status != http.StatusSeeOther || c.Status != tpp.ConsentActive {
					t.Fatalf("callback: %d → %q; consent %s, want active", p.status, p.location, c.Status)
				}
				return
			}
			if p.status != http.StatusBadGateway || !strings.Contains(p.body, "did not say which request") || c.Status != tpp.ConsentPending || c.BunqUserID != 0 {
				t.Fatalf("callback: %d → %q; consent %s\n%s", p.status, p.location, c.Status, p.body)
			}
			if rs := h.refusals(id); len(rs) != 1 || !strings.Contains(rs[0].Detail, "without state") {
				t.Fatalf("audit = %+v", rs)
			}
		})
	}
}
