package stacktest

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/bankctx"
	"github.com/bunqtpp/tpp/bankctx/bankctxtest"
	"github.com/bunqtpp/tpp/internal/banktest"
	"github.com/bunqtpp/tpp/internal/redistest"
	"github.com/bunqtpp/tpp/logging"
	"github.com/bunqtpp/tpp/psd2"
	"github.com/bunqtpp/tpp/redis"
	"github.com/bunqtpp/tpp/seal"
	"github.com/bunqtpp/tpp/sqlite"
)

// ReturnURL is the return URL every stack's fintech client registers.
const ReturnURL = "https://app.example/bunq/return"

// Options change what New builds. The zero value is a stack on a fresh
// emulator with a frozen clock, no logger and the bank client's own rate
// budget.
type Options struct {
	// Env is the emulated bank to use (several stacks may share one); nil
	// starts a fresh one for the test.
	Env *banktest.Env
	// Clock is the TPP side's clock (SQLite, and whatever the harness
	// hands it to); nil is a clock frozen at the test's start.
	Clock *Clock
	// LogLevel, when set, gives the components a JSON logger at that
	// level writing to Stack.Logs; nil gives them none (they discard).
	LogLevel slog.Leveler
	// CallbackPath is the OAuth redirect path on the stack's server
	// registered at the bank (oauth.CallbackPath).
	CallbackPath string
	// NotifyPath, when set, is the path on the stack's server the bank's
	// OAUTH callbacks go to.
	NotifyPath string
	// ReturnURLs are the fintech client's return URLs; nil is ReturnURL.
	ReturnURLs []string
	// Keys supplies the RSA keys of new bank contexts; nil is a running
	// bankctx.KeyPool of KeyPoolSize keys (0: 3).
	Keys        bankctx.Keys
	KeyPoolSize int
	// PSD2 and Contexts, when set, have the last word on the options of
	// the bank client and the context provider before they are built.
	PSD2     func(*psd2.Options)
	Contexts func(*bankctx.Config)
}

// Stack is one TPP's components on real dependencies: the emulated bank
// over HTTP with the TPP registered at it, a real redis-server, a SQLite
// file with sealed secrets, a fintech client with an API key, the bank
// client and the bank context provider, and an httptest server whose
// handler the harness sets (Serve). Everything stops when the test ends.
type Stack struct {
	T     testing.TB
	Clock *Clock
	Logs  *LogBuffer   // what Log wrote
	Log   *slog.Logger // nil unless Options.LogLevel

	Env  *banktest.Env
	Bank *bankctxtest.TPP // the TPP's registration at the bank
	// Person is the seeded user who grants consents, as read at the start:
	// read balances from Env.
	Person banktest.User

	Redis   *redistest.Server
	RDB     goredis.UniversalClient
	Keys    redis.Keys
	Keyring *seal.Keyring

	DB       *sqlite.DB
	Consents *sqlite.ConsentService
	Audit    *sqlite.AuditLog
	Clients  *sqlite.ClientService
	Client   *tpp.FintechClient
	APIKey   string

	PSD2     *psd2.Client
	Provider *bankctx.Provider

	Server *httptest.Server
	URL    string // Server's URL

	handler atomic.Pointer[http.Handler]
}

// New builds a Stack for t.
func New(t testing.TB, o Options) *Stack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s := &Stack{T: t, Clock: o.Clock, Logs: &LogBuffer{}}
	if s.Clock == nil {
		s.Clock = NewClock(time.Now().UTC())
	}
	if o.LogLevel != nil {
		s.Log = logging.New(s.Logs, logging.Options{Level: o.LogLevel.Level()})
	}

	// The server comes first: the bank needs its URLs at registration.
	s.Server = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	t.Cleanup(s.Server.Close)
	s.URL = s.Server.URL

	s.Env = o.Env
	if s.Env == nil {
		s.Env = banktest.Start(t)
	}
	notify := ""
	if o.NotifyPath != "" {
		notify = s.URL + o.NotifyPath
	}
	s.Bank = bankctxtest.Register(t, s.Env, s.URL+o.CallbackPath, notify)
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
	s.Keyring = kr
	s.DB, err = sqlite.Open(ctx, filepath.Join(t.TempDir(), "tpp.db"), s.Clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.DB.Close() })
	s.Consents = sqlite.NewConsentService(s.DB, kr)
	s.Audit = sqlite.NewAuditLog(s.DB)
	s.Clients = sqlite.NewClientService(s.DB, kr)
	returnURLs := o.ReturnURLs
	if returnURLs == nil {
		returnURLs = []string{ReturnURL}
	}
	s.Client, s.APIKey = s.NewClient("Acme Budget", returnURLs...)

	s.buildContexts(ctx, o)
	return s
}

