// Package aisptest builds the whole read stack for the tests of aisp and
// cbpii on real components: the emulated bank over HTTP, a real
// redis-server, a SQLite file, the consent services of oauth and sqlite,
// bankctx contexts, and the API engine on an httptest server whose client
// validates every exchange against the OpenAPI document.
package aisptest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/aisp"
	"github.com/bunqtpp/tpp/api"
	"github.com/bunqtpp/tpp/consent"
	"github.com/bunqtpp/tpp/internal/apitest"
	"github.com/bunqtpp/tpp/internal/banktest"
	"github.com/bunqtpp/tpp/internal/stacktest"
	"github.com/bunqtpp/tpp/oauth"
	"github.com/bunqtpp/tpp/psd2"
	"github.com/bunqtpp/tpp/redis"
)

// Clock is a settable clock for the TPP side (the bank keeps its own).
type Clock = stacktest.Clock

// ReturnURL is the test client's registered return URL.
const ReturnURL = stacktest.ReturnURL

// Stack is one TPP on real components (the embedded stacktest.Stack, on a
// frozen clock), with the consent service, the consent gate and an API
// engine. Register handlers on V1 before the first request.
type Stack struct {
	*stacktest.Stack
	OAuth *oauth.Service
	Gate  *consent.Gate

	callMu    sync.Mutex
	callHooks []func(psd2.CallInfo)

	Engine    *gin.Engine
	V1        *gin.RouterGroup
	Validator *apitest.Validator
	HTTP      *http.Client // validates every exchange
}

// New builds a Stack; everything stops when t ends.
func New(t testing.TB) *Stack {
	t.Helper()
	return NewOn(t, nil)
}

// NewOn builds a Stack against env (a fresh emulator when nil), so a test
// can pick the emulator's switches (banktest options).
func NewOn(t testing.TB, env *banktest.Env) *Stack {
	t.Helper()
	s := &Stack{}
	s.Stack = stacktest.New(t, stacktest.Options{
		Env: env, CallbackPath: oauth.CallbackPath, KeyPoolSize: 2,
		PSD2: func(o *psd2.Options) {
			o.Budget, o.RetryBase, o.RetryMax = stacktest.Unlimited{}, 5*time.Millisecond, 20*time.Millisecond
			o.OnCall = s.observe
		},
	})

	var err error
	// The gate names oauth's consent page; oauth reads through the gate's
	// deadlines: the closure breaks the cycle, as in cmd/tpp.
	s.Gate, err = consent.NewGate(consent.Config{
		Store: s.Consents, BankContexts: s.Provider, Clock: s.Clock,
		AuthorizeURL: func(id string) string { return s.OAuth.AuthorizeURL(id) },
	})
	if err != nil {
		t.Fatal(err)
	}
	s.OAuth, err = oauth.New(oauth.Config{
		PublicURL: s.URL, Clock: s.Clock,
		Bank:     oauth.BankOAuth{ClientID: s.Bank.ClientID, ClientSecret: s.Bank.ClientSecret, AuthURL: s.AuthURL(), TokenURL: s.TokenURL()},
		Consents: s.Consents, Clients: s.Clients, States: s.States(), BankContexts: s.Provider, Deadlines: s.Gate,
	})
	if err != nil {
		t.Fatal(err)
	}

	s.Engine = api.NewEngine(api.Options{})
	s.V1 = s.Engine.Group("/v1", api.Authenticate(s.Clients))
	s.Serve(s.Engine)
	s.Validator = apitest.NewValidator(t)
	s.HTTP = stacktest.APIClient(t, s.Validator)
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
		cfg.Cache = redis.NewCache(s.RDB, s.Keys, redis.CacheOptions{Sealer: s.Keyring, Clock: s.Clock})
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
