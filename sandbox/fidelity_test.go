package sandbox_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bunqtpp/tpp/internal/banktest"
)

// Tests of the bunq behaviours of issue 12 (docs/ARCHITECTURE.md, Fidelity).

// TestDeviceIsBoundToItsIP: a device made without permitted_ips is bound
// to the IP it was created from; a session from another IP is refused with
// bunq's "User credentials are incorrect" text; "*" allows any IP.
func TestDeviceIsBoundToItsIP(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	u := seeded(t, env, 0)
	c := newClient(t, env)
	c.install()
	c.call("POST", "/v1/device-server", map[string]any{"description": "bound", "secret": u.APIKey}, c.instToken, "").must(t, 200)
	c.session(u.APIKey)

	env.SetClientIP(t, "198.51.100.20")
	r := c.call("POST", "/v1/session-server", map[string]string{"secret": u.APIKey}, c.instToken, "auto")
	if r.status != 400 || r.errText(t) != "User credentials are incorrect. Incorrect API key or IP address." {
		t.Fatalf("session from another IP: %d %s", r.status, r.raw)
	}
	// A wildcard device works from anywhere.
	w := newClient(t, env)
	w.context(u.APIKey) // permitted_ips ["*"]
	env.SetClientIP(t, "")
	w.session(u.APIKey)
	// Back on the original IP the bound device works again.
	c.session(u.APIKey)
}

// TestClientIPControlRefusesBadInput: the apparent-IP control (loopback
// callers only) refuses what is not an address.
func TestClientIPControlRefusesBadInput(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	req, _ := http.NewRequest(http.MethodPut, env.APIURL+"/_sandbox/client-ip", strings.NewReader(`{"ip":"not an ip"}`))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 400 {
		t.Fatalf("bad ip: %d", res.StatusCode)
	}
}

// TestRateLimitsPerInstallationOption: with the option, each installation
// has its own budget even from one IP.
func TestRateLimitsPerInstallationOption(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t, banktest.WithRateLimitsPerInstallation())
	u := seeded(t, env, 2)
	c, d := newClient(t, env), newClient(t, env)
	c.context(u.APIKey)
	d.context(u.APIKey) // a second session-server from the same IP: allowed
	for i := 0; i < 3; i++ {
		c.get(userPath(c.userID, "/monetary-account")).must(t, 200)
	}
	d.get(userPath(d.userID, "/monetary-account")).must(t, 200)
}

// TestCallbacksUnsignedRetriedOnClock: callbacks carry no signature unless
// signing is switched on; a failed one is tried 6 times, one minute apart
// on the emulator's clock.
func TestCallbacksUnsignedRetriedOnClock(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	var mu sync.Mutex
	var sigs []string
	var bodies [][]byte
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		sigs = append(sigs, r.Header.Get("X-Bunq-Server-Signature"))
		bodies = append(bodies, b)
		mu.Unlock()
		w.WriteHeader(503)
	}))
	defer hook.Close()
	u := seeded(t, env, 1)
	c := newClient(t, env)
	c.context(u.APIKey)
	c.post(userPath(c.userID, "/notification-filter-url"), map[string]any{"notification_filters": []map[string]string{
		{"category": "DRAFT_PAYMENT", "notification_target": hook.URL}}}, false).must(t, 200)
	acc := accountOf(t, u, "MonetaryAccountBank")
	createDraft := func() {
		c.post(userPath(c.userID, "/monetary-account/", itoa(acc.ID), "/draft-payment"), map[string]any{"number_of_required_accepts": 1, "entries": []map[string]any{{
			"amount": map[string]string{"value": "1.00", "currency": "EUR"}, "description": "cb",
			"counterparty_alias": map[string]string{"type": "IBAN", "value": "NL91ABNA0417164300", "name": "Shop"}}}}, true).must(t, 200)
	}
	createDraft()
	waitCallbacks(t, env, 1)
	time.Sleep(300 * time.Millisecond) // longer than a retry's clock poll: no retry without the clock moving
	if n := len(env.Callbacks(t)); n != 1 {
		t.Fatalf("%d attempts before the clock moved, want 1", n)
	}
	for i := 2; i <= 6; i++ {
		env.AdvanceClock(t, time.Minute)
		waitCallbacks(t, env, i)
	}
	env.AdvanceClock(t, time.Hour)
	time.Sleep(300 * time.Millisecond)
	got := env.Callbacks(t)
	if len(got) != 6 || got[5].Attempt != 6 {
		t.Fatalf("attempts %+v, want 6", got)
	}
	mu.Lock()
	for _, s := range sigs {
		if s != "" {
			t.Fatalf("a callback was signed by default: %q", s)
		}
	}
	mu.Unlock()

	env.SetCallbackSigning(t, true)
	createDraft()
	waitCallbacks(t, env, 7)
	mu.Lock()
	defer mu.Unlock()
	last := len(sigs) - 1
	if err := verifyServer(c.serverKey, bodies[last], sigs[last]); err != nil {
		t.Fatalf("signed callback: %v", err)
	}
}