// buildContexts makes the bank client and the provider of per-consent bank
// contexts (sealed in Redis, rebuilt under a Redis lock).
func (s *Stack) buildContexts(ctx context.Context, o Options) {
	t := s.T
	store, err := redis.NewContextStore(s.RDB, s.Keys, s.Keyring, 0)
	if err != nil {
		t.Fatal(err)
	}
	keys := o.Keys
	if keys == nil {
		size := o.KeyPoolSize
		if size == 0 {
			size = 3
		}
		pool := bankctx.NewKeyPool(size, 1)
		pool.Start(ctx)
		keys = pool
	}
	var provider *bankctx.Provider // the client's renewals go to it
	po := psd2.Options{
		BaseURL: s.Env.APIURL, RateMargin: -1, Logger: s.Log, HTTPClient: &http.Client{Timeout: 10 * time.Second},
		OnRenew: func(ctx context.Context, c *psd2.Context) error { return provider.OnRenew(ctx, c) },
	}
	if o.PSD2 != nil {
		o.PSD2(&po)
	}
	s.PSD2, err = psd2.New(po)
	if err != nil {
		t.Fatal(err)
	}
	cfg := bankctx.Config{
		Bank: s.PSD2, Store: store, Locker: redis.NewLocker(s.RDB, s.Keys), Tokens: s.Consents, Keys: keys, Logger: s.Log,
	}
	if o.NotifyPath != "" {
		cfg.NotifyURL = s.URL + o.NotifyPath
	}
	if o.Contexts != nil {
		o.Contexts(&cfg)
	}
	provider, err = bankctx.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Provider = provider
}

// Serve makes h the handler of the stack's server. Until then the server
// answers 503.
func (s *Stack) Serve(h http.Handler) { s.handler.Store(&h) }

func (s *Stack) serveHTTP(w http.ResponseWriter, r *http.Request) {
	h := s.handler.Load()
	if h == nil {
		http.Error(w, "stacktest: no handler yet", http.StatusServiceUnavailable)
		return
	}
	(*h).ServeHTTP(w, r)
}

// AuthURL is the bank's OAuth authorize endpoint (oauth.BankOAuth.AuthURL).
func (s *Stack) AuthURL() string { return s.Env.OAuthURL + "/auth" }

// TokenURL is the bank's OAuth token endpoint (oauth.BankOAuth.TokenURL).
func (s *Stack) TokenURL() string { return s.Env.TokenURL + "/v1/token" }

// States is a Redis store of OAuth states on the stack's clock.
func (s *Stack) States() *redis.StateStore { return redis.NewStateStore(s.RDB, s.Keys, 0, s.Clock) }

// NewClient creates another fintech client and returns it with its API key.
func (s *Stack) NewClient(name string, returnURLs ...string) (*tpp.FintechClient, string) {
	s.T.Helper()
	cl, secrets, err := s.Clients.CreateClient(context.Background(), tpp.NewClient{Name: name, ReturnURLs: returnURLs})
	if err != nil {
		s.T.Fatal(err)
	}
	return cl, secrets.APIKey
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

// Transitions returns a consent's status changes from the audit log as
// "from>to actor".
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

// Decide has Person approve or deny at the bank (the emulator's control
// endpoint) the authorization bankAuthURL asks for, and returns the
// redirect to the TPP's callback.
func (s *Stack) Decide(bankAuthURL *url.URL, decision string) string {
	s.T.Helper()
	q := bankAuthURL.Query()
	return s.Env.Authorize(s.T, banktest.AuthorizeRequest{
		ClientID: q.Get("client_id"), RedirectURI: q.Get("redirect_uri"), State: q.Get("state"),
		UserID: s.Person.ID, Decision: decision,
	})
}
