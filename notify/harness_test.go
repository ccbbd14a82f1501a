package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/api"
	"github.com/bunqtpp/tpp/bankctx"
	"github.com/bunqtpp/tpp/bankctx/bankctxtest"
	"github.com/bunqtpp/tpp/consent"
	"github.com/bunqtpp/tpp/internal/banktest"
	"github.com/bunqtpp/tpp/internal/stacktest"
	"github.com/bunqtpp/tpp/oauth"
	"github.com/bunqtpp/tpp/psd2"
	"github.com/bunqtpp/tpp/web"
)

func init() { gin.SetMode(gin.TestMode) }

// harness is the consent stack on real components (the emulated bank over
// HTTP, redis-server, SQLite) with the consents API, the consent pages
// and the callback endpoint on one httptest server, as cmd/tpp mounts
// them. Consents are connected through the browser flow; the bank's OAUTH
// callbacks arrive at Path.
type harness struct {
	t     testing.TB
	stack *stacktest.Stack
	clock *stacktest.Clock
	env   *banktest.Env
	bank  *bankctxtest.TPP
	psd2  *psd2.Client
	srv   *httptest.Server
	logs  *stacktest.LogBuffer
	svc   *oauth.Service
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	return newHarnessWith(t, nil, nil)
}

// newHarnessWith uses env (a fresh in-process emulator when nil) and keys
// (a running KeyPool when nil); mods set the callback handler's Config.
func newHarnessWith(t testing.TB, env *banktest.Env, keySource bankctx.Keys, mods ...func(*harness, *Config)) *harness {
	t.Helper()
	clock := stacktest.RunningClock()
	s := stacktest.New(t, stacktest.Options{
		Env: env, Clock: clock, LogLevel: slog.LevelDebug, Keys: keySource,
		CallbackPath: oauth.CallbackPath, NotifyPath: Path,
		PSD2: func(o *psd2.Options) { o.Clock = clock },
	})
	h := &harness{t: t, stack: s, clock: clock, env: s.Env, bank: s.Bank, psd2: s.PSD2, srv: s.Server, logs: s.Logs}
	gate, err := consent.NewGate(consent.Config{
		Store: s.Consents, BankContexts: s.Provider, Clock: clock, Logger: s.Log,
		AuthorizeURL: oauth.AuthorizeURLs(s.URL),
	})
	if err != nil {
		t.Fatal(err)
	}
	h.svc, err = oauth.New(oauth.Config{
		PublicURL: s.URL, Clock: clock, Logger: s.Log,
		Bank:     oauth.BankOAuth{ClientID: s.Bank.ClientID, ClientSecret: s.Bank.ClientSecret, AuthURL: s.AuthURL(), TokenURL: s.TokenURL()},
		Consents: s.Consents, Clients: s.Clients, States: s.States(), BankContexts: s.Provider, Deadlines: gate,
		Audit: s.Audit, Sealer: s.Keyring, ExchangeBackoff: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Consents: s.Consents, Grants: gate, Clock: clock, Logger: s.Log}
	for _, m := range mods {
		m(h, &cfg)
	}
	callbacks, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pages, err := web.New("")
	if err != nil {
		t.Fatal(err)
	}
	consents, err := oauth.NewHandler(h.svc)
	if err != nil {
		t.Fatal(err)
	}
	flow, err := oauth.NewPages(h.svc, pages)
	if err != nil {
		t.Fatal(err)
	}
	g := gin.New()
	g.Use(api.RequestIDMiddleware(s.Log), api.AccessLog(nil), api.Recover())
	consents.Register(g.Group("/v1", api.Authenticate(s.Clients)))
	flow.Register(&g.RouterGroup)
	callbacks.Register(&g.RouterGroup)
	s.Serve(g)
	return h
}

// createConsent makes a pending consent through the API.
func (h *harness) createConsent() (id, authorizeURL string) {
	h.t.Helper()
	b, _ := json.Marshal(map[string]any{"user_ref": "u-1", "scopes": []string{"accounts", "payments"}, "return_url": stacktest.ReturnURL})
	req, _ := http.NewRequest("POST", h.srv.URL+"/v1/consents", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+h.stack.APIKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	if res.StatusCode != 201 {
		h.t.Fatalf("create consent: %d %s", res.StatusCode, raw)
	}
	return out["id"].(string), out["authorize_url"].(string)
}

type browser struct{ b *stacktest.Browser }

func (h *harness) newBrowser() *browser { return &browser{h.stack.NewBrowser()} }

// toBank presses Continue and returns bunq's authorize URL.
func (b *browser) toBank(authorizeURL string) *url.URL { return b.b.ToBank(authorizeURL) }

// decide has the emulated user decide at bunq and returns our callback URL.
func (h *harness) decide(authURL *url.URL, decision string) string {
	h.t.Helper()
	return h.stack.Decide(authURL, decision)
}

// connect runs the whole happy flow and returns the consent id.
func (h *harness) connect() string {
	h.t.Helper()
	id, au := h.createConsent()
	b := h.newBrowser()
	p := b.b.Get(h.decide(b.toBank(au), "approve"))
	if p.Status != http.StatusSeeOther || !strings.Contains(p.Location, "status=active") {
		h.t.Fatalf("callback: %d %s %s", p.Status, p.Location, p.Body)
	}
	return id
}

func (h *harness) consent(id string) *tpp.Consent { h.t.Helper(); return h.stack.Consent(id) }

// trail returns the consent's audit records as "from>to actor" strings.
func (h *harness) trail(id string) []string { h.t.Helper(); return h.stack.Transitions(id) }

// raw reads a Redis key.
func (h *harness) raw(key string) string {
	v, _ := h.stack.RDB.Get(context.Background(), key).Result()
	return v
}

// waitStatus polls until the consent reaches want.
func (h *harness) waitStatus(id string, want tpp.ConsentStatus) *tpp.Consent {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := h.consent(id)
		if c.Status == want {
			return c
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("consent %s is %s, want %s", id, c.Status, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
