package oauth

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
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	goredis "github.com/redis/go-redis/v9"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/api"
	"github.com/bunqtpp/tpp/bankctx"
	"github.com/bunqtpp/tpp/bankctx/bankctxtest"
	"github.com/bunqtpp/tpp/consent"
	"github.com/bunqtpp/tpp/internal/banktest"
	"github.com/bunqtpp/tpp/internal/redistest"
	"github.com/bunqtpp/tpp/internal/stacktest"
	"github.com/bunqtpp/tpp/psd2"
	"github.com/bunqtpp/tpp/seal"
	"github.com/bunqtpp/tpp/sqlite"
	"github.com/bunqtpp/tpp/web"
)

func init() { gin.SetMode(gin.TestMode) }

const returnURL0 = stacktest.ReturnURL

// harness is the whole consent stack on real components: the emulated
// bank over HTTP, a real redis-server, a SQLite file, and our gin routes
// on an httptest server. Its fields name the stack's parts for the tests.
type harness struct {
	t        testing.TB
	stack    *stacktest.Stack
	clock    *stacktest.Clock
	env      *banktest.Env
	bank     *bankctxtest.TPP
	redis    *redistest.Server
	rdb      goredis.UniversalClient
	consents *sqlite.ConsentService
	db       *sqlite.DB
	audit    *sqlite.AuditLog
	clients  *sqlite.ClientService
	provider *bankctx.Provider
	singles  atomic.Int64 // single payments made, for distinct debtors
	psd2     *psd2.Client
	svc      *Service
	srv      *httptest.Server
	client   *tpp.FintechClient
	apiKey   string
	logs     *stacktest.LogBuffer
	keyring  *seal.Keyring
	raw      func(key string) string // raw Redis GET
	rebuilds *counter
}

type counter struct {
	mu sync.Mutex
	n  int
}

func (c *counter) inc() { c.mu.Lock(); c.n++; c.mu.Unlock() }
func (c *counter) get() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	return newHarnessWith(t, nil, nil)
}

// newHarnessWith uses env (a fresh in-process emulator when nil) and keys
// (a running KeyPool when nil).
func newHarnessWith(t testing.TB, env *banktest.Env, keySource bankctx.Keys, mods ...func(*harness, *Config)) *harness {
	t.Helper()
	return newHarnessBudget(t, env, keySource, nil, mods...)
}

// newHarnessBudget is newHarnessWith with the bank client's rate budget
// (nil: the client's default, in memory).
func newHarnessBudget(t testing.TB, env *banktest.Env, keySource bankctx.Keys, budget psd2.Budget, mods ...func(*harness, *Config)) *harness {
	t.Helper()
	level := slog.LevelDebug // tests read every line for secrets
	if _, bench := t.(*testing.B); bench {
		level = slog.LevelInfo // what production logs
	}
	// Real time plus an offset the test moves forward: time still passes
	// (rate windows drain), and a test can jump days ahead; the bank
	// client's sessions age with it.
	clock := stacktest.RunningClock()
	rebuilds := &counter{}
	s := stacktest.New(t, stacktest.Options{
		Env: env, Clock: clock, LogLevel: level, Keys: keySource,
		CallbackPath: CallbackPath, NotifyPath: "/bank/callbacks",
		ReturnURLs: []string{returnURL0, "http://localhost:9999/back?x=1"},
		PSD2:       func(o *psd2.Options) { o.Clock, o.Budget = clock, budget },
		Contexts:   func(c *bankctx.Config) { c.OnRebuild = func(string) { rebuilds.inc() } },
	})
	h := &harness{t: t, stack: s, clock: clock, env: s.Env, bank: s.Bank, redis: s.Redis, rdb: s.RDB,
		consents: s.Consents, db: s.DB, audit: s.Audit, clients: s.Clients, provider: s.Provider, psd2: s.PSD2,
		srv: s.Server, client: s.Client, apiKey: s.APIKey, logs: s.Logs, keyring: s.Keyring, rebuilds: rebuilds}
	h.raw = func(key string) string { v, _ := s.RDB.Get(context.Background(), key).Result(); return v }

	cfg := Config{
		PublicURL: s.URL, Clock: clock, Logger: s.Log,
		Bank:     BankOAuth{ClientID: s.Bank.ClientID, ClientSecret: s.Bank.ClientSecret, AuthURL: s.AuthURL(), TokenURL: s.TokenURL()},
		Consents: s.Consents, Clients: s.Clients, States: s.States(), BankContexts: s.Provider,
		Audit: s.Audit, Sealer: s.Keyring, ExchangeBackoff: time.Millisecond,
	}
	for _, m := range mods {
		m(h, &cfg)
	}
	var err error
	if cfg.Deadlines, err = consent.NewGate(consent.Config{
		Store: cfg.Consents, BankContexts: s.Provider, Clock: clock, Logger: s.Log,
		AuthorizeURL: func(id string) string { return h.svc.AuthorizeURL(id) },
	}); err != nil {
		t.Fatal(err)
	}
	h.svc, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pages, err := web.New("")
	if err != nil {
		t.Fatal(err)
	}
	g := gin.New()
	g.Use(api.RequestIDMiddleware(s.Log), api.AccessLog(nil), api.Recover())
	mount(t, g, h.svc, pages, api.Authenticate(h.clients))
	s.Serve(g)
	return h
}

