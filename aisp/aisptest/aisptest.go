// Package aisptest builds the whole read stack for the tests of aisp and
// cbpii on real components: the emulated bank over HTTP, a real
// redis-server, a SQLite file, the consent services of oauth and sqlite,
// bankctx contexts, and the API engine on an httptest server whose client
// validates every exchange against the OpenAPI document.
package aisptest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	goredis "github.com/redis/go-redis/v9"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/aisp"
	"github.com/bunqtpp/tpp/api"
	"github.com/bunqtpp/tpp/bankctx"
	"github.com/bunqtpp/tpp/bankctx/bankctxtest"
	"github.com/bunqtpp/tpp/internal/apitest"
	"github.com/bunqtpp/tpp/internal/banktest"
	"github.com/bunqtpp/tpp/internal/redistest"
	"github.com/bunqtpp/tpp/oauth"
	"github.com/bunqtpp/tpp/psd2"
	"github.com/bunqtpp/tpp/redis"
	"github.com/bunqtpp/tpp/seal"
	"github.com/bunqtpp/tpp/sqlite"
)

// Clock is a settable clock for the TPP side (the bank keeps its own).
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// Now implements tpp.Clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// unlimited admits every call at once. The emulator enforces no rate
// limits unless asked, and the client's own 3-per-3-seconds pacing would
// only make these tests slow; psd2 tests the pacing itself.
type unlimited struct{}

func (unlimited) Wait(ctx context.Context, _ string, _ int, _ time.Duration) error { return ctx.Err() }

// ReturnURL is the test client's registered return URL.
const ReturnURL = "https://app.example/bunq/return"

// Stack is one TPP on real components, with an API server. Register
// handlers on V1 before the first request.
type Stack struct {
	T        testing.TB
	Clock    *Clock
	Env      *banktest.Env
	Bank     *bankctxtest.TPP
	Person   banktest.User
	Redis    *redistest.Server
	RDB      goredis.UniversalClient
	Keys     redis.Keys
	Keyring  *seal.Keyring
	DB       *sqlite.DB
	Consents *sqlite.ConsentService
	Audit    *sqlite.AuditLog
	Clients  *sqlite.ClientService
	PSD2     *psd2.Client
	Provider *bankctx.Provider
	OAuth    *oauth.Service
	Gate     *aisp.Gate
	Client   *tpp.FintechClient
	APIKey   string

	callMu    sync.Mutex
	callHooks []func(psd2.CallInfo)

	Engine    *gin.Engine
	V1        *gin.RouterGroup
	URL       string
	Validator *apitest.Validator
	HTTP      *http.Client // validates every exchange
}

