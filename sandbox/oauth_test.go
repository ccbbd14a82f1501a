package sandbox_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bunqtpp/tpp/internal/banktest"
)

// oauthTPP registers a PSP with an OAuth client and one callback URL.
func oauthTPP(t testing.TB, env *banktest.Env, redirect string) (psp *tclient, clientID, secret string) {
	t.Helper()
	return oauthTPPNamed(t, env, redirect, "Test TPP AISP PISP")
}

// oauthTPPNamed is oauthTPP with a certificate name, which gives the roles.
func oauthTPPNamed(t testing.TB, env *banktest.Env, redirect, cn string) (psp *tclient, clientID, secret string) {
	t.Helper()
	psp = registerPSP(t, env, cn)
	id := num(psp.post(userPath(psp.userID, "/oauth-client"), map[string]string{"status": "ACTIVE"}, false).must(t, 200).elems(t)[0].obj["id"])
	if r := psp.post(userPath(psp.userID, "/oauth-client"), nil, false); r.status != 400 {
		t.Fatalf("second OAuth client: %d", r.status)
	}
	psp.post(userPath(psp.userID, "/oauth-client/", itoa(id), "/callback-url"), map[string]string{"url": redirect}, false).must(t, 200)
	oc := psp.get(userPath(psp.userID, "/oauth-client/", itoa(id))).must(t, 200).elems(t)[0].obj
	clientID, secret = oc["client_id"].(string), oc["secret"].(string)
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
	if !hex64.MatchString(clientID) || !hex64.MatchString(secret) {
		t.Fatalf("client credentials %q %q", clientID, secret)
	}
	if cbs := oc["callback_url"].([]any); len(cbs) != 1 || cbs[0].(map[string]any)["url"] != redirect {
		t.Fatalf("callback_url %v", oc["callback_url"])
	}
	return psp, clientID, secret
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

var pspDraftField = regexp.MustCompile(`name="psp_draft_payment_id" value="(\d+)"`)

// browse plays the browser on the /auth page: GET, pick the user, decide.
func browse(t testing.TB, env *banktest.Env, clientID, redirect, state string, userID int64, decision string) (consentPage, location string) {
	t.Helper()
	page, form := signIn(t, env, clientID, redirect, state, userID)
	return page, decide(t, env, form, decision)
}

// signIn opens /auth and picks the user; it returns the consent page and
// its decision form's fields, as a browser would submit them.
func signIn(t testing.TB, env *banktest.Env, clientID, redirect, state string, userID int64) (string, url.Values) {
	t.Helper()
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect}, "state": {state}}
	resp, err := noRedirect.Get(env.OAuthURL + "/auth?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), `name="user_id" value="`+itoa(userID)+`"`) {
		t.Fatalf("sign-in page %d: %s", resp.StatusCode, page)
	}
	form := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect}, "state": {state}, "user_id": {itoa(userID)}}
	resp, err = noRedirect.PostForm(env.OAuthURL+"/auth", form)
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "Test TPP B.V.") || !strings.Contains(string(page), `value="approve"`) {
		t.Fatalf("consent page %d: %s", resp.StatusCode, page)
	}
	for _, m := range pspDraftField.FindAllStringSubmatch(string(page), -1) {
		form.Add("psp_draft_payment_id", m[1])
	}
	return string(page), form
}

// decide submits the consent page's form and returns the redirect.
func decide(t testing.TB, env *banktest.Env, form url.Values, decision string) string {
	t.Helper()
	form.Set("decision", decision)
	resp, err := noRedirect.PostForm(env.OAuthURL+"/auth", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("decision answered %d", resp.StatusCode)
	}
	return resp.Header.Get("Location")
}

