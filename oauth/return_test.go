package oauth

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/pisp"
	"github.com/bunqtpp/tpp/sqlite"
)

var returnLinkRe = regexp.MustCompile(`<a class="button primary" href="([^"]*)"[^>]*>Return to ([^<]*)</a>`)

// returnLink is the error page's way back to the fintech: the parsed link
// and the name it shows, or nil when the page offers none.
func returnLink(t *testing.T, p page) (*url.URL, string) {
	t.Helper()
	m := returnLinkRe.FindStringSubmatch(p.body)
	if m == nil {
		if strings.Contains(p.body, "Return to") {
			t.Fatalf("page has a return text but no recognisable link:\n%s", p.body)
		}
		return nil, ""
	}
	u, err := url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatalf("return link %q: %v", m[1], err)
	}
	return u, html.UnescapeString(m[2])
}

// wantReturn checks that an error page links back to returnURL0 with
// exactly the query want.
func wantReturn(t *testing.T, name string, p page, want url.Values) {
	t.Helper()
	u, client := returnLink(t, p)
	if u == nil {
		t.Fatalf("%s: %d page without a return link:\n%s", name, p.status, p.body)
	}
	if base := u.Scheme + "://" + u.Host + u.Path; base != returnURL0 || client != "Acme Budget" {
		t.Errorf("%s: link to %s named %q", name, u, client)
	}
	if got := u.Query(); got.Encode() != want.Encode() {
		t.Errorf("%s: link query %q, want %q", name, got.Encode(), want.Encode())
	}
}

// wantNoReturn checks that a page names neither the consent nor where the
// fintech lives, and says what to do instead.
func wantNoReturn(t *testing.T, name string, p page, consentID, advice string) {
	t.Helper()
	if u, _ := returnLink(t, p); u != nil {
		t.Errorf("%s: page links to %s", name, u)
	}
	if (consentID != "" && strings.Contains(p.body, consentID)) || strings.Contains(p.body, "app.example") {
		t.Errorf("%s: page leaks the consent or its return URL:\n%s", name, p.body)
	}
	if !strings.Contains(p.body, advice) {
		t.Errorf("%s: page lacks the advice %q:\n%s", name, advice, p.body)
	}
}

// Every page about a consent whose outcome is final or unchanged leads
// back to the fintech with that outcome; the link changes nothing.
func TestErrorPagesReturnToTheFintech(t *testing.T) {
	t.Parallel()
	h := newHarness(t)

	// Expired: the consent page says so and reports expired.
	id, au := h.createConsent()
	h.clock.Advance(16 * time.Minute)
	wantReturn(t, "expired consent", h.newBrowser().get(au), url.Values{"consent_id": {id}, "status": {"expired"}})

	// Declined at bunq, then the page is opened again.
	id, au = h.createConsent()
	b := h.newBrowser()
	b.get(h.decide(b.toBank(au), "deny"))
	wantReturn(t, "declined", b.get(au), url.Values{"consent_id": {id}, "status": {"rejected"}, "error": {"access_denied"}})

	// Approved, then the page is opened again.
	id, au = h.createConsent()
	b = h.newBrowser()
	b.get(h.decide(b.toBank(au), "approve"))
	p := b.get(au)
	if p.status != http.StatusConflict {
		t.Fatalf("page of an active consent: %d", p.status)
	}
	wantReturn(t, "active", p, url.Values{"consent_id": {id}, "status": {"active"}})

	// A bad CSRF token: the consent is pending and stays so.
	id, au = h.createConsent()
	b = h.newBrowser()
	b.open(au)
	p = b.post(au+"/continue", url.Values{"csrf_token": {"forged"}})
	if p.status != http.StatusForbidden {
		t.Fatalf("forged token: %d", p.status)
	}
	wantReturn(t, "csrf", p, url.Values{"consent_id": {id}, "status": {"pending"}})
	// Following the link is only a GET to the fintech: nothing here moved.
	if c := h.consent(id); c.Status != tpp.ConsentPending || len(h.trail(id)) != 0 {
		t.Fatalf("consent after the CSRF page: %s %v", c.Status, h.trail(id))
	}

	// The state outlived its 10 minutes in the browser that started it.
	id, au = h.createConsent()
	b = h.newBrowser()
	cb := h.decide(b.toBank(au), "approve")
	h.clock.Advance(11 * time.Minute)
	p = b.get(cb)
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "has expired") {
		t.Fatalf("expired state: %d", p.status)
	}
	wantReturn(t, "expired state", p, url.Values{"consent_id": {id}, "status": {"pending"}})

	// The callback finds the consent already finished (approved in another
	// tab of the same browser): its own outcome, with the app's name.
	id, au = h.createConsent()
	b = h.newBrowser()
	first := h.decide(b.toBank(au), "approve")
	second := h.decide(b.toBank(au), "approve")
	if p := b.get(first); !strings.Contains(p.location, "status=active") {
		t.Fatalf("first callback: %d %s", p.status, p.location)
	}
	p = b.get(second)
	if p.status != http.StatusConflict {
		t.Fatalf("second callback: %d %s", p.status, p.body)
	}
	wantReturn(t, "callback of a finished consent", p, url.Values{"consent_id": {id}, "status": {"active"}})
}