// New builds a Stack; everything stops when t ends.
func New(t testing.TB) *Stack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s := &Stack{T: t, Clock: &Clock{t: time.Now().UTC()}}

	s.Env = banktest.Start(t)
	s.Bank = bankctxtest.Register(t, s.Env, "https://tpp.test/oauth/callback", "")
	s.Person = bankctxtest.Person(t, s.Env)

	s.Redis = redistest.Start(t)
	s.RDB = s.Redis.Client(t)
	s.Keys = redis.NewKeys("t:")

	mk := make([]byte, 32)
	_, _ = rand.Read(mk)
	kr, err := seal.NewKeyring(seal.Key{ID: "k1", Key: mk})
	if err != nil {
		t.Fatal(err)
	}
	s.DB, err = sqlite.Open(ctx, filepath.Join(t.TempDir(), "tpp.db"), s.Clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.DB.Close() })
	s.Keyring = kr
	s.Consents = sqlite.NewConsentService(s.DB, kr)
	s.Audit = sqlite.NewAuditLog(s.DB)
	s.Clients = sqlite.NewClientService(s.DB, kr)
	cl, secrets, err := s.Clients.CreateClient(ctx, tpp.NewClient{Name: "Acme Budget", ReturnURLs: []string{ReturnURL}})
	if err != nil {
		t.Fatal(err)
	}
	s.Client, s.APIKey = cl, secrets.APIKey

	store, err := redis.NewContextStore(s.RDB, s.Keys, kr, 0)
	if err != nil {
		t.Fatal(err)
	}
	pool := bankctx.NewKeyPool(2, 1)
	pool.Start(ctx)
	var provider *bankctx.Provider
	s.PSD2, err = psd2.New(psd2.Options{
		BaseURL: s.Env.APIURL, RateMargin: -1, HTTPClient: &http.Client{Timeout: 10 * time.Second},
		Budget: unlimited{}, RetryBase: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond,
		OnRenew: func(ctx context.Context, c *psd2.Context) error { return provider.OnRenew(ctx, c) },
		OnCall:  s.observe,
	})
	if err != nil {
		t.Fatal(err)
	}
	provider, err = bankctx.New(bankctx.Config{
		Bank: s.PSD2, Store: store, Locker: redis.NewLocker(s.RDB, s.Keys), Tokens: s.Consents, Keys: pool,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Provider = provider

	var engine http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { engine.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	s.URL = srv.URL

	s.OAuth, err = oauth.New(oauth.Config{
		PublicURL: srv.URL,
		Bank: oauth.BankOAuth{ClientID: s.Bank.ClientID, ClientSecret: s.Bank.ClientSecret,
			AuthURL: s.Env.OAuthURL + "/auth", TokenURL: s.Env.TokenURL + "/v1/token"},
		Consents: s.Consents, Clients: s.Clients, States: redis.NewStateStore(s.RDB, s.Keys, 0, s.Clock),
		BankContexts: provider, Clock: s.Clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Gate, err = aisp.NewGate(aisp.GateConfig{Consents: s.OAuth, BankContexts: provider, Transitions: s.Consents, Clock: s.Clock})
	if err != nil {
		t.Fatal(err)
	}

	s.Engine = api.NewEngine(api.Options{})
	s.V1 = s.Engine.Group("/v1", api.Authenticate(s.Clients))
	engine = s.Engine
	s.Validator = apitest.NewValidator(t)
	s.HTTP = &http.Client{Transport: s.Validator.Transport(t, nil), Timeout: 30 * time.Second}
	return s
}

// OnCall adds a hook that hears about every bank call of the stack's
// psd2 client (psd2.Options.OnCall).
func (s *Stack) OnCall(fn func(psd2.CallInfo)) {
	s.callMu.Lock()
	s.callHooks = append(s.callHooks, fn)
	s.callMu.Unlock()
}

func (s *Stack) observe(ci psd2.CallInfo) {
	s.callMu.Lock()
	hooks := append([]func(psd2.CallInfo){}, s.callHooks...)
	s.callMu.Unlock()
	for _, h := range hooks {
		h(ci)
	}
}

// Service returns an aisp service on the stack's components.
func (s *Stack) Service(cfg aisp.Config) *aisp.Service {
	s.T.Helper()
	if cfg.Gate == nil {
		cfg.Gate = s.Gate
	}
	if cfg.Bank == nil {
		cfg.Bank = s.PSD2
	}
	if cfg.Cache == nil {
		// Account data is personal data: sealed in Redis, as in production.
		cfg.Cache = redis.NewCache(s.RDB, s.Keys, redis.CacheOptions{Sealer: s.Keyring})
	}
	if cfg.Access == nil {
		aw, err := redis.NewAccessWindow(s.RDB, s.Keys, 0, 0)
		if err != nil {
			s.T.Fatal(err)
		}
		cfg.Access = aw
	}
	svc, err := aisp.New(cfg)
	if err != nil {
		s.T.Fatal(err)
	}
	return svc
}

// PendingConsent creates a consent of the stack's client.
func (s *Stack) PendingConsent(scopes ...tpp.Scope) *tpp.Consent {
	s.T.Helper()
	c, err := s.Consents.CreateConsent(context.Background(), tpp.NewConsent{
		ClientID: s.Client.ID, UserRef: "u-1", Scopes: scopes, ReturnURL: ReturnURL,
		Actor: tpp.ActorClient(s.Client.ID),
	})
	if err != nil {
		s.T.Fatal(err)
	}
	return c
}

// ActiveConsent creates a consent and activates it with a real access
// token the emulated Person granted (the bank's control authorize endpoint
// and the token exchange), as the OAuth callback would.
func (s *Stack) ActiveConsent(scopes ...tpp.Scope) *tpp.Consent {
	s.T.Helper()
	c := s.PendingConsent(scopes...)
	token := s.Bank.AccessToken(s.T, s.Person.ID)
	c, err := s.Consents.TransitionConsent(context.Background(), tpp.ConsentTransition{
		ID: c.ID, From: tpp.ConsentPending, To: tpp.ConsentActive, BunqUserID: s.Person.ID,
		BunqUserName: s.Person.DisplayName, AccessToken: token, Actor: tpp.ActorPSU,
	})
	if err != nil {
		s.T.Fatal(err)
	}
	return c
}

// Consent reads a consent as stored.
func (s *Stack) Consent(id string) *tpp.Consent {
	s.T.Helper()
	c, err := s.Consents.ConsentByID(context.Background(), id)
	if err != nil {
		s.T.Fatal(err)
	}
	return c
}

// Transitions returns a consent's status changes as "from>to actor".
func (s *Stack) Transitions(id string) []string {
	s.T.Helper()
	recs, err := s.Audit.ListAudit(context.Background(), tpp.AuditFilter{ConsentID: id}, 0, 100)
	if err != nil {
		s.T.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		if r.Action == tpp.AuditConsentTransition {
			out = append(out, r.From+">"+r.To+" "+r.Actor)
		}
	}
	return out
}

// Response is an API answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body (numbers as json.Number: the API has no floats).
func (r Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var out map[string]any
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("decode %d %s: %v", r.Status, r.Body, err)
	}
	return out
}

// Code returns the problem code of an error answer.
func (r Response) Code(t testing.TB) string {
	t.Helper()
	c, _ := r.JSON(t)["code"].(string)
	return c
}

// Do sends an authenticated request with the API key; header pairs are
// added (key, value, key, value…). body is marshalled unless it is []byte.
func (s *Stack) Do(method, path string, body any, header ...string) Response {
	s.T.Helper()
	return s.DoAs(s.APIKey, method, path, body, header...)
}

// DoAs is Do with another API key ("" for none).
func (s *Stack) DoAs(key, method, path string, body any, header ...string) Response {
	s.T.Helper()
	var rd io.Reader
	if body != nil {
		b, ok := body.([]byte)
		if !ok {
			var err error
			if b, err = json.Marshal(body); err != nil {
				s.T.Fatal(err)
			}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		s.T.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	res, err := s.HTTP.Do(req)
	if err != nil {
		s.T.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		s.T.Fatal(err)
	}
	return Response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// Stats returns the emulator's request counts whose pattern contains sub.
func (s *Stack) Stats(sub string) int {
	s.T.Helper()
	n := 0
	for k, v := range s.Env.Stats(s.T) {
		if bytes.Contains([]byte(k), []byte(sub)) {
			n += v
		}
	}
	return n
}
