package main

// End-to-end tests of end-user authorization: the whole service, started
// through run() as an operator would, against the emulated bank, a real
// redis-server and headless Chromium.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/bankctx"
	"github.com/bunqtpp/tpp/internal/banktest"
	"github.com/bunqtpp/tpp/internal/browsertest"
	"github.com/bunqtpp/tpp/internal/testenv"
)

// TestE2EConsentInBrowser is the done-when: a consent created
// through the API is approved by a person in a real browser, on our page
// and the bank's, and the fintech sees it active with the bunq user's name.
// The failure paths of the flow share the same running service.
func TestE2EConsentInBrowser(t *testing.T) {
	testenv.Heavy(t)
	t.Parallel()
	h := startHarness(t)
	b := browsertest.New(t)
	user := h.person()

	id, authorizeURL := h.createConsent("accounts", "payments")
	if want := h.URL + "/connect/" + id; authorizeURL != want {
		t.Fatalf("authorize_url = %q, want %q", authorizeURL, want)
	}
	final := h.connectInBrowser(b, id, user.DisplayName)
	if !strings.HasPrefix(final, h.ReturnURL+"?") {
		t.Fatalf("the browser ended at %q, want the return URL %s", final, h.ReturnURL)
	}
	q := mustQuery(t, final)
	if q.Get("status") != "active" || q.Get("consent_id") != id || q.Has("code") || q.Has("state") || q.Has("error") {
		t.Fatalf("return URL query = %v, want consent_id=%s&status=active and nothing else", q, id)
	}
	if got := b.Text(); !strings.Contains(got, "Back at Acme Budget") || !strings.Contains(got, "active") {
		t.Fatalf("fintech page text = %q", got)
	}
	c := h.consent(id)
	if c.str("status") != "active" || c.obj("bank_user").str("display_name") != user.DisplayName ||
		c.str("authorized_at") == "" || c["authorize_url"] != nil {
		t.Fatalf("consent after approval = %v, want active for %q", c, user.DisplayName)
	}
	h.collectStoredSecrets(id)

	// Each subtest drives its own browser: a browser reports failures to
	// the test that started it, and names its screenshots after it.
	t.Run("denied at the bank", func(t *testing.T) {
		h := h.forTest(t)
		b := browsertest.New(t)
		id, _ := h.createConsent("accounts")
		final := h.browserFlow(b, id, user.DisplayName, "deny")
		q := mustQuery(t, final)
		if !strings.HasPrefix(final, h.ReturnURL+"?") || q.Get("status") != "rejected" || q.Get("error") != "access_denied" || q.Get("consent_id") != id {
			t.Fatalf("after denying at the bank the browser is at %q", final)
		}
		if c := h.consent(id); c.str("status") != "rejected" || c.str("error") != "access_denied" || c["bank_user"] != nil {
			t.Fatalf("consent after denial = %v", c)
		}
	})

	t.Run("cancelled on our page", func(t *testing.T) {
		h := h.forTest(t)
		b := browsertest.New(t)
		console := watchConsole(t, b)
		id, au := h.createConsent("payments")
		b.Run("open consent page", chromedp.Navigate(au), chromedp.WaitVisible(`form[action$="/cancel"] button`))
		b.Screenshot("1-consent-page")
		b.Run("cancel", chromedp.Click(`form[action$="/cancel"] button`))
		if c := h.waitConsent(id, "rejected", 10*time.Second); c.str("error") != "cancelled" {
			t.Fatalf("consent after cancel = %v", c)
		}
		// The server has answered with a redirect to the return URL; the
		// browser must follow it to the fintech.
		wctx, cancel := context.WithTimeout(b.Ctx, 5*time.Second)
		err := chromedp.Do(wctx, chromedp.WaitVisible(`#fintech-landing`))
		cancel()
		b.Screenshot("2-after-cancel")
		if err != nil {
			t.Fatalf("after Cancel the browser stayed at %q: the consent is rejected, but the redirect to the return URL "+
				"was not followed (a Content-Security-Policy form-action that does not list the return URL's origin blocks "+
				"a form's redirect in Chromium)\nbrowser console:\n%s", b.Location(), console)
		}
		q := mustQuery(t, b.Location())
		if q.Get("status") != "rejected" || q.Get("error") != "cancelled" || q.Get("consent_id") != id {
			t.Fatalf("after Cancel the browser is at %q", b.Location())
		}
		// The link is dead now, and says so in words.
		b.Run("reopen", chromedp.Navigate(au), chromedp.WaitVisible(`h1`))
		b.Screenshot("declined-link")
		if txt := b.Text(); !strings.Contains(txt, "This request was declined") {
			t.Fatalf("reopened link shows %q", txt)
		}
	})

	t.Run("replayed callback", func(t *testing.T) {
		h := h.forTest(t)
		id, au := h.createConsent("accounts")
		jar := h.newJarBrowser()
		cb := h.decide(jar.toBank(au), user.ID, "approve")
		if p := jar.get(cb); p.status != http.StatusSeeOther || mustQuery(t, p.location).Get("status") != "active" {
			t.Fatalf("first callback: %d → %q", p.status, p.location)
		}
		before := h.consent(id)
		landings := len(h.Fintech.landings())

		// The same browser sends the same callback again.
		p := jar.get(cb)
		if p.status != http.StatusBadRequest || !strings.Contains(p.body, "already been used or has expired") || p.location != "" {
			t.Fatalf("replayed callback: %d → %q\n%s", p.status, p.location, p.body)
		}
		// So does a real browser, which shows the page a person would see.
		b := browsertest.New(t)
		b.Run("replay in browser", chromedp.Navigate(cb), chromedp.WaitVisible(`h1`))
		b.Screenshot("replayed-callback")
		if txt := b.Text(); !strings.Contains(txt, "already been used or has expired") {
			t.Fatalf("replayed callback page: %q", txt)
		}
		after := h.consent(id)
		if after.str("status") != "active" || after.str("authorized_at") != before.str("authorized_at") {
			t.Fatalf("the replay changed the consent: before %v, after %v", before, after)
		}
		if n := len(h.Fintech.landings()); n != landings {
			t.Fatalf("the replay sent the browser to the fintech again (%d → %d landings)", landings, n)
		}
	})

	t.Run("state from another browser", func(t *testing.T) {
		h := h.forTest(t)
		id, au := h.createConsent("accounts")
		started := h.newJarBrowser()
		cb := h.decide(started.toBank(au), user.ID, "approve")
		// The callback arrives in a browser that never started this flow
		// (a stolen or forwarded link): a fresh Chromium, without the cookie.
		b := browsertest.New(t)
		b.Run("callback in another browser", chromedp.Navigate(cb), chromedp.WaitVisible(`h1`))
		b.Screenshot("foreign-browser")
		if txt := b.Text(); !strings.Contains(txt, "Please finish in the browser where you started") {
			t.Fatalf("foreign browser page: %q", txt)
		}
		// A client with no cookies at all fares no better.
		if p := h.newJarBrowser().get(cb); p.status != http.StatusBadRequest || p.location != "" {
			t.Fatalf("callback without cookie: %d → %q", p.status, p.location)
		}
		if c := h.consent(id); c.str("status") != "pending" || c["bank_user"] != nil {
			t.Fatalf("consent after a foreign callback = %v, want pending", c)
		}
	})

	t.Run("expired state", func(t *testing.T) {
		h := h.forTest(t)
		id, au := h.createConsent("accounts")
		jar := h.newJarBrowser()
		bank := jar.toBank(au)
		// The state lives 10 minutes in Redis. Let that time pass for it
		// the way Redis would: its key expires.
		sum := sha256.Sum256([]byte(bank.Query().Get("state")))
		key := "tpp:oauth:state:" + hex.EncodeToString(sum[:])
		ctx := context.Background()
		ttl, err := h.RDB.PTTL(ctx, key).Result()
		if err != nil || ttl <= 9*time.Minute || ttl > 10*time.Minute {
			t.Fatalf("state key %s has TTL %v (%v), want about 10 minutes", key, ttl, err)
		}
		if ok, err := h.RDB.PExpire(ctx, key, time.Millisecond).Result(); err != nil || !ok {
			t.Fatalf("PEXPIRE %s: %v %v", key, ok, err)
		}
		for deadline := time.Now().Add(5 * time.Second); h.RDB.Exists(ctx, key).Val() != 0; {
			if time.Now().After(deadline) {
				t.Fatal("the state key did not expire")
			}
			time.Sleep(5 * time.Millisecond)
		}
		cb := h.decide(bank, user.ID, "approve")
		p := jar.get(cb)
		if p.status != http.StatusBadRequest || !strings.Contains(p.body, "already been used or has expired") || p.location != "" {
			t.Fatalf("callback with an expired state: %d → %q\n%s", p.status, p.location, p.body)
		}
		if c := h.consent(id); c.str("status") != "pending" {
			t.Fatalf("consent after an expired state = %v, want pending", c)
		}
	})

	t.Run("logs hold no secrets", func(t *testing.T) {
		h := h.forTest(t)
		// The check is only as good as what was collected: make sure every
		// kind of secret of the flow is in the set.
		labels := strings.Join(h.secrets.labels(), "|")
		for _, want := range []string{"OAuth code", "OAuth client secret", "user access token", "fintech API key",
			"user API context session token", "user API context installation token", "TPP API context session token",
			"bank response access_token", "certificate private key", "master key"} {
			if !strings.Contains(labels, want) {
				t.Errorf("no %q was collected (have %s)", want, labels)
			}
		}
		// The search itself works: a collected value is found in text.
		if code := h.secrets.sample("OAuth code"); len(h.secrets.find("x"+code+"y")) == 0 {
			t.Fatal("the secret search does not find a collected OAuth code")
		}
		logs := h.logs.String()
		if !strings.Contains(logs, `"msg":"serving"`) || !strings.Contains(logs, id) {
			t.Fatalf("the captured logs do not look like the server's JSON logs of this flow:\n%s", tail(logs, 2000))
		}
		h.checkLogs(t)
	})
}