// TestNotificationFilterRules: https targets only (plain http only for
// loopback hosts) and at most 2 URLs per category.
func TestNotificationFilterRules(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	u := seeded(t, env, 0)
	c := newClient(t, env)
	c.context(u.APIKey)
	set := func(targets ...string) tresp {
		var fs []map[string]string
		for _, tg := range targets {
			fs = append(fs, map[string]string{"category": "OAUTH", "notification_target": tg})
		}
		return c.post(userPath(c.userID, "/notification-filter-url"), map[string]any{"notification_filters": fs}, false)
	}
	if r := set("http://tpp.example/cb"); r.status != 400 {
		t.Fatalf("http target: %d %s", r.status, r.raw)
	}
	if r := set("https://a.example/cb", "https://b.example/cb", "https://c.example/cb"); r.status != 400 {
		t.Fatalf("3 URLs in one category: %d %s", r.status, r.raw)
	}
	set("https://a.example/cb", "http://127.0.0.1:1/cb").must(t, 200)
}

// TestConfirmationOfFundsNoCapAndShapes: bunq documents no upper limit; a
// large amount is "not sufficient", not a 400. The "id" switch answers the
// OpenAPI document's {"Id": {"id"}} instead.
func TestConfirmationOfFundsNoCapAndShapes(t *testing.T) {
	t.Parallel()
	for _, shape := range []string{"", "id"} {
		env := banktest.Start(t, banktest.WithFundsAnswer(shape))
		u := seeded(t, env, 0)
		acc := accountOf(t, u, "MonetaryAccountBank")
		c := newClient(t, env)
		c.context(u.APIKey)
		r := c.post(userPath(c.userID, "/confirmation-of-funds"), map[string]any{
			"pointer_iban": map[string]string{"type": "IBAN", "value": acc.IBAN, "name": u.DisplayName},
			"amount":       map[string]string{"value": "10000000.00", "currency": "EUR"}}, false).must(t, 200)
		es := r.elems(t)
		switch shape {
		case "":
			if len(es) != 1 || es[0].typ != "ConfirmationOfFunds" || es[0].obj["has_sufficient_funds"] != false {
				t.Fatalf("answer %s", r.raw)
			}
		case "id":
			if len(es) != 1 || es[0].typ != "Id" || num(es[0].obj["id"]) == 0 {
				t.Fatalf("answer %s", r.raw)
			}
		}
	}
}