// Pages that cannot tell whose flow it is offer no way back and name no
// consent: a state from another browser may be an attacker's replay of a
// victim's redirect, and the consent id would let it authorize the
// victim's consent with its own bank account.
func TestErrorPagesWithoutReturn(t *testing.T) {
	t.Parallel()
	h := newHarness(t)

	id, au := h.createConsent()
	owner := h.newBrowser()
	cb := h.decide(owner.toBank(au), "approve")
	p := h.newBrowser().get(cb)
	if p.status != http.StatusBadRequest {
		t.Fatalf("foreign browser: %d", p.status)
	}
	wantNoReturn(t, "foreign browser", p, id, "start again in this browser")
	if c := h.consent(id); c.Status != tpp.ConsentPending {
		t.Fatalf("consent after a foreign callback %s", c.Status)
	}
	// The foreign try left the state to its browser, which finishes.
	if p := owner.get(cb); p.status != http.StatusSeeOther || !strings.Contains(p.location, "status=active") {
		t.Fatalf("owner's callback after a foreign one: %d %s", p.status, p.location)
	}

	// The same state again: now unknown.
	wantNoReturn(t, "used state", h.newBrowser().get(cb), id, "start the connection again")
	wantNoReturn(t, "no state", h.newBrowser().get(h.srv.URL+CallbackPath+"?code=x"), "", "start the connection again")
	wantNoReturn(t, "unknown consent", h.newBrowser().get(h.srv.URL+"/connect/con_unknown"), "", "start again")

	// A revoked client's app is not linked to: the operator may have cut
	// it off for what lies behind its URL.
	_, au = h.createConsent()
	if _, err := h.clients.RevokeClient(context.Background(), h.client.ID); err != nil {
		t.Fatal(err)
	}
	p = h.newBrowser().get(au)
	if p.status != http.StatusGone {
		t.Fatalf("revoked client: %d", p.status)
	}
	wantNoReturn(t, "revoked client", p, "", "support if you think")
}

// single is a single payment as pisp makes it: a hidden consent and a
// pending payment under it.
// debtors are valid IBANs: one unfinished single payment per debtor.
var debtors = []string{"NL91ABNA0417164300", "NL02ABNA0123456789", "NL20INGB0001234567", "NL39RABO0300065264",
	"GB82WEST12345698765432", "FR1420041010050500013M02606", "BE68539007547034"}