// TestE2EAPIErrors covers the consents API's refusals, each validated
// against the OpenAPI document.
func TestE2EAPIErrors(t *testing.T) {
	testenv.Heavy(t)
	t.Parallel()
	h := startHarness(t)

	t.Run("return_url not registered", func(t *testing.T) {
		h := h.forTest(t)
		for _, ru := range []string{h.ReturnURL + "/other", "https://evil.example/return", h.ReturnURL + "?x=1"} {
			r := h.apiAs(h.APIKey, http.MethodPost, "/v1/consents", map[string]any{"user_ref": "u", "scopes": []string{"accounts"}, "return_url": ru}, nil)
			if r.Status != http.StatusBadRequest || r.Body.str("code") != "invalid_return_url" || !isProblem(r) {
				t.Errorf("return_url %q: %d %v", ru, r.Status, r.Body)
			}
		}
	})

	t.Run("wrong API key", func(t *testing.T) {
		h := h.forTest(t)
		for name, key := range map[string]string{"wrong": "tpp_aaaaaaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "altered": h.APIKey + "x", "none": ""} {
			r := h.apiAs(key, http.MethodGet, "/v1/consents", nil, nil)
			if r.Status != http.StatusUnauthorized || r.Body.str("code") != "unauthorized" || !isProblem(r) ||
				!strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s key: %d %v %v", name, r.Status, r.Header, r.Body)
			}
		}
	})

	t.Run("another client's consent is unknown", func(t *testing.T) {
		h := h.forTest(t)
		otherKey, _ := h.createClient("Other Fintech", h.ReturnURL)
		id, _ := h.createConsent("accounts")
		unknown := tpp.NewID(tpp.PrefixConsent)
		for _, method := range []string{http.MethodGet, http.MethodDelete} {
			theirs := h.apiAs(otherKey, method, "/v1/consents/"+id, nil, nil)
			nobody := h.apiAs(otherKey, method, "/v1/consents/"+unknown, nil, nil)
			if theirs.Status != http.StatusNotFound || !isProblem(theirs) {
				t.Fatalf("%s another client's consent: %d %v", method, theirs.Status, theirs.Body)
			}
			if got, want := comparableProblem(theirs, id), comparableProblem(nobody, unknown); got != want {
				t.Errorf("%s: another client's consent answers\n  %s\nbut an unknown id answers\n  %s", method, got, want)
			}
		}
		st, list := h.apiAsList(otherKey)
		if st != http.StatusOK || strings.Contains(list, id) {
			t.Errorf("the other client's list (%d) shows the consent: %s", st, list)
		}
		if c := h.consent(id); c.str("status") != "pending" {
			t.Errorf("the owner's consent after another client's DELETE = %v", c)
		}
	})
}