// TestStrictMode: strict mode (on in tests) refuses a missing mandatory
// header and a request id used twice by one installation; a lenient bank
// accepts both, as bunq does in practice.
func TestStrictMode(t *testing.T) {
	t.Parallel()
	for _, strict := range []bool{true, false} {
		var opts []banktest.Option
		if !strict {
			opts = append(opts, banktest.WithLenient())
		}
		env := banktest.Start(t, opts...)
		send := func(drop, id string) int {
			req, _ := http.NewRequest(http.MethodPost, env.APIURL+"/v1/sandbox-user-person", nil)
			for h, v := range map[string]string{"User-Agent": "t", "Cache-Control": "no-cache", "X-Bunq-Geolocation": "0 0 0 0 000",
				"X-Bunq-Language": "en_US", "X-Bunq-Region": "nl_NL", "X-Bunq-Client-Request-Id": id} {
				if h == drop {
					v = "" // Go's client then sends no User-Agent at all
				}
				req.Header.Set(h, v)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			return res.StatusCode
		}
		want := 400
		if !strict {
			want = 200
		}
		for i, h := range []string{"User-Agent", "Cache-Control", "X-Bunq-Geolocation", "X-Bunq-Language", "X-Bunq-Region", "X-Bunq-Client-Request-Id"} {
			if got := send(h, "id-"+itoa(int64(i))); got != want {
				t.Fatalf("strict=%v without %s: %d, want %d", strict, h, got, want)
			}
		}
		if got := send("", "same"); got != 200 {
			t.Fatalf("strict=%v first use of an id: %d", strict, got)
		}
		if got := send("", "same"); got != want {
			t.Fatalf("strict=%v repeated id: %d, want %d", strict, got, want)
		}
	}
}

// TestGrantDraftCallbacksRouting: bunq's filters are per user and per
// monetary account. A draft made through a grant is announced to the
// grant's own filter (the TPP registers one per consent), never to the
// PSP's user-level filter.
func TestGrantDraftCallbacksRouting(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	rc := &receiver{}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	const redirect = "http://localhost/cb"
	psp, clientID, secret := oauthTPP(t, env, redirect)
	psp.post(userPath(psp.userID, "/notification-filter-url"), map[string]any{"notification_filters": []map[string]string{
		{"category": "DRAFT_PAYMENT", "notification_target": hook.URL + "/psp"}}}, false).must(t, 200)
	alice := seeded(t, env, 0)
	loc := env.Authorize(t, banktest.AuthorizeRequest{ClientID: clientID, RedirectURI: redirect, UserID: alice.ID})
	u, _ := url.Parse(loc)
	_, tok := exchange(t, env, false, url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")},
		"redirect_uri": {redirect}, "client_id": {clientID}, "client_secret": {secret}})
	c := newClient(t, env)
	c.context(tok.AccessToken)
	c.post(userPath(c.userID, "/notification-filter-url"), map[string]any{"notification_filters": []map[string]string{
		{"category": "DRAFT_PAYMENT", "notification_target": hook.URL + "/grant"}}}, false).must(t, 200)
	acc := accountOf(t, alice, "MonetaryAccountBank")
	c.post(userPath(c.userID, "/monetary-account/", itoa(acc.ID), "/draft-payment"), map[string]any{"number_of_required_accepts": 1, "entries": []map[string]any{{
		"amount": map[string]string{"value": "1.00", "currency": "EUR"}, "description": "routed",
		"counterparty_alias": map[string]string{"type": "IBAN", "value": "NL91ABNA0417164300", "name": "Shop"}}}}, true).must(t, 200)
	got := waitCallbacks(t, env, 1)
	time.Sleep(200 * time.Millisecond) // a second delivery would have been recorded by now
	got = env.Callbacks(t)
	if len(got) != 1 || got[0].URL != hook.URL+"/grant" {
		t.Fatalf("deliveries %+v, want one to /grant", got)
	}
}

// The PSD2 key's later sessions follow the PSP's auto-logout setting,
// answered as session_timeout, not a fixed 90 days (§3.1).
func TestPSPSessionTimeoutFollowsTheSetting(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	c := registerPSP(t, env, "Test TPP AISP PISP")
	env.SetSessionTimeout(t, c.userID, 7200)
	r := c.session(c.secret).must(t, 200)
	var timeout int64
	for _, e := range r.elems(t) {
		if e.typ == "UserPaymentServiceProvider" {
			timeout = num(e.obj["session_timeout"])
		}
	}
	if timeout != 7200 {
		t.Fatalf("second PSD2 session: session_timeout %d, want the setting 7200: %s", timeout, r.raw)
	}
	env.AdvanceClock(t, 7201*time.Second)
	if r := c.get(userPath(c.userID)); r.status != 403 {
		t.Fatalf("session after its session_timeout: %d", r.status)
	}
}