type tokenAnswer struct {
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	State            string `json:"state"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

func exchange(t testing.TB, env *banktest.Env, asForm bool, params url.Values) (int, tokenAnswer) {
	t.Helper()
	var resp *http.Response
	var err error
	if asForm {
		resp, err = http.PostForm(env.TokenURL+"/v1/token", params)
	} else {
		resp, err = http.Post(env.TokenURL+"/v1/token?"+params.Encode(), "", nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a tokenAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, a
}

func TestOAuthFlow(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	const redirect = "https://tpp.example/cb"
	_, clientID, secret := oauthTPP(t, env, redirect)
	alice, bob := seeded(t, env, 0), seeded(t, env, 1)

	// Unknown client and unregistered redirect: an error page, no redirect.
	for _, q := range []url.Values{
		{"response_type": {"code"}, "client_id": {"nope"}, "redirect_uri": {redirect}},
		{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect + "/other"}},
	} {
		resp, err := noRedirect.Get(env.OAuthURL + "/auth?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
			t.Fatalf("bad auth request answered %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	// Denied.
	_, loc := browse(t, env, clientID, redirect, "s-deny", alice.ID, "deny")
	if loc != redirect+"?error=access_denied&state=s-deny" {
		t.Fatalf("deny redirect %q", loc)
	}
	// Approved.
	_, loc = browse(t, env, clientID, redirect, "s1", alice.ID, "approve")
	u, _ := url.Parse(loc)
	code := u.Query().Get("code")
	if !strings.HasPrefix(loc, redirect+"?") || u.Query().Get("state") != "s1" || code == "" {
		t.Fatalf("approve redirect %q", loc)
	}
	params := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "client_id": {clientID}, "client_secret": {secret}}
	bad := url.Values{}
	for k, v := range params {
		bad[k] = v
	}
	bad.Set("client_secret", strings.Repeat("0", 64))
	if st, a := exchange(t, env, false, bad); st != 400 || a.Error != "invalid_client" {
		t.Fatalf("wrong secret: %d %+v", st, a)
	}
	bad.Set("client_secret", secret)
	bad.Set("redirect_uri", redirect+"/x")
	if st, a := exchange(t, env, false, bad); st != 400 || a.Error != "invalid_grant" {
		t.Fatalf("wrong redirect_uri: %d %+v", st, a)
	}
	st, tok := exchange(t, env, false, params) // query string, empty body (SDK style)
	if st != 200 || tok.TokenType != "bearer" || tok.State != "s1" || len(tok.AccessToken) != 64 {
		t.Fatalf("exchange: %d %+v", st, tok)
	}
	if st, a := exchange(t, env, false, params); st != 400 || a.Error != "invalid_grant" {
		t.Fatalf("reused code: %d %+v", st, a)
	}
	// Form body works too (newer docs), through the control endpoint.
	loc = env.Authorize(t, banktest.AuthorizeRequest{ClientID: clientID, RedirectURI: redirect, State: "s2", UserID: bob.ID})
	u, _ = url.Parse(loc)
	params.Set("code", u.Query().Get("code"))
	if st, a := exchange(t, env, true, params); st != 200 || a.State != "s2" {
		t.Fatalf("form exchange: %d %+v", st, a)
	}
	// HTTP Basic client authentication, as golang.org/x/oauth2 sends it.
	loc = env.Authorize(t, banktest.AuthorizeRequest{ClientID: clientID, RedirectURI: redirect, UserID: bob.ID})
	u, _ = url.Parse(loc)
	form := url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "redirect_uri": {redirect}}
	req, _ := http.NewRequest("POST", env.TokenURL+"/v1/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("basic auth exchange: %d", resp.StatusCode)
	}
	// Codes expire after 10 minutes.
	loc = env.Authorize(t, banktest.AuthorizeRequest{ClientID: clientID, RedirectURI: redirect, UserID: bob.ID})
	u, _ = url.Parse(loc)
	params.Set("code", u.Query().Get("code"))
	env.AdvanceClock(t, 601*time.Second)
	if st, a := exchange(t, env, false, params); st != 400 || a.Error != "invalid_grant" {
		t.Fatalf("expired code: %d %+v", st, a)
	}

	// The access token is an API key; the session is a UserApiKey that sees only alice.
	c := newClient(t, env)
	c.context(tok.AccessToken)
	if c.userType != "UserApiKey" {
		t.Fatalf("session user %s", c.userType)
	}
	if _, ok := c.user["requested_by_user"].(map[string]any)["UserPaymentServiceProvider"]; !ok {
		t.Fatalf("requested_by_user %v", c.user["requested_by_user"])
	}
	if g := c.user["granted_by_user"].(map[string]any)["UserPerson"].(map[string]any); num(g["id"]) != alice.ID {
		t.Fatalf("granted_by_user %v", g)
	}
	if es := c.get("/v1/user").must(t, 200).elems(t); es[0].typ != "UserApiKey" {
		t.Fatalf("GET /user in OAuth session: %s", es[0].typ)
	}
	accts := c.get(userPath(c.userID, "/monetary-account")).must(t, 200).elems(t)
	if len(accts) != len(alice.Accounts) {
		t.Fatalf("OAuth session sees %d accounts, alice has %d", len(accts), len(alice.Accounts))
	}
	if r := c.get(userPath(c.userID, "/monetary-account/", itoa(accountOf(t, bob, "MonetaryAccountBank").ID))); r.status != 404 {
		t.Fatalf("bob's account via alice's grant: %d", r.status)
	}
	if r := c.get(userPath(alice.ID, "/monetary-account")); r.status != 404 {
		t.Fatalf("alice's own user id in an OAuth session: %d", r.status)
	}
}

// receiver records callbacks; the first `fail` deliveries get a 500.
type receiver struct {
	mu   sync.Mutex
	fail int
	got  []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.fail > 0 {
		rc.fail--
		w.WriteHeader(500)
		return
	}
	rc.got = append(rc.got, string(b))
}

func (rc *receiver) wait(t testing.TB, n int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		rc.mu.Lock()
		got := append([]string(nil), rc.got...)
		rc.mu.Unlock()
		if len(got) >= n {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("waited for %d callbacks", n)
	return nil
}

func TestGrantRevocation(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	rc := &receiver{fail: 1}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	const redirect = "http://localhost/cb"
	psp, clientID, secret := oauthTPP(t, env, redirect)
	psp.post(userPath(psp.userID, "/notification-filter-url"), map[string]any{"notification_filters": []map[string]string{
		{"category": "OAUTH", "notification_target": hook.URL + "/oauth"},
		{"category": "DRAFT_PAYMENT", "notification_target": hook.URL + "/draft"}}}, false).must(t, 200)
	if es := psp.get(userPath(psp.userID, "/notification-filter-url")).must(t, 200).elems(t); len(es) != 2 {
		t.Fatalf("filters %v", es)
	}
	alice := seeded(t, env, 0)
	loc := env.Authorize(t, banktest.AuthorizeRequest{ClientID: clientID, RedirectURI: redirect, UserID: alice.ID})
	u, _ := url.Parse(loc)
	_, tok := exchange(t, env, false, url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")},
		"redirect_uri": {redirect}, "client_id": {clientID}, "client_secret": {secret}})
	c := newClient(t, env)
	c.context(tok.AccessToken)
	c.get(userPath(c.userID, "/monetary-account")).must(t, 200)

	env.RevokeGrant(t, alice.ID, clientID)
	// The first delivery fails; bunq retries one minute later (emulator clock).
	waitCallbacks(t, env, 1)
	env.AdvanceClock(t, time.Minute)
	if r := c.get(userPath(c.userID, "/monetary-account")); r.status != 403 {
		t.Fatalf("after revoke: %d", r.status)
	}
	if r := c.call("POST", "/v1/session-server", map[string]string{"secret": tok.AccessToken}, c.instToken, "auto"); r.status != 400 {
		t.Fatalf("re-session with revoked token: %d", r.status)
	}
	got := rc.wait(t, 1)
	var cb struct {
		NotificationUrl struct {
			TargetURL string         `json:"target_url"`
			Category  string         `json:"category"`
			EventType string         `json:"event_type"`
			Object    map[string]any `json:"object"`
		}
	}
	if err := json.Unmarshal([]byte(got[0]), &cb); err != nil || cb.NotificationUrl.Category != "OAUTH" || cb.NotificationUrl.TargetURL != hook.URL+"/oauth" {
		t.Fatalf("callback %s (%v)", got[0], err)
	}
	// The emulator records an attempt after the receiver has answered it.
	attempts := waitCallbacks(t, env, 2)
	if len(attempts) != 2 || attempts[0].Status != 500 || attempts[1].Status != 200 || attempts[1].Attempt != 2 {
		t.Fatalf("delivery attempts %+v", attempts)
	}
}

// createPSPDraft has psp create a PSP draft payment to a web shop.
func createPSPDraft(t testing.TB, psp *tclient, sender, desc, value string) int64 {
	t.Helper()
	return num(psp.post(userPath(psp.userID, "/payment-service-provider-draft-payment"), map[string]any{
		"sender_iban": sender, "counterparty_iban": "NL91ABNA0417164300", "counterparty_name": "Web Shop B.V.",
		"description": desc, "amount": map[string]string{"value": value, "currency": "EUR"}}, false).must(t, 200).elems(t)[0].obj["id"])
}

func TestPSPDraftPayment(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	const redirect = "https://tpp.example/cb"
	psp, clientID, _ := oauthTPP(t, env, redirect)
	alice, carol := seeded(t, env, 0), seeded(t, env, 2)
	from := accountOf(t, alice, "MonetaryAccountBank")
	mk := func(sender, value string) int64 { return createPSPDraft(t, psp, sender, "Order 17", value) }
	get := func(id int64) map[string]any {
		t.Helper()
		es := psp.get(userPath(psp.userID, "/payment-service-provider-draft-payment/", itoa(id))).must(t, 200).elems(t)
		if es[0].typ != "PaymentServiceProviderDraftPayment" {
			t.Fatalf("element %s", es[0].typ)
		}
		return es[0].obj
	}
	// Approved together with the authorization on /auth.
	d1 := mk(from.IBAN, "7.50")
	page, _ := browse(t, env, clientID, redirect, "x", alice.ID, "approve")
	if !strings.Contains(page, "Order 17") || !strings.Contains(page, "7.50") {
		t.Fatalf("consent page does not show the payment: %s", page)
	}
	if o := get(d1); o["status"] != "ACCEPTED" || o["sender_iban"] != from.IBAN || o["receiver_iban"] != "NL91ABNA0417164300" {
		t.Fatalf("after approval %v", o)
	}
	if got := accountOf(t, env.Users(t)[0], "MonetaryAccountBank").Balance.Value; got != minus(t, from.Balance.Value, 750) {
		t.Fatalf("balance %s", got)
	}
	// Via control.
	d2 := mk(accountOf(t, carol, "MonetaryAccountBank").IBAN, "1.00")
	env.AcceptPSPDraftPayment(t, d2)
	if o := get(d2); o["status"] != "ACCEPTED" {
		t.Fatalf("control accept %v", o)
	}
	// Cancelled by the PSP; ACCEPTED cannot be set by update.
	d3 := mk(from.IBAN, "1.00")
	if r := psp.call("PUT", userPath(psp.userID, "/payment-service-provider-draft-payment/", itoa(d3)), map[string]string{"status": "ACCEPTED"}, psp.sessToken, ""); r.status != 400 {
		t.Fatalf("PUT ACCEPTED: %d", r.status)
	}
	psp.call("PUT", userPath(psp.userID, "/payment-service-provider-draft-payment/", itoa(d3)), map[string]string{"status": "CANCELLED"}, psp.sessToken, "").must(t, 200)
	if o := get(d3); o["status"] != "CANCELLED" {
		t.Fatalf("cancelled %v", o)
	}
	if n := len(psp.get(userPath(psp.userID, "/payment-service-provider-draft-payment")).must(t, 200).elems(t)); n != 3 {
		t.Fatalf("list has %d", n)
	}
}

func TestAppPage(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	carol, bob := seeded(t, env, 2), seeded(t, env, 1)
	c := newClient(t, env)
	c.context(carol.APIKey)
	acc := accountOf(t, carol, "MonetaryAccountBank")
	drafts := userPath(c.userID, "/monetary-account/", itoa(acc.ID), "/draft-payment")
	id := num(c.post(drafts, map[string]any{"number_of_required_accepts": 1, "entries": []map[string]any{{
		"amount":             map[string]string{"value": "3.00", "currency": "EUR"},
		"counterparty_alias": map[string]string{"type": "EMAIL", "value": bob.Email},
		"description":        "Via the app"}}}, true).must(t, 200).elems(t)[0].obj["id"])
	resp, err := http.Get(env.OAuthURL + "/app?user_id=" + itoa(carol.ID))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	action := "/app/draft-payments/" + itoa(id) + "/accept"
	if !strings.Contains(string(page), "Via the app") || !strings.Contains(string(page), action) {
		t.Fatalf("app page: %s", page)
	}
	resp, err = http.PostForm(env.OAuthURL+action, url.Values{"user_id": {itoa(carol.ID)}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "Payment accepted.") {
		t.Fatalf("after accept: %s", page)
	}
	if s := c.get(drafts+"/"+itoa(id)).must(t, 200).elems(t)[0].obj["status"]; s != "ACCEPTED" {
		t.Fatalf("status %v", s)
	}
}

func TestDraftPaymentCallbacks(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	var mu sync.Mutex
	var got []string
	var sigOK []bool
	c := newClient(t, env)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.URL.Path+" "+string(b))
		// bunq documents no callback signature: unsigned by default.
		sigOK = append(sigOK, r.Header.Get("X-Bunq-Server-Signature") == "")
		mu.Unlock()
	}))
	defer hook.Close()
	carol, bob := seeded(t, env, 2), seeded(t, env, 1)
	c.context(carol.APIKey)
	acc := accountOf(t, carol, "MonetaryAccountBank")
	c.post(userPath(c.userID, "/notification-filter-url"), map[string]any{"notification_filters": []map[string]string{
		{"category": "DRAFT_PAYMENT", "notification_target": hook.URL + "/user"}}}, false).must(t, 200)
	ma := userPath(c.userID, "/monetary-account/", itoa(acc.ID))
	c.post(ma+"/notification-filter-url", map[string]any{"notification_filters": []map[string]string{
		{"category": "DRAFT_PAYMENT", "notification_target": hook.URL + "/account"}}}, false).must(t, 200)
	if es := c.get(ma+"/notification-filter-url").must(t, 200).elems(t); len(es) != 1 || es[0].typ != "NotificationFilterUrl" {
		t.Fatalf("account filters %v", es)
	}
	id := num(c.post(ma+"/draft-payment", map[string]any{"number_of_required_accepts": 1, "entries": []map[string]any{{
		"amount":             map[string]string{"value": "1.00", "currency": "EUR"},
		"counterparty_alias": map[string]string{"type": "EMAIL", "value": bob.Email},
		"description":        "cb"}}}, true).must(t, 200).elems(t)[0].obj["id"])
	env.RejectDraftPayment(t, id)
	var events []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 4 {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i, g := range got {
		path, body, _ := strings.Cut(g, " ")
		var cb struct {
			NotificationUrl struct {
				Category  string                    `json:"category"`
				EventType string                    `json:"event_type"`
				Object    map[string]map[string]any `json:"object"`
			}
		}
		if err := json.Unmarshal([]byte(body), &cb); err != nil || !sigOK[i] {
			t.Fatalf("callback %s (sig ok %v, %v)", body, sigOK[i], err)
		}
		if cb.NotificationUrl.Category != "DRAFT_PAYMENT" || num(cb.NotificationUrl.Object["DraftPayment"]["id"]) != id {
			t.Fatalf("callback %s", body)
		}
		events = append(events, path+" "+cb.NotificationUrl.EventType)
	}
	want := map[string]bool{"/user DRAFT_PAYMENT_CREATED": true, "/account DRAFT_PAYMENT_CREATED": true,
		"/user DRAFT_PAYMENT_REJECTED": true, "/account DRAFT_PAYMENT_REJECTED": true}
	if len(events) != 4 {
		t.Fatalf("events %v", events)
	}
	for _, e := range events {
		if !want[e] {
			t.Fatalf("unexpected event %q in %v", e, events)
		}
	}
}

// TestPSPDraftAuthorizationActsOnItsDraft: an authorization request acts on
// the one PSP draft payment it shows, never on the user's other pending
// drafts, including one made while the page was open.
// bunq shows all of the PSP's pending drafts for the user on any of its
// authorization pages and decides them together (bunq-api.md §12.5).
func TestPSPDraftAuthorizationShowsAllPending(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	const redirect = "https://tpp.example/cb"
	psp, clientID, _ := oauthTPP(t, env, redirect)
	alice, bob := seeded(t, env, 0), seeded(t, env, 1)
	from := accountOf(t, alice, "MonetaryAccountBank")
	drafts := userPath(psp.userID, "/payment-service-provider-draft-payment")
	mk := func(desc, value string) int64 { return createPSPDraft(t, psp, from.IBAN, desc, value) }
	status := func(id int64) string {
		t.Helper()
		return psp.get(drafts+"/"+itoa(id)).must(t, 200).elems(t)[0].obj["status"].(string)
	}
	balance := func() string {
		t.Helper()
		return accountOf(t, env.Users(t)[0], "MonetaryAccountBank").Balance.Value
	}
	before := balance()

	// Two pending drafts: the page shows both and names both in its form.
	first, second := mk("Order 1", "3.00"), mk("Order 2", "4.00")
	page, form := signIn(t, env, clientID, redirect, "s1", alice.ID)
	if !strings.Contains(page, "Order 2") || !strings.Contains(page, "Order 1") ||
		strings.Join(form["psp_draft_payment_id"], ",") != itoa(first)+","+itoa(second) {
		t.Fatalf("consent page for drafts %q:\n%s", form["psp_draft_payment_id"], page)
	}
	third := mk("Order 3", "5.00") // made while the page is open: not shown, not decided
	if loc := decide(t, env, form, "approve"); !strings.Contains(loc, "code=") {
		t.Fatalf("approve redirect %q", loc)
	}
	if s1, s2, s3 := status(first), status(second), status(third); s1 != "ACCEPTED" || s2 != "ACCEPTED" || s3 != "PENDING" {
		t.Fatalf("after approving the page of drafts 1 and 2: %s %s %s", s1, s2, s3)
	}
	if got := balance(); got != minus(t, before, 700) {
		t.Fatalf("balance %s, want %s less 7.00", got, before)
	}

	// Denying rejects what the page showed.
	fourth := mk("Order 4", "1.00")
	_, form = signIn(t, env, clientID, redirect, "s2", alice.ID)
	if strings.Join(form["psp_draft_payment_id"], ",") != itoa(third)+","+itoa(fourth) {
		t.Fatalf("page for drafts %q", form["psp_draft_payment_id"])
	}
	decide(t, env, form, "deny")
	if s3, s4 := status(third), status(fourth); s3 != "REJECTED" || s4 != "REJECTED" {
		t.Fatalf("after denying: %s %s", s3, s4)
	}

	// A form naming a draft that does not debit the signed-in user is refused.
	fifth := mk("Order 5", "1.00")
	_, form = signIn(t, env, clientID, redirect, "s3", bob.ID)
	form.Set("psp_draft_payment_id", itoa(fifth))
	form.Set("decision", "approve")
	resp, err := noRedirect.PostForm(env.OAuthURL+"/auth", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || status(fifth) != "PENDING" {
		t.Fatalf("bob approving alice's draft: %d, draft %s", resp.StatusCode, status(fifth))
	}

	// Without a page (the control endpoint) the same: every pending draft.
	sixth := mk("Order 6", "1.00")
	env.Authorize(t, banktest.AuthorizeRequest{ClientID: clientID, RedirectURI: redirect, UserID: alice.ID})
	if s5, s6 := status(fifth), status(sixth); s5 != "ACCEPTED" || s6 != "ACCEPTED" {
		t.Fatalf("after control approval: %s %s", s5, s6)
	}
	first = mk("Order 7", "1.00")

	// In the app, only a holder of the debited account may answer.
	app := env.OAuthURL + "/app/psp-draft-payments/" + itoa(first) + "/accept"
	for _, who := range []string{"", itoa(bob.ID)} {
		resp, err := noRedirect.PostForm(app, url.Values{"user_id": {who}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 4 || status(first) != "PENDING" {
			t.Fatalf("app accept as %q: %d, draft %s", who, resp.StatusCode, status(first))
		}
	}
	resp, err = noRedirect.PostForm(app, url.Values{"user_id": {itoa(alice.ID)}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || status(first) != "ACCEPTED" {
		t.Fatalf("app accept as alice: %d, draft %s", resp.StatusCode, status(first))
	}
}

// A code is bound to the flow it was issued in (bunq-api.md §4.3, RFC 6749
// §5.2 invalid_grant): the answer names the state it was issued with, never
// one the caller sends, and another client or redirect_uri is refused.
func TestTokenCodeBoundToItsFlow(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	const redirect, otherRedirect = "https://tpp.example/cb", "https://other.example/cb"
	_, clientID, secret := oauthTPP(t, env, redirect)
	_, otherID, otherSecret := oauthTPPNamed(t, env, otherRedirect, "Other TPP AISP")
	alice := seeded(t, env, 0)
	codeFor := func(state string) string {
		loc := env.Authorize(t, banktest.AuthorizeRequest{ClientID: clientID, RedirectURI: redirect, State: state, UserID: alice.ID})
		u, _ := url.Parse(loc)
		return u.Query().Get("code")
	}
	code := codeFor("victim-state")
	params := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "client_id": {clientID}, "client_secret": {secret}}
	foreign := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {otherRedirect}, "client_id": {otherID}, "client_secret": {otherSecret}}
	if st, a := exchange(t, env, false, foreign); st != 400 || a.Error != "invalid_grant" || a.AccessToken != "" {
		t.Fatalf("another client's exchange: %d %+v, want invalid_grant", st, a)
	}
	foreign.Set("redirect_uri", redirect)
	if st, a := exchange(t, env, false, foreign); st != 400 || a.Error != "invalid_grant" {
		t.Fatalf("another client with the right redirect_uri: %d %+v, want invalid_grant", st, a)
	}
	// The caller's own state is ignored: the answer names the code's.
	params.Set("state", "attacker-state")
	if st, a := exchange(t, env, false, params); st != 200 || a.State != "victim-state" {
		t.Fatalf("exchange with a state parameter: %d %+v, want state victim-state", st, a)
	}
	if st, a := exchange(t, env, false, params); st != 400 || a.Error != "invalid_grant" {
		t.Fatalf("used code: %d %+v", st, a)
	}
	// The switch for older answers leaves state out.
	env.SetTokenState(t, false)
	params.Set("code", codeFor("s3"))
	if st, a := exchange(t, env, false, params); st != 200 || a.State != "" || a.AccessToken == "" {
		t.Fatalf("exchange with token-state off: %d %+v", st, a)
	}
}

// waitCallbacks waits until the bank has recorded at least n delivery
// attempts and returns them.
func waitCallbacks(t testing.TB, env *banktest.Env, n int) []banktest.Callback {
	t.Helper()
	var got []banktest.Callback
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got = env.Callbacks(t); len(got) >= n {
			return got
		}
	}
	t.Fatalf("waited for %d callback attempts, have %d", n, len(got))
	return nil
}