func (h *harness) single(t *testing.T) (*tpp.Consent, *tpp.Payment) {
	t.Helper()
	ctx := context.Background()
	c, err := h.consents.CreateConsent(ctx, tpp.NewConsent{
		ClientID: h.client.ID, UserRef: pisp.SinglePaymentUserRef, Scopes: []tpp.Scope{tpp.ScopePayments},
		ReturnURL: returnURL0, Actor: tpp.ActorClient(h.client.ID),
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := sqlite.NewPaymentService(h.db).CreatePayment(ctx, tpp.NewPayment{
		ConsentID: c.ID, ClientID: h.client.ID, Kind: tpp.PaymentSingle, AmountMinor: 2500, Currency: "EUR",
		DebtorIBAN: debtors[h.singles.Add(1)%int64(len(debtors))], DebtorName: "Emma Visser", CounterpartyIBAN: "DE89370400440532013000",
		CounterpartyName: "Bakkerij", Description: "Order 1043", ReturnURL: returnURL0,
		Actor: tpp.ActorClient(h.client.ID),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, p
}

// A single payment's consent is the payment's: the consents API neither
// lists nor shows nor revokes it, exactly as if it did not exist, and a
// fintech cannot make one.
func TestSinglePaymentConsentIsHidden(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	visible, _ := h.createConsent()
	hidden, _ := h.single(t)

	for _, path := range []string{"/v1/consents", "/v1/consents?user_ref=" + url.QueryEscape(pisp.SinglePaymentUserRef)} {
		st, out := h.call("GET", path, nil)
		if st != 200 {
			t.Fatalf("%s: %d %v", path, st, out)
		}
		var ids []string
		for _, it := range out["data"].([]any) {
			ids = append(ids, it.(map[string]any)["id"].(string))
		}
		want := ""
		if !strings.Contains(path, "user_ref") {
			want = visible
		}
		if strings.Join(ids, ",") != want {
			t.Errorf("%s lists %v, want [%s]", path, ids, want)
		}
	}
	st1, p1 := h.call("GET", "/v1/consents/"+hidden.ID, nil)
	st2, p2 := h.call("GET", "/v1/consents/con_doesnotexist", nil)
	st3, p3 := h.call("DELETE", "/v1/consents/"+hidden.ID, nil)
	if st1 != 404 || p1["code"] != "consent_not_found" || st2 != 404 || st3 != 404 || p3["code"] != "consent_not_found" {
		t.Fatalf("hidden: %d %v / unknown: %d %v / delete: %d %v", st1, p1, st2, p2, st3, p3)
	}
	if p1["detail"] != strings.ReplaceAll(p2["detail"].(string), "con_doesnotexist", hidden.ID) {
		t.Errorf("details differ: %q vs %q", p1["detail"], p2["detail"])
	}
	if c := h.consent(hidden.ID); c.Status != tpp.ConsentPending || len(h.trail(hidden.ID)) != 0 {
		t.Fatalf("hidden consent changed: %s %v", c.Status, h.trail(hidden.ID))
	}
	for _, ref := range []string{pisp.SinglePaymentUserRef, tpp.InternalUserRefPrefix + "mine"} {
		st, out := h.call("POST", "/v1/consents", map[string]any{"user_ref": ref, "scopes": []string{"payments"}, "return_url": returnURL0})
		if st != 400 || out["code"] != "invalid_request" || !strings.Contains(out["detail"].(string), "reserved") {
			t.Errorf("user_ref %q: %d %v", ref, st, out)
		}
	}
}

// The browser of a single payment returns with the payment's id and
// status, never the hidden consent's id, whether it goes through the
// redirect or an error page's link.
func TestSinglePaymentReturn(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	au := func(c *tpp.Consent) string { return h.svc.AuthorizeURL(c.ID) }
	query := func(t *testing.T, name, loc string) url.Values {
		t.Helper()
		u, err := url.Parse(loc)
		if err != nil || u.Scheme+"://"+u.Host+u.Path != returnURL0 {
			t.Fatalf("%s: redirect to %q", name, loc)
		}
		return u.Query()
	}

	// Approved at bunq: the payment waits for bunq's confirmation.
	c, p := h.single(t)
	b := h.newBrowser()
	res := b.get(h.decide(b.toBank(au(c)), "approve"))
	if res.status != http.StatusSeeOther {
		t.Fatalf("approve: %d %s", res.status, res.body)
	}
	want := url.Values{"payment_id": {p.ID}, "status": {"pending"}}
	if got := query(t, "approve", res.location); got.Encode() != want.Encode() {
		t.Errorf("approve: %q, want %q", got.Encode(), want.Encode())
	}
	// Once the payment is final, the page of its consent says so.
	if _, err := sqlite.NewPaymentService(h.db).TransitionPayment(context.Background(), tpp.PaymentTransition{
		ID: p.ID, To: tpp.PaymentExecuted, Actor: tpp.ActorBank,
	}); err != nil {
		t.Fatal(err)
	}
	pg := b.get(au(c))
	if !strings.Contains(pg.body, "You already approved this payment") {
		t.Errorf("page of an approved payment:\n%s", pg.body)
	}
	wantReturn(t, "executed", pg, url.Values{"payment_id": {p.ID}, "status": {"executed"}})

	// Declined at bunq.
	c, p = h.single(t)
	b = h.newBrowser()
	res = b.get(h.decide(b.toBank(au(c)), "deny"))
	want = url.Values{"payment_id": {p.ID}, "status": {"rejected"}, "error": {"access_denied"}}
	if got := query(t, "deny", res.location); got.Encode() != want.Encode() {
		t.Errorf("deny: %q, want %q", got.Encode(), want.Encode())
	}
	pg = b.get(au(c))
	if !strings.Contains(pg.body, "This payment was declined") {
		t.Errorf("page of a declined payment:\n%s", pg.body)
	}
	wantReturn(t, "declined", pg, want)

	// Cancelled on our page.
	c, p = h.single(t)
	b = h.newBrowser()
	_, tok := b.open(au(c))
	res = b.post(au(c)+"/cancel", url.Values{"csrf_token": {tok}})
	want = url.Values{"payment_id": {p.ID}, "status": {"rejected"}, "error": {"cancelled"}}
	if got := query(t, "cancel", res.location); got.Encode() != want.Encode() {
		t.Errorf("cancel: %q, want %q", got.Encode(), want.Encode())
	}

	// Never authorized in time.
	c, p = h.single(t)
	h.clock.Advance(16 * time.Minute)
	pg = h.newBrowser().get(au(c))
	if pg.status != http.StatusGone || !strings.Contains(pg.body, "This payment request has expired") {
		t.Errorf("page of an expired payment: %d\n%s", pg.status, pg.body)
	}
	wantReturn(t, "expired", pg, url.Values{"payment_id": {p.ID}, "status": {"failed"}, "error": {tpp.EConsentExpired}})
	if strings.Contains(pg.body, c.ID) {
		t.Error("the page names the hidden consent")
	}
}

// Regression (issue 10 item 6): a consent's return_url must be exactly one
// of the client's registered URLs; each near variant is refused with
// invalid_return_url and creates nothing.
func TestReturnURLVariantsRefusedAtConsentCreation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const reg = returnURL0 // https://app.example/bunq/return
	for _, u := range []string{
		"https://app.example:443/bunq/return",          // default port spelled out
		"https://app.example:8443/bunq/return",         // another port
		"http://app.example/bunq/return",               // scheme
		"HTTPS://app.example/bunq/return",              // scheme case
		"https://APP.example/bunq/return",              // host case
		"https://app.example/Bunq/Return",              // path case
		"https://app.example/bunq/return?x=1",          // added query
		"https://app.example/bunq/return?",             // empty query
		"https://app.example/bunq/return/",             // trailing slash
		"https://app.example/bunq/return#x",            // fragment
		"//evil.example/bunq/return",                   // scheme-relative
		"https://app.example//evil.example/",           // double slash path
		"https://app.example\\@evil.example/",          // backslash
		"https:\\\\evil.example\\bunq\\return",         // backslashes
		"https://app.example%2F%2Fevil.example/",       // encoded slashes in the host
		"https://app.example/bunq%2Freturn",            // encoded slash in the path
		"https://app.example/bunq/./return",            // dot segment
		"https://app.example/bunq/x/../return",         // dot-dot segment
		"https://app.example@evil.example/bunq/return", // userinfo
		"https://evil.example/bunq/return",             // other host
		"https://app.example.evil.example/bunq/return", // suffix host
		" https://app.example/bunq/return",             // leading space
		"https://app.example/bunq/return ",             // trailing space
	} {
		st, out := h.call("POST", "/v1/consents", map[string]any{"user_ref": "u-1", "scopes": []string{"accounts"}, "return_url": u})
		if st != http.StatusBadRequest || out["code"] != tpp.EInvalidReturnURL {
			t.Errorf("return_url %q: %d %v, want 400 %s", u, st, out, tpp.EInvalidReturnURL)
		}
	}
	st, out := h.call("GET", "/v1/consents", nil)
	if st != http.StatusOK || len(out["data"].([]any)) != 0 {
		t.Fatalf("consents after refused creations: %d %v", st, out)
	}
	if st, _ := h.call("POST", "/v1/consents", map[string]any{"user_ref": "u-1", "scopes": []string{"accounts"}, "return_url": reg}); st != http.StatusCreated {
		t.Fatalf("the registered URL itself: %d", st)
	}
}
