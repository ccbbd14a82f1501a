package oauth

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/bunqtpp/tpp"
)

func TestFullFlowActivatesConsent(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id, au := h.createConsent("accounts", "funds")
	if au != h.srv.URL+"/connect/"+id {
		t.Fatalf("authorize_url %q", au)
	}
	b := h.newBrowser()
	p, _ := b.open(au)
	for _, want := range []string{"Acme Budget", "see your accounts, balances and transactions",
		"check whether you have enough money for an amount", "Continue to bunq", "Cancel"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	if strings.Contains(p.body, "prepare payments") {
		t.Error("consent page shows a scope that was not asked")
	}
	// Chromium applies form-action to the redirect after a POST: both
	// bunq (Continue) and the fintech (Cancel) must be allowed.
	csp := p.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "form-action 'self' "+h.env.OAuthURL+" https://app.example") || strings.Contains(csp, "script-src") {
		t.Errorf("CSP %q", csp)
	}
	authURL := b.toBank(au)
	q := authURL.Query()
	if authURL.String()[:len(h.env.OAuthURL)] != h.env.OAuthURL || q.Get("response_type") != "code" ||
		q.Get("client_id") != h.bank.ClientID || q.Get("redirect_uri") != h.srv.URL+CallbackPath || len(q.Get("state")) < 22 {
		t.Fatalf("authorize URL %s", authURL)
	}
	cb := h.decide(authURL, "approve")
	res := b.get(cb)
	if res.status != http.StatusSeeOther {
		t.Fatalf("callback: %d %s", res.status, res.body)
	}
	back, _ := url.Parse(res.location)
	if back.Host != "app.example" || back.Query().Get("consent_id") != id || back.Query().Get("status") != "active" {
		t.Fatalf("return redirect %s", res.location)
	}
	st, out := h.call("GET", "/v1/consents/"+id, nil)
	if st != 200 || out["status"] != "active" || out["authorized_at"] == nil || out["reauth_due_at"] == nil {
		t.Fatalf("get consent: %d %v", st, out)
	}
	bu, _ := out["bank_user"].(map[string]any)
	if bu == nil || bu["display_name"] == "" || bu["display_name"] == nil {
		t.Fatalf("bank_user %v", out["bank_user"])
	}
	c := h.consent(id)
	if c.BunqUserName != bu["display_name"] || c.BunqUserID == 0 || !c.HasToken {
		t.Fatalf("stored consent %+v", c)
	}
	// The context works and is stored in Redis.
	bc, err := h.provider.Get(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if bc.UserID() == 0 {
		t.Fatal("context has no user")
	}
	if h.rebuilds.get() != 0 {
		t.Fatalf("context was rebuilt %d times right after creation", h.rebuilds.get())
	}
	_ = tpp.ConsentActive
}

func TestCreateConsentValidation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	cases := []struct {
		name string
		body any
		code string
	}{
		{"return url not registered", map[string]any{"user_ref": "u", "scopes": []string{"accounts"}, "return_url": "https://app.example/bunq/return/"}, "invalid_return_url"},
		{"return url other host", map[string]any{"user_ref": "u", "scopes": []string{"accounts"}, "return_url": "https://evil.example/bunq/return"}, "invalid_return_url"},
		{"return url missing", map[string]any{"user_ref": "u", "scopes": []string{"accounts"}}, "invalid_return_url"},
		{"bad scope", map[string]any{"user_ref": "u", "scopes": []string{"accounts", "everything"}, "return_url": returnURL0}, "invalid_scope"},
		{"no scopes", map[string]any{"user_ref": "u", "scopes": []string{}, "return_url": returnURL0}, "invalid_scope"},
		{"unknown field", map[string]any{"user_ref": "u", "scopes": []string{"accounts"}, "return_url": returnURL0, "admin": true}, "invalid_request"},
		{"no user_ref", map[string]any{"scopes": []string{"accounts"}, "return_url": returnURL0}, "invalid_request"},
		{"user_ref with right-to-left override", map[string]any{"user_ref": "user\u202E1", "scopes": []string{"accounts"}, "return_url": returnURL0}, "invalid_request"},
		{"user_ref with zero-width joiner", map[string]any{"user_ref": "us\u200Der", "scopes": []string{"accounts"}, "return_url": returnURL0}, "invalid_request"},
		{"long user_ref", map[string]any{"user_ref": strings.Repeat("x", 129), "scopes": []string{"accounts"}, "return_url": returnURL0}, "invalid_request"},
	}
	for _, tc := range cases {
		st, out := h.call("POST", "/v1/consents", tc.body)
		if st != 400 || out["code"] != tc.code {
			t.Errorf("%s: %d %v, want 400 %s", tc.name, st, out, tc.code)
		}
	}
	// A registered URL with a query works, and the outcome is merged into it.
	st, out := h.call("POST", "/v1/consents", map[string]any{"user_ref": "u", "scopes": []string{"payments", "accounts", "payments"}, "return_url": "http://localhost:9999/back?x=1"})
	if st != 201 || out["status"] != "pending" || out["expires_at"] == nil {
		t.Fatalf("create: %d %v", st, out)
	}
	if sc := out["scopes"].([]any); len(sc) != 2 || sc[0] != "accounts" || sc[1] != "payments" {
		t.Fatalf("scopes %v", sc)
	}
	b := h.newBrowser()
	_, tok := b.open(out["authorize_url"].(string))
	p := b.post(out["authorize_url"].(string)+"/cancel", url.Values{"csrf_token": {tok}})
	back, _ := url.Parse(p.location)
	if back.Query().Get("x") != "1" || back.Query().Get("status") != "rejected" || back.Query().Get("error") != "cancelled" {
		t.Fatalf("cancel redirect %q", p.location)
	}
	// Unauthenticated calls are refused.
	req, _ := http.NewRequest("GET", h.srv.URL+"/v1/consents", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Fatalf("no key: %d", res.StatusCode)
	}
}