func isProblem(r apiResponse) bool {
	return strings.HasPrefix(r.Header.Get("Content-Type"), "application/problem+json")
}

// comparableProblem renders a problem without its request id and with
// the consent id replaced, so two answers can be compared for equality.
func comparableProblem(r apiResponse, id string) string {
	var parts []string
	for _, k := range []string{"type", "title", "code", "detail"} {
		parts = append(parts, k+"="+strings.ReplaceAll(r.Body.str(k), id, "{id}"))
	}
	keys := make([]string, 0, len(r.Body))
	for k := range r.Body {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return strings.Join(parts, " ") + " status=" + http.StatusText(r.Status) + " members=" + strings.Join(keys, ",")
}

func (h *harness) apiAsList(key string) (int, string) {
	h.t.Helper()
	r := h.apiAs(key, http.MethodGet, "/v1/consents", nil, nil)
	var ids []string
	if data, ok := r.Body["data"].([]any); ok {
		for _, d := range data {
			if m, ok := d.(map[string]any); ok {
				s, _ := m["id"].(string)
				ids = append(ids, s)
			}
		}
	}
	return r.Status, strings.Join(ids, ",")
}

// TestE2ERevocation withdraws consents from both sides: the fintech's
// DELETE ends the bunq session; the user's revocation in the bunq app
// reaches us as an OAUTH callback, which the TPP confirms with the bank.
func TestE2ERevocation(t *testing.T) {
	testenv.Heavy(t)
	t.Parallel()
	h := startHarness(t)

	t.Run("by the fintech", func(t *testing.T) {
		h := h.forTest(t)
		id := h.activeConsent(t, "accounts")
		if !h.contextStored(id) {
			t.Fatal("an active consent has no bunq context in Redis")
		}
		h.Env.ResetStats(t)
		st, c := h.api(http.MethodDelete, "/v1/consents/"+id, nil)
		if st != http.StatusOK || c.str("status") != "revoked" || c.str("revoked_at") == "" {
			t.Fatalf("DELETE: %d %v", st, c)
		}
		if n := h.Env.Stats(t)["DELETE /v1/session/{id}"]; n != 1 {
			t.Errorf("the bank saw %d session deletes, want 1 (stats %v)", n, h.Env.Stats(t))
		}
		if h.contextStored(id) {
			t.Error("the revoked consent's bunq context is still in Redis")
		}
		// Again: nothing left to do, same answer.
		if st, c := h.api(http.MethodDelete, "/v1/consents/"+id, nil); st != http.StatusOK || c.str("status") != "revoked" {
			t.Errorf("second DELETE: %d %v", st, c)
		}
		if c := h.consent(id); c.str("status") != "revoked" {
			t.Errorf("consent after DELETE = %v", c)
		}
	})

	t.Run("an unfounded OAUTH callback changes nothing", func(t *testing.T) {
		h := h.forTest(t)
		id := h.activeConsent(t, "accounts")
		h.Env.ResetStats(t)
		// Anyone can post to /bank/callbacks; one not signed by the bank
		// is refused and changes nothing.
		body := `{"NotificationUrl":{"target_url":"` + h.URL + `/bank/callbacks","category":"OAUTH","event_type":"OAUTH_AUTHORIZATION_REVOKED",` +
			`"object":{"UserApiKey":{"granted_by_user":{"UserPerson":{"id":` + strconv.FormatInt(h.person().ID, 10) + `}}}}}}`
		res, err := http.Post(h.URL+"/bank/callbacks", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode/100 == 2 {
			t.Fatalf("an unsigned OAUTH callback was accepted: %d", res.StatusCode)
		}
		if c := h.consent(id); c.str("status") != "active" {
			t.Fatalf("an unfounded callback revoked a live consent: %v", c)
		}
		if !h.contextStored(id) {
			t.Error("the consent lost its bunq context")
		}
		h.collectStoredSecrets(id)
	})

	t.Run("at the bank", func(t *testing.T) {
		h := h.forTest(t)
		id := h.activeConsent(t, "accounts")
		user := h.person()
		h.Env.RevokeGrant(t, user.ID, h.OAuthClientID)
		c := h.waitConsent(id, "revoked", 20*time.Second)
		if c.str("revoked_at") == "" || c.obj("bank_user").str("display_name") != user.DisplayName {
			t.Errorf("revoked consent = %v", c)
		}
		// The bank records the callback's answer after our handler has
		// written it, and the handler purges the context after the status
		// changed: wait a moment for both.
		deadline := time.Now().Add(10 * time.Second)
		for h.contextStored(id) || !okCallback(h.Env.Callbacks(t), h.URL+"/bank/callbacks") {
			if time.Now().After(deadline) {
				t.Fatalf("10 s after the revocation: context stored %v, callbacks %+v", h.contextStored(id), h.Env.Callbacks(t))
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// okCallback tells whether an OAUTH callback to url was answered 200.
func okCallback(cbs []banktest.Callback, url string) bool {
	for _, cb := range cbs {
		if cb.Category == "OAUTH" && cb.URL == url && cb.Status == http.StatusOK {
			return true
		}
	}
	return false
}

// TestE2ERedisFlush loses every Redis key under an active consent: the
// sealed access token in SQLite is enough to carry on, and many concurrent
// requests rebuild the user's bunq context once.
func TestE2ERedisFlush(t *testing.T) {
	testenv.Heavy(t)
	t.Parallel()
	h := startHarness(t)
	id := h.activeConsent(t, "accounts")
	attended := http.Header{"Psu-Ip-Address": {"192.0.2.10"}}
	accounts := func(h *harness) apiResponse {
		return h.apiAs(h.APIKey, http.MethodGet, "/v1/consents/"+id+"/accounts", nil, attended)
	}
	first := accounts(h)
	if first.Status != http.StatusOK {
		t.Fatalf("first account read: %d %v", first.Status, first.Body)
	}
	t.Run("recovery", func(t *testing.T) {
		h := h.forTest(t)
		h.Redis.FlushAll(t)
		// A replica trusts the context it parsed for up to this long.
		time.Sleep(bankctx.DefaultRecheck)
		h.Env.ResetStats(t)
		r := accounts(h)
		if r.Status != http.StatusOK {
			t.Fatalf("account read after FLUSHALL: %d %v\nlogs:\n%s", r.Status, r.Body, tail(h.logs.String(), 3000))
		}
		if got, want := accountIDs(r), accountIDs(first); got != want || got == "" {
			t.Errorf("accounts after FLUSHALL = %s, before = %s", got, want)
		}
		if n := h.Env.Stats(t)["POST /v1/session-server"]; n != 1 {
			t.Errorf("the bank saw %d session-server calls for the rebuild, want 1", n)
		}
		h.collectStoredSecrets(id)
	})

	t.Run("20 concurrent requests rebuild once", func(t *testing.T) {
		h := h.forTest(t)
		h.Redis.FlushAll(t)
		// A replica trusts the context it parsed for up to this long.
		time.Sleep(bankctx.DefaultRecheck)
		h.Env.ResetStats(t)
		const n = 20
		var wg sync.WaitGroup
		start := make(chan struct{})
		statuses := make([]int, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				statuses[i] = accounts(h).Status
			}()
		}
		close(start)
		wg.Wait()
		for i, st := range statuses {
			if st != http.StatusOK {
				t.Errorf("request %d: %d", i, st)
			}
		}
		stats := h.Env.Stats(t)
		if stats["POST /v1/session-server"] != 1 || stats["POST /v1/installation"] != 1 {
			t.Errorf("20 concurrent reads after FLUSHALL made %d sessions and %d installations at the bank, want 1 each (stats %v)",
				stats["POST /v1/session-server"], stats["POST /v1/installation"], stats)
		}
		h.collectStoredSecrets(id)
	})
}

func accountIDs(r apiResponse) string {
	var ids []string
	if data, ok := r.Body["data"].([]any); ok {
		for _, d := range data {
			if m, ok := d.(map[string]any); ok {
				s, _ := m["id"].(string)
				ids = append(ids, s)
			}
		}
	}
	slices.Sort(ids)
	return strings.Join(ids, ",")
}

// TestE2EUnsignedCallbacks runs the product as bunq calls it: callbacks
// come unsigned and 'tpp serve' runs with --bank-callback-auth none. Every
// callback is only a hint the TPP re-checks at the bank: a revocation at
// the bank is applied, a forged one changes nothing.
func TestE2EUnsignedCallbacks(t *testing.T) {
	testenv.Heavy(t)
	t.Parallel()
	h := newHarness(t, harnessOptions{serveFlags: []string{"--bank-callback-auth", "none"}})
	h.Env.SetCallbackSigning(t, false)
	h.serve(t)

	t.Run("a forged revocation changes nothing", func(t *testing.T) {
		h := h.forTest(t)
		id := h.activeConsent(t, "accounts")
		body := `{"NotificationUrl":{"target_url":"` + h.URL + `/bank/callbacks","category":"OAUTH","event_type":"OAUTH_AUTHORIZATION_REVOKED",` +
			`"object":{"UserApiKey":{"granted_by_user":{"UserPerson":{"id":` + strconv.FormatInt(h.person().ID, 10) + `}}}}}}`
		h.Env.ResetStats(t)
		res, err := http.Post(h.URL+"/bank/callbacks", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("an unsigned callback in mode none: %d, want 200 (a hint to re-check)", res.StatusCode)
		}
		// The re-check asks the bank; wait for it, then the consent must
		// still be active.
		deadline := time.Now().Add(10 * time.Second)
		for len(h.Env.Stats(t)) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the forged callback was not re-checked at the bank")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if c := h.consent(id); c.str("status") != "active" {
			t.Fatalf("a forged callback revoked a live consent: %v", c)
		}
		if !h.contextStored(id) {
			t.Error("the consent lost its bunq context")
		}
	})

	t.Run("a revocation at the bank is applied", func(t *testing.T) {
		h := h.forTest(t)
		id := h.activeConsent(t, "accounts")
		user := h.person()
		h.Env.RevokeGrant(t, user.ID, h.OAuthClientID)
		if c := h.waitConsent(id, "revoked", 20*time.Second); c.str("revoked_at") == "" {
			t.Errorf("revoked consent = %v", c)
		}
		deadline := time.Now().Add(10 * time.Second)
		for !okCallback(h.Env.Callbacks(t), h.URL+"/bank/callbacks") {
			if time.Now().After(deadline) {
				t.Fatalf("the unsigned OAUTH callback was not answered 200: %+v", h.Env.Callbacks(t))
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