// mount registers the consents API on an authenticated /v1 group and the
// browser pages at the root, as cmd/tpp does.
func mount(t testing.TB, g *gin.Engine, svc *Service, pages *web.Renderer, auth gin.HandlerFunc) {
	t.Helper()
	hd, err := NewHandler(svc)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := NewPages(svc, pages)
	if err != nil {
		t.Fatal(err)
	}
	hd.Register(g.Group("/v1", auth))
	pg.Register(&g.RouterGroup)
}

// ---- API helpers

func (h *harness) call(method, path string, body any) (int, map[string]any) {
	h.t.Helper()
	return h.callAs(h.apiKey, method, path, body)
}

// callAs calls the API with another client's key.
func (h *harness) callAs(apiKey, method, path string, body any) (int, map[string]any) {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, h.srv.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(raw, &out)
	return res.StatusCode, out
}

func (h *harness) createConsent(scopes ...string) (id, authorizeURL string) {
	h.t.Helper()
	if len(scopes) == 0 {
		scopes = []string{"accounts", "payments"}
	}
	st, out := h.call("POST", "/v1/consents", map[string]any{"user_ref": "u-1", "scopes": scopes, "return_url": returnURL0})
	if st != 201 {
		h.t.Fatalf("create consent: %d %v", st, out)
	}
	return out["id"].(string), out["authorize_url"].(string)
}

func (h *harness) consent(id string) *tpp.Consent { h.t.Helper(); return h.stack.Consent(id) }

// ---- browser

// browser is the stack's browser answering pages with unexported fields,
// as the tests read them.
type browser struct{ b *stacktest.Browser }

func (h *harness) newBrowser() *browser { return &browser{h.stack.NewBrowser()} }

type page struct {
	status   int
	body     string
	location string
	header   http.Header
}

func pageOf(p stacktest.Page) page {
	return page{status: p.Status, body: p.Body, location: p.Location, header: p.Header}
}

func (b *browser) get(u string) page                   { return pageOf(b.b.Get(u)) }
func (b *browser) post(u string, form url.Values) page { return pageOf(b.b.Post(u, form)) }

// open loads the consent page and returns its CSRF token.
func (b *browser) open(authorizeURL string) (page, string) {
	p, tok := b.b.Open(authorizeURL)
	return pageOf(p), tok
}

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
	cb := h.decide(b.toBank(au), "approve")
	p := b.get(cb)
	if p.status != http.StatusSeeOther || !strings.Contains(p.location, "status=active") {
		h.t.Fatalf("callback: %d %s %s", p.status, p.location, p.body)
	}
	return id
}

// trail returns the consent's audit records as "from>to actor" strings.
func (h *harness) trail(id string) []string { h.t.Helper(); return h.stack.Transitions(id) }

func (h *harness) events(id string) int {
	h.t.Helper()
	var n int
	if err := h.db.GetContext(context.Background(), &n,
		`SELECT count(*) FROM webhook_events WHERE type = 'consent.updated' AND payload LIKE '%' || ? || '%'`, id); err != nil {
		h.t.Fatal(err)
	}
	return n
}
