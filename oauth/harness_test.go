package oauth

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	goredis "github.com/redis/go-redis/v9"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/api"
	"github.com/bunqtpp/tpp/bankctx"
	"github.com/bunqtpp/tpp/bankctx/bankctxtest"
	"github.com/bunqtpp/tpp/internal/banktest"
	"github.com/bunqtpp/tpp/internal/redistest"
	"github.com/bunqtpp/tpp/logging"
	"github.com/bunqtpp/tpp/psd2"
	"github.com/bunqtpp/tpp/redis"
	"github.com/bunqtpp/tpp/seal"
	"github.com/bunqtpp/tpp/sqlite"
	"github.com/bunqtpp/tpp/web"
)

func init() { gin.SetMode(gin.TestMode) }

// testClock is real time plus an offset the test moves forward: time
// still passes (rate windows drain), and a test can jump days ahead.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().UTC().Add(c.offset)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// syncBuffer collects logs from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const returnURL0 = "https://app.example/bunq/return"

// harness is the whole consent stack on real components: the emulated
// bank over HTTP, a real redis-server, a SQLite file, and our gin routes
// on an httptest server.
type harness struct {
	t        testing.TB
	clock    *testClock
	env      *banktest.Env
	bank     *bankctxtest.TPP
	redis    *redistest.Server
	rdb      goredis.UniversalClient
	consents *sqlite.ConsentService
	db       *sqlite.DB
	audit    *sqlite.AuditLog
	clients  *sqlite.ClientService
	provider *bankctx.Provider
	psd2     *psd2.Client
	svc      *Service
	srv      *httptest.Server
	client   *tpp.FintechClient
	apiKey   string
	logs     *syncBuffer
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
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h := &harness{t: t, clock: &testClock{}, logs: &syncBuffer{}, rebuilds: &counter{}}
	level := slog.LevelDebug // tests read every line for secrets
	if _, bench := t.(*testing.B); bench {
		level = slog.LevelInfo // what production logs
	}
	log := logging.New(h.logs, logging.Options{Level: level})

	var engine http.Handler
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { engine.ServeHTTP(w, r) }))
	t.Cleanup(h.srv.Close)

	h.env = env
	if h.env == nil {
		h.env = banktest.Start(t)
	}
	h.bank = bankctxtest.Register(t, h.env, h.srv.URL+CallbackPath, h.srv.URL+"/bank/callbacks")

	h.redis = redistest.Start(t)
	rdb := h.redis.Client(t)
	h.rdb = rdb
	h.raw = func(key string) string { v, _ := rdb.Get(ctx, key).Result(); return v }

	mk := make([]byte, 32)
	_, _ = rand.Read(mk)
	kr, err := seal.NewKeyring(seal.Key{ID: "k1", Key: mk})
	if err != nil {
		t.Fatal(err)
	}
	h.keyring = kr
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "tpp.db"), h.clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	h.db, h.audit = db, sqlite.NewAuditLog(db)
	h.consents = sqlite.NewConsentService(db, kr)
	h.clients = sqlite.NewClientService(db, kr)
	cl, secrets, err := h.clients.CreateClient(ctx, tpp.NewClient{Name: "Acme Budget", ReturnURLs: []string{returnURL0, "http://localhost:9999/back?x=1"}})
	if err != nil {
		t.Fatal(err)
	}
	h.client, h.apiKey = cl, secrets.APIKey

	keys := redis.NewKeys("t:")
	store, err := redis.NewContextStore(rdb, keys, kr, 0)
	if err != nil {
		t.Fatal(err)
	}
	if keySource == nil {
		pool := bankctx.NewKeyPool(3, 1)
		pool.Start(ctx)
		keySource = pool
	}
	var provider *bankctx.Provider
	pc, err := psd2.New(psd2.Options{
		BaseURL: h.env.APIURL, RateMargin: -1, Logger: log, HTTPClient: &http.Client{Timeout: 10 * time.Second},
		Clock:   h.clock,
		OnRenew: func(ctx context.Context, c *psd2.Context) error { return provider.OnRenew(ctx, c) },
	})
	if err != nil {
		t.Fatal(err)
	}
	provider, err = bankctx.New(bankctx.Config{
		Bank: pc, Store: store, Locker: redis.NewLocker(rdb, keys), Tokens: h.consents, Keys: keySource, Logger: log,
		OnRebuild: func(string) { h.rebuilds.inc() },
	})
	if err != nil {
		t.Fatal(err)
	}
	h.provider, h.psd2 = provider, pc
	cfg := Config{
		PublicURL: h.srv.URL,
		Bank: BankOAuth{ClientID: h.bank.ClientID, ClientSecret: h.bank.ClientSecret,
			AuthURL: h.env.OAuthURL + "/auth", TokenURL: h.env.TokenURL + "/v1/token"},
		Consents: h.consents, Clients: h.clients, States: redis.NewStateStore(rdb, keys, 0, h.clock),
		BankContexts: provider, Clock: h.clock, Logger: log,
	}
	for _, m := range mods {
		m(h, &cfg)
	}
	h.svc, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pages, err := web.New("")
	if err != nil {
		t.Fatal(err)
	}
	hd, err := NewHandler(HandlerConfig{
		Service: h.svc, Pages: pages, Logger: log,
		Auth: api.Authenticate(h.clients),
	})
	if err != nil {
		t.Fatal(err)
	}
	g := gin.New()
	g.Use(api.RequestIDMiddleware(log), api.AccessLog(nil), api.Recover())
	hd.Register(g)
	engine = g
	return h
}