func TestOtherClientsConsentIsNotFound(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id, _ := h.createConsent()
	other, secrets, err := h.clients.CreateClient(context.Background(), tpp.NewClient{Name: "Other", ReturnURLs: []string{returnURL0}})
	if err != nil {
		t.Fatal(err)
	}
	_ = other
	mine := h.apiKey
	h.apiKey = secrets.APIKey
	st1, p1 := h.call("GET", "/v1/consents/"+id, nil)
	st2, p2 := h.call("GET", "/v1/consents/con_doesnotexist", nil)
	st3, p3 := h.call("DELETE", "/v1/consents/"+id, nil)
	h.apiKey = mine
	if st1 != 404 || p1["code"] != "consent_not_found" || st2 != 404 || p2["code"] != "consent_not_found" || st3 != 404 || p3["code"] != "consent_not_found" {
		t.Fatalf("other client: %d %v / unknown: %d %v / delete: %d %v", st1, p1, st2, p2, st3, p3)
	}
	if p1["detail"] != strings.ReplaceAll(p2["detail"].(string), "con_doesnotexist", id) {
		t.Errorf("details differ: %q vs %q", p1["detail"], p2["detail"])
	}
	if h.consent(id).Status != tpp.ConsentPending {
		t.Fatal("another client changed the consent")
	}
}

func TestListConsentsPaged(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var ids []string
	for i := range 5 {
		ref := "alice"
		if i%2 == 1 {
			ref = "bob"
		}
		st, out := h.call("POST", "/v1/consents", map[string]any{"user_ref": ref, "scopes": []string{"accounts"}, "return_url": returnURL0})
		if st != 201 {
			t.Fatal(out)
		}
		ids = append(ids, out["id"].(string))
		h.clock.Advance(1e6)
	}
	// The paging rule of every list: 1 to 100, in the same words.
	for _, l := range []string{"0", "101", "x"} {
		if st, out := h.call("GET", "/v1/consents?limit="+l, nil); st != 400 || out["detail"] != "limit must be a whole number from 1 to 100" {
			t.Fatalf("limit=%s: %d %v", l, st, out)
		}
	}
	var got []string
	cursor := ""
	for range 10 {
		path := "/v1/consents?user_ref=alice&limit=2"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		st, out := h.call("GET", path, nil)
		if st != 200 {
			t.Fatalf("list: %d %v", st, out)
		}
		for _, it := range out["data"].([]any) {
			got = append(got, it.(map[string]any)["id"].(string))
		}
		nc, _ := out["next_cursor"].(string)
		if nc == "" {
			break
		}
		cursor = nc
	}
	want := []string{ids[4], ids[2], ids[0]} // alice's, newest first
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("paged ids %v, want %v", got, want)
	}
	if st, out := h.call("GET", "/v1/consents?cursor=garbage", nil); st != 400 || out["code"] != "invalid_cursor" {
		t.Fatalf("bad cursor: %d %v", st, out)
	}
}

func TestDenyAtBank(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id, au := h.createConsent()
	b := h.newBrowser()
	cb := h.decide(b.toBank(au), "deny")
	p := b.get(cb)
	back, _ := url.Parse(p.location)
	if p.status != http.StatusSeeOther || back.Query().Get("status") != "rejected" || back.Query().Get("error") != "access_denied" || back.Query().Get("consent_id") != id {
		t.Fatalf("deny: %d %s", p.status, p.location)
	}
	st, out := h.call("GET", "/v1/consents/"+id, nil)
	if st != 200 || out["status"] != "rejected" || out["error"] != "access_denied" || out["bank_user"] != nil {
		t.Fatalf("consent after deny: %v", out)
	}
	if tr := h.trail(id); strings.Join(tr, ";") != "pending>rejected psu" {
		t.Fatalf("audit %v", tr)
	}
	// The consent page now explains instead of offering the buttons again.
	pg := b.get(au)
	if pg.status != http.StatusGone || !strings.Contains(pg.body, "declined") || strings.Contains(pg.body, "csrf_token") {
		t.Fatalf("page after deny: %d %s", pg.status, pg.body)
	}
}