// TestNullEmptyObjects: with the switch on, empty object fields read null
// as in real payloads (bunq-api.md §12.8); off (the default, bunq's
// OpenAPI schema) they are left out or empty.
func TestNullEmptyObjects(t *testing.T) {
	t.Parallel()
	for _, on := range []bool{false, true} {
		var opts []banktest.Option
		if on {
			opts = append(opts, banktest.WithNullObjects())
		}
		env := banktest.Start(t, opts...)
		// The PSD2 credential before first use: permitted_device.
		certKey, certPEM := testCert(t, "Test TPP AISP PISP")
		psp := newClient(t, env)
		psp.install()
		r := psp.call("POST", "/v1/payment-service-provider-credential", map[string]string{
			"client_payment_service_provider_certificate":       certPEM,
			"client_payment_service_provider_certificate_chain": certPEM,
			"client_public_key_signature":                       sign(t, certKey, []byte(strings.TrimRight(psp.pubPEM, "\n")+"\n"+psp.instToken)),
		}, psp.instToken, "").must(t, 200)
		if got := strings.Contains(string(r.raw), `"permitted_device":null`); got != on {
			t.Errorf("null objects %v: credential %s", on, r.raw)
		}
		// A pending draft: responses, object and an empty merchant_reference.
		u := seeded(t, env, 0)
		c := newClient(t, env)
		c.context(u.APIKey)
		acc := accountOf(t, u, "MonetaryAccountBank")
		drafts := userPath(c.userID, "/monetary-account/", itoa(acc.ID), "/draft-payment")
		id := num(c.post(drafts, map[string]any{"number_of_required_accepts": 1, "entries": []map[string]any{{
			"amount": map[string]string{"value": "1.00", "currency": "EUR"}, "description": "nulls",
			"counterparty_alias": map[string]string{"type": "IBAN", "value": "NL91ABNA0417164300", "name": "Shop"}}}}, true).must(t, 200).elems(t)[0].obj["id"])
		d := c.get(drafts+"/"+itoa(id)).must(t, 200).elems(t)[0].obj
		resp, hasResp := d["responses"]
		obj, hasObj := d["object"]
		ref := d["entries"].([]any)[0].(map[string]any)["merchant_reference"]
		if on && (!hasResp || resp != nil || !hasObj || obj != nil || ref != nil) {
			t.Errorf("null objects on: draft %v", d)
		}
		if !on && (resp == nil || hasObj || ref != "") {
			t.Errorf("null objects off: draft %v", d)
		}
	}
}

// TestSwitchControls: each on/off control answers its new setting, and
// refuses a body without its field or with invalid JSON.
func TestSwitchControls(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	put := func(path, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPut, env.APIURL+"/_sandbox/"+path, strings.NewReader(body))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, strings.TrimSpace(string(b))
	}
	for _, c := range []struct{ path, field string }{
		{"rate-limits", "enabled"}, {"callback-signing", "enabled"}, {"token-state", "enabled"},
		{"null-objects", "enabled"}, {"merchant-reference", "echo"},
	} {
		for _, on := range []string{"false", "true"} {
			if code, body := put(c.path, `{"`+c.field+`":`+on+`}`); code != 200 || body != `{"`+c.field+`":`+on+`}` {
				t.Errorf("PUT %s %s = %d %s", c.path, on, code, body)
			}
		}
		if code, body := put(c.path, `{}`); code != 400 || !strings.Contains(body, `send {\"`+c.field+`\": true|false}`) {
			t.Errorf("PUT %s without %s = %d %s", c.path, c.field, code, body)
		}
		if code, body := put(c.path, `{`); code != 400 || !strings.Contains(body, "invalid JSON") {
			t.Errorf("PUT %s with invalid JSON = %d %s", c.path, code, body)
		}
	}
}
