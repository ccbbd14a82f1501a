package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/bankctx/bankctxtest"
)

// Everything secret that passed through a full flow must be absent from
// the logs, and Redis must hold the context only sealed.
func TestNoSecretsInLogsOrRedis(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id, au := h.createConsent()
	b := h.newBrowser()
	authURL := b.toBank(au)
	state := authURL.Query().Get("state")
	cb := h.decide(authURL, "approve")
	cbu, _ := url.Parse(cb)
	code := cbu.Query().Get("code")
	if p := b.get(cb); !strings.Contains(p.location, "status=active") {
		t.Fatalf("flow: %d %s", p.status, p.location)
	}
	// Use the context once more and revoke, so those paths log too.
	ctx := context.Background()
	c := h.consent(id)
	bc, err := h.provider.Get(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	token, err := h.consents.AccessToken(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := bc.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var cj struct {
		Installation struct {
			Token   string `json:"token"`
			Private string `json:"client_private_key"`
		} `json:"installation"`
		Session struct {
			Token string `json:"token"`
		} `json:"session"`
	}
	if err := json.Unmarshal(blob, &cj); err != nil {
		t.Fatal(err)
	}
	// The private key's base64 body, without PEM armour.
	keyLines := strings.Split(strings.TrimSpace(cj.Installation.Private), "\n")
	secrets := map[string]string{
		"access token": token, "code": code, "client secret": h.bank.ClientSecret,
		"session token": cj.Session.Token, "installation token": cj.Installation.Token,
		"private key": keyLines[len(keyLines)/2], "state": state,
	}
	for name, v := range secrets {
		if len(v) < 8 {
			t.Fatalf("%s too short to search for: %q", name, v)
		}
	}
	raw := h.raw("t:ctx:" + id)
	if raw == "" {
		t.Fatal("no context in Redis")
	}
	for name, v := range secrets {
		if strings.Contains(raw, v) {
			t.Errorf("raw Redis value holds the %s", name)
		}
	}
	for _, marker := range []string{"PRIVATE KEY", "installation", "session", "\"token\""} {
		if strings.Contains(raw, marker) {
			t.Errorf("raw Redis value readable: contains %q", marker)
		}
	}
	// No Redis key or value anywhere holds a secret (states are stored by hash).
	keys, err := h.rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		v, _ := h.rdb.Get(ctx, k).Result()
		for name, s := range secrets {
			if strings.Contains(k, s) || strings.Contains(v, s) {
				t.Errorf("Redis key %s holds the %s", k, name)
			}
		}
	}
	if st, _ := h.call("DELETE", "/v1/consents/"+id, nil); st != 200 {
		t.Fatal("revoke failed")
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "/oauth/callback") || !strings.Contains(logs, "session-server") {
		t.Fatalf("logs do not cover the flow:\n%s", logs)
	}
	for name, v := range secrets {
		if strings.Contains(logs, v) {
			t.Errorf("logs contain the %s", name)
		}
	}
}

// The psd2 renewal hook writes the renewed session back to Redis.
func TestRenewedSessionWrittenBack(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.connect()
	ctx := context.Background()
	c := h.consent(id)
	bc, err := h.provider.Get(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	before := bc.SessionID()
	h.clock.Advance(8 * 24 * time.Hour) // past the session's lifetime: the client renews it
	if _, err := h.psd2.ListUsers(ctx, bc); err != nil {
		t.Fatal(err)
	}
	if bc.SessionID() == before {
		t.Fatal("session was not renewed")
	}
	again, err := h.provider.Get(ctx, h.consent(id))
	if err != nil {
		t.Fatal(err)
	}
	if again.SessionID() != bc.SessionID() || again.InstallationID() != bc.InstallationID() {
		t.Fatalf("Redis holds session %d (installation %d), want renewed %d", again.SessionID(), again.InstallationID(), bc.SessionID())
	}
}

// A consent due for re-authorization goes through the same pages and keeps its id.
func TestReauthorizationKeepsID(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.connect()
	first := h.consent(id)
	h.clock.Advance(tpp.ConsentReauthAfter + time.Hour)
	st, out := h.call("GET", "/v1/consents/"+id, nil)
	if st != 200 || out["status"] != "reauth_required" || out["authorize_url"] != h.srv.URL+"/connect/"+id {
		t.Fatalf("after 180 days: %d %v", st, out)
	}
	if h.raw("t:ctx:"+id) != "" {
		t.Fatal("context kept for a consent that needs re-authorization")
	}
	if _, err := h.provider.Get(context.Background(), h.consent(id)); err == nil {
		t.Fatal("context handed out for a consent that needs re-authorization")
	}
	b := h.newBrowser()
	p, _ := b.open(out["authorize_url"].(string))
	if !strings.Contains(p.body, "Approve again") || strings.Contains(p.body, "expires at") {
		t.Fatalf("page does not explain re-authorization:\n%s", p.body)
	}
	cb := h.decide(b.toBank(out["authorize_url"].(string)), "approve")
	res := b.get(cb)
	if res.status != http.StatusSeeOther || !strings.Contains(res.location, "consent_id="+id) || !strings.Contains(res.location, "status=active") {
		t.Fatalf("reauth callback: %d %s %s", res.status, res.location, res.body)
	}
	again := h.consent(id)
	if again.Status != tpp.ConsentActive || !again.AuthorizedAt.After(*first.AuthorizedAt) || !again.ReauthDueAt.After(*first.ReauthDueAt) {
		t.Fatalf("after reauth: %+v", again)
	}
	tr := h.trail(id)
	if strings.Join(tr, ";") != "pending>active psu;active>reauth_required system;reauth_required>active psu" {
		t.Fatalf("audit %v", tr)
	}
}

func TestExchangeAgainstEmulatorTokenHost(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, err := h.svc.exchange.Exchange(context.Background(), "not-a-code")
	var ee *ExchangeError
	if !errors.As(err, &ee) || ee.Code != "invalid_grant" {
		t.Fatalf("bogus code: %v", err)
	}
	// A real code from the bank works once.
	code := h.bank.Code(t, bankctxtest.Person(t, h.env).ID, "s1")
	tok, err := h.svc.exchange.Exchange(context.Background(), code)
	if err != nil || tok.AccessToken == "" {
		t.Fatalf("exchange: %v", err)
	}
	if _, err := h.svc.exchange.Exchange(context.Background(), code); !errors.As(err, &ee) {
		t.Fatalf("code reused: %v", err)
	}
}

// Cookies are Secure exactly when the public URL is https.
func TestSecureCookiesFollowPublicURL(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	if h.svc.cookies.secure {
		t.Fatal("http public URL made Secure cookies (browsers would drop them)")
	}
	cfg := Config{PublicURL: "https://tpp.example", Bank: BankOAuth{ClientID: "c", ClientSecret: "s",
		AuthURL: "https://oauth.example/auth", TokenURL: "https://token.example/v1/token"},
		Consents: h.consents, Clients: h.clients, States: h.svc.states, BankContexts: h.provider,
		Deadlines: h.svc.due}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, ck, err := s.Begin(context.Background(), mustCreate(t, h))
	if err != nil {
		t.Fatal(err)
	}
	if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/oauth" {
		t.Fatalf("cookie %+v", ck)
	}
	if s.exchange.cfg.RedirectURL != "https://tpp.example/oauth/callback" {
		t.Fatalf("redirect URL %q", s.exchange.cfg.RedirectURL)
	}
}

func mustCreate(t *testing.T, h *harness) string {
	id, _ := h.createConsent()
	return id
}