func TestCancelOnOurPage(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id, au := h.createConsent()
	b := h.newBrowser()
	_, tok := b.open(au)
	p := b.post(au+"/cancel", url.Values{"csrf_token": {tok}})
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, returnURL0+"?") || !strings.Contains(p.location, "status=rejected") || !strings.Contains(p.location, "error=cancelled") {
		t.Fatalf("cancel: %d %s", p.status, p.location)
	}
	if c := h.consent(id); c.Status != tpp.ConsentRejected || c.ErrorCode != "cancelled" {
		t.Fatalf("consent %+v", c)
	}
	if h.events(id) < 1 {
		t.Fatal("no consent.updated event")
	}
}

func TestCSRFRequired(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id, au := h.createConsent()
	b := h.newBrowser()
	_, tok := b.open(au)
	for name, form := range map[string]url.Values{
		"missing": {},
		"wrong":   {"csrf_token": {tok + "x"}},
	} {
		for _, action := range []string{"/continue", "/cancel"} {
			p := b.post(au+action, form)
			if p.status != http.StatusForbidden || !strings.Contains(p.body, "Please start again") {
				t.Errorf("%s %s: %d", name, action, p.status)
			}
		}
	}
	// A valid token from one consent page does not work for another consent.
	_, au2 := h.createConsent()
	if p := b.post(au2+"/continue", url.Values{"csrf_token": {tok}}); p.status != http.StatusForbidden {
		t.Errorf("token of another consent: %d", p.status)
	}
	// Another browser (no CSRF cookie) with a stolen token fails too.
	if p := h.newBrowser().post(au+"/continue", url.Values{"csrf_token": {tok}}); p.status != http.StatusForbidden {
		t.Errorf("other browser: %d", p.status)
	}
	if h.consent(id).Status != tpp.ConsentPending {
		t.Fatal("consent changed")
	}
}

func TestReplayedCallbackChangesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id, au := h.createConsent()
	b := h.newBrowser()
	cb := h.decide(b.toBank(au), "approve")
	if p := b.get(cb); !strings.Contains(p.location, "status=active") {
		t.Fatalf("first callback %d %s", p.status, p.location)
	}
	before := h.consent(id)
	trail, events := h.trail(id), h.events(id)
	p := b.get(cb)
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "already been used or has expired") {
		t.Fatalf("replay: %d %s", p.status, p.body)
	}
	after := h.consent(id)
	if after.Status != tpp.ConsentActive || !after.UpdatedAt.Equal(before.UpdatedAt) || len(h.trail(id)) != len(trail) || h.events(id) != events {
		t.Fatal("replayed callback changed the consent")
	}
}

func TestStateFromAnotherBrowser(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id, au := h.createConsent()
	victim := h.newBrowser()
	cb := h.decide(victim.toBank(au), "approve")
	// The attacker's browser has no cookie for this state...
	p := h.newBrowser().get(cb)
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "browser where you started") {
		t.Fatalf("foreign browser: %d %s", p.status, p.body)
	}
	// ...or its own cookie from its own flow.
	id2, au2 := h.createConsent()
	attacker := h.newBrowser()
	attacker.toBank(au2)
	cb3 := h.decide(h.newBrowser().toBank(au2), "approve")
	if p := attacker.get(cb3); p.status != http.StatusBadRequest {
		t.Fatalf("other cookie: %d", p.status)
	}
	for _, c := range []string{id, id2} {
		if got := h.consent(c); got.Status != tpp.ConsentPending || len(h.trail(c)) != 0 {
			t.Fatalf("consent %s changed: %s %v", c, got.Status, h.trail(c))
		}
	}
	// The foreign tries did not burn the victim's state (issue 10): the
	// browser that started the flow still finishes it.
	if p := victim.get(cb); p.status != http.StatusSeeOther || !strings.Contains(p.location, "status=active") {
		t.Fatalf("victim's callback after foreign tries: %d %s\n%s", p.status, p.location, p.body)
	}
}

func TestExpiredState(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id, au := h.createConsent()
	b := h.newBrowser()
	cb := h.decide(b.toBank(au), "approve")
	h.clock.Advance(11 * 60 * 1e9)
	p := b.get(cb)
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "has expired") {
		t.Fatalf("expired state: %d %s", p.status, p.body)
	}
	if c := h.consent(id); c.Status != tpp.ConsentPending {
		t.Fatalf("consent %s", c.Status)
	}
}

func TestExpiredConsentPage(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id, au := h.createConsent()
	h.clock.Advance(16 * 60 * 1e9)
	p := h.newBrowser().get(au)
	if p.status != http.StatusGone || !strings.Contains(p.body, "expired") || !strings.Contains(p.body, "Return to Acme Budget") {
		t.Fatalf("expired page: %d %s", p.status, p.body)
	}
	if c := h.consent(id); c.Status != tpp.ConsentExpired {
		t.Fatalf("status %s", c.Status)
	}
	if tr := h.trail(id); strings.Join(tr, ";") != "pending>expired system" {
		t.Fatalf("audit %v", tr)
	}
	if p := h.newBrowser().get(h.srv.URL + "/connect/con_unknown"); p.status != 404 || !strings.Contains(p.body, "does not work") {
		t.Fatalf("unknown consent page: %d", p.status)
	}
}