// ---- API helpers

func (h *harness) call(method, path string, body any) (int, map[string]any) {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, h.srv.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+h.apiKey)
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

func (h *harness) consent(id string) *tpp.Consent {
	h.t.Helper()
	c, err := h.consents.ConsentByID(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// ---- browser

type browser struct {
	h *harness
	c *http.Client
}

// newBrowser has a cookie jar and stops at any redirect leaving our
// server, so tests see where it would go.
func (h *harness) newBrowser() *browser {
	jar, _ := cookiejar.New(nil)
	own, _ := url.Parse(h.srv.URL)
	return &browser{h: h, c: &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(r *http.Request, via []*http.Request) error {
		if r.URL.Host != own.Host {
			return http.ErrUseLastResponse
		}
		return nil
	}}}
}

type page struct {
	status   int
	body     string
	location string
	header   http.Header
}

func (b *browser) do(req *http.Request) page {
	b.h.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.h.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return page{status: res.StatusCode, body: string(raw), location: res.Header.Get("Location"), header: res.Header}
}

func (b *browser) get(u string) page {
	req, _ := http.NewRequest("GET", u, nil)
	return b.do(req)
}

func (b *browser) post(u string, form url.Values) page {
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var csrfRe = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// open loads the consent page and returns its CSRF token.
func (b *browser) open(authorizeURL string) (page, string) {
	b.h.t.Helper()
	p := b.get(authorizeURL)
	m := csrfRe.FindStringSubmatch(p.body)
	if p.status != 200 || m == nil {
		b.h.t.Fatalf("consent page: %d\n%s", p.status, p.body)
	}
	return p, m[1]
}

// toBank presses Continue and returns bunq's authorize URL.
func (b *browser) toBank(authorizeURL string) *url.URL {
	b.h.t.Helper()
	_, tok := b.open(authorizeURL)
	p := b.post(authorizeURL+"/continue", url.Values{"csrf_token": {tok}})
	if p.status != http.StatusSeeOther {
		b.h.t.Fatalf("continue: %d %s", p.status, p.body)
	}
	u, err := url.Parse(p.location)
	if err != nil {
		b.h.t.Fatal(err)
	}
	return u
}

// approve has the emulated user decide at bunq and returns our callback URL.
func (h *harness) decide(authURL *url.URL, decision string) string {
	h.t.Helper()
	q := authURL.Query()
	return h.env.Authorize(h.t, banktest.AuthorizeRequest{
		ClientID: q.Get("client_id"), RedirectURI: q.Get("redirect_uri"), State: q.Get("state"),
		UserID: bankctxtest.Person(h.t, h.env).ID, Decision: decision,
	})
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
func (h *harness) trail(id string) []string {
	h.t.Helper()
	recs, err := h.audit.ListAudit(context.Background(), tpp.AuditFilter{ConsentID: id}, 0, 100)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		if r.Action == tpp.AuditConsentTransition {
			out = append(out, r.From+">"+r.To+" "+r.Actor)
		}
	}
	return out
}

func (h *harness) events(id string) int {
	h.t.Helper()
	var n int
	if err := h.db.GetContext(context.Background(), &n,
		`SELECT count(*) FROM webhook_events WHERE type = 'consent.updated' AND payload LIKE '%' || ? || '%'`, id); err != nil {
		h.t.Fatal(err)
	}
	return n
}
