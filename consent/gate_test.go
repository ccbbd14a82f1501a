package consent_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/aisp"
	"github.com/bunqtpp/tpp/aisp/aisptest"
	"github.com/bunqtpp/tpp/cbpii"
	"github.com/bunqtpp/tpp/internal/banktest"
	"github.com/bunqtpp/tpp/pisp"
	"github.com/bunqtpp/tpp/sqlite"
)

// stack is the whole TPP of the three roles on real components (aisptest:
// the emulated bank over HTTP, redis-server, SQLite), every role opening
// consents at the one gate, every exchange checked against the OpenAPI
// document.
type stack struct {
	*aisptest.Stack
	account string           // the user's main account, as the API names it
	payee   banktest.Account // another user's account
}

func newStack(t *testing.T) *stack {
	t.Helper()
	s := &stack{Stack: aisptest.New(t)}
	h, err := aisp.NewHandler(s.Service(aisp.Config{}))
	if err != nil {
		t.Fatal(err)
	}
	h.Register(s.V1)
	funds, err := cbpii.New(cbpii.Config{Gate: s.Gate, Bank: s.PSD2, Audit: s.Audit, Clock: s.Clock})
	if err != nil {
		t.Fatal(err)
	}
	fh, err := cbpii.NewHandler(funds)
	if err != nil {
		t.Fatal(err)
	}
	fh.Register(s.V1)
	payments, err := pisp.New(pisp.Config{
		Payments: sqlite.NewPaymentService(s.DB), Consents: s.Consents, Idempotency: sqlite.NewIdempotencyStore(s.DB),
		Bank: s.PSD2, Contexts: s.Provider, Gate: s.Gate, AuthorizeURL: s.OAuth.AuthorizeURL, Clock: s.Clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	ph, err := pisp.NewHandler(payments)
	if err != nil {
		t.Fatal(err)
	}
	ph.Register(s.V1)
	s.account = tpp.AccountID(s.Person.Accounts[0].ID)
	for _, u := range s.Env.Users(t) {
		if u.ID != s.Person.ID && len(u.Accounts) > 0 {
			s.payee = u.Accounts[0]
		}
	}
	return s
}

// route is one request of a role that uses a consent.
type route struct {
	name  string
	scope tpp.Scope // the scope it needs
	other tpp.Scope // a scope that is not enough
	ok    int       // its answer for a usable consent
	send  func(s *stack, consentID string, n int) aisptest.Response
}

var routes = []route{
	{"AISP GET accounts", tpp.ScopeAccounts, tpp.ScopeFunds, http.StatusOK, func(s *stack, id string, _ int) aisptest.Response {
		return s.Do("GET", "/v1/consents/"+id+"/accounts", nil)
	}},
	{"AISP GET account", tpp.ScopeAccounts, tpp.ScopePayments, http.StatusOK, func(s *stack, id string, _ int) aisptest.Response {
		return s.Do("GET", "/v1/consents/"+id+"/accounts/"+s.account, nil)
	}},
	{"AISP GET transactions", tpp.ScopeAccounts, tpp.ScopeFunds, http.StatusOK, func(s *stack, id string, _ int) aisptest.Response {
		return s.Do("GET", "/v1/consents/"+id+"/accounts/"+s.account+"/transactions", nil)
	}},
	{"PISP POST payment", tpp.ScopePayments, tpp.ScopeAccounts, http.StatusCreated, func(s *stack, id string, n int) aisptest.Response {
		return s.Do("POST", "/v1/consents/"+id+"/payments", map[string]any{
			"account_id":   s.account,
			"amount":       map[string]string{"amount": "1.00", "currency": "EUR"},
			"counterparty": map[string]string{"iban": s.payee.IBAN, "name": "Bakkerij de Korenschoof"},
			"description":  "Bread",
		}, "Idempotency-Key", fmt.Sprintf("gate-%d", n))
	}},
	{"CBPII POST funds confirmation", tpp.ScopeFunds, tpp.ScopeAccounts, http.StatusOK, func(s *stack, id string, _ int) aisptest.Response {
		return s.Do("POST", "/v1/consents/"+id+"/funds-confirmations", map[string]any{
			"account_id": s.account, "amount": map[string]string{"amount": "1.00", "currency": "EUR"},
		})
	}},
}

// phase orders the making of consents around the clock's two jumps: a
// consent of phase 0 lives through both (past its re-authorization date),
// one of phase 1 through the second (past its authorization deadline).
type phase int

const (
	beforeReauthDate phase = iota
	beforeDeadline
	now
)

// state is a consent's state when a request comes, and what the gate
// answers for it, granted the route's scope or not.
type state struct {
	name  string
	phase phase
	make  func(s *stack, scopes ...tpp.Scope) string
	// ok: a request with the scope is served; otherwise status and code
	// are the answer whatever the scope (the status is refused first).
	ok     bool
	status int
	code   string
	reauth bool              // the answer carries reauthorize_url
	after  tpp.ConsentStatus // the consent's status after the request
	moved  string            // the audited move the request made, if any
}

var states = []state{
	{name: "pending", phase: now, make: pending, status: 409, code: tpp.EConsentNotActive, after: tpp.ConsentPending},
	{name: "pending past its deadline", phase: beforeDeadline, make: pending, status: 403, code: tpp.EConsentExpired,
		after: tpp.ConsentExpired, moved: "pending>expired system"},
	{name: "active", phase: now, make: active, ok: true, after: tpp.ConsentActive},
	{name: "active past its re-authorization date", phase: beforeReauthDate, make: active, status: 403, code: tpp.EConsentReauthRequired,
		reauth: true, after: tpp.ConsentReauthRequired, moved: "active>reauth_required system"},
	{name: "reauth_required", phase: now, make: moved(active, tpp.ConsentReauthRequired), status: 403, code: tpp.EConsentReauthRequired,
		reauth: true, after: tpp.ConsentReauthRequired},
	{name: "revoked", phase: now, make: moved(active, tpp.ConsentRevoked), status: 403, code: tpp.EConsentRevoked, after: tpp.ConsentRevoked},
	{name: "rejected", phase: now, make: moved(pending, tpp.ConsentRejected), status: 409, code: tpp.EConsentNotActive, after: tpp.ConsentRejected},
	{name: "expired", phase: now, make: moved(pending, tpp.ConsentExpired), status: 403, code: tpp.EConsentExpired, after: tpp.ConsentExpired},
	{name: "another client's", phase: now, make: othersActive, status: 404, code: tpp.EConsentNotFound, after: tpp.ConsentActive},
	{name: "unknown", phase: now, make: func(*stack, ...tpp.Scope) string { return "con_unknown" }, status: 404, code: tpp.EConsentNotFound},
}

func pending(s *stack, scopes ...tpp.Scope) string { return s.PendingConsent(scopes...).ID }
func active(s *stack, scopes ...tpp.Scope) string  { return s.ActiveConsent(scopes...).ID }

// moved makes a consent with mk and moves it to status, as the flow, a
// client or the janitor would.
func moved(mk func(*stack, ...tpp.Scope) string, to tpp.ConsentStatus) func(*stack, ...tpp.Scope) string {
	return func(s *stack, scopes ...tpp.Scope) string {
		id := mk(s, scopes...)
		t := tpp.ConsentTransition{ID: id, To: to, Actor: tpp.ActorSystem}
		if to == tpp.ConsentRejected {
			t.ErrorCode, t.Actor = "access_denied", tpp.ActorPSU
		}
		if _, err := s.Consents.TransitionConsent(context.Background(), t); err != nil {
			s.T.Fatal(err)
		}
		return id
	}
}

// othersActive is an active consent of another fintech client.
func othersActive(s *stack, scopes ...tpp.Scope) string {
	ctx := context.Background()
	other, _ := s.NewClient("Other", aisptest.ReturnURL)
	c, err := s.Consents.CreateConsent(ctx, tpp.NewConsent{ClientID: other.ID, UserRef: "u-2", Scopes: scopes,
		ReturnURL: aisptest.ReturnURL, Actor: tpp.ActorClient(other.ID)})
	if err != nil {
		s.T.Fatal(err)
	}
	if _, err := s.Consents.TransitionConsent(ctx, tpp.ConsentTransition{ID: c.ID, To: tpp.ConsentActive,
		BunqUserID: s.Person.ID, BunqUserName: s.Person.DisplayName, AccessToken: s.Bank.AccessToken(s.T, s.Person.ID),
		Actor: tpp.ActorPSU}); err != nil {
		s.T.Fatal(err)
	}
	return c.ID
}

// cell is one request of the table: a route, a consent state, the route's
// scope granted or not.
type cell struct {
	route   route
	state   state
	granted bool
	id      string
}

func (c *cell) name() string {
	scope := "scope granted"
	if !c.granted {
		scope = "scope not granted"
	}
	return c.route.name + "/" + c.state.name + "/" + scope
}

// answer is what a request got, as the roles must agree on it.
type answer struct {
	status int
	code   string
	reauth bool
}

// Every role that uses a consent answers the same for the same consent
// state: the one gate decides. Each request gets its own consent, so
// every role meets the state fresh (a deadline not yet applied).
func TestEveryRoleAnswersTheSameForTheSameConsent(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	var cells []*cell
	for _, r := range routes {
		for _, st := range states {
			for _, granted := range []bool{true, false} {
				cells = append(cells, &cell{route: r, state: st, granted: granted})
			}
		}
	}
	// Make the consents phase by phase, moving the clock between them.
	for _, ph := range []phase{beforeReauthDate, beforeDeadline, now} {
		for _, c := range cells {
			if c.state.phase == ph {
				scope := c.route.scope
				if !c.granted {
					scope = c.route.other
				}
				c.id = c.state.make(s, scope)
			}
		}
		switch ph {
		case beforeReauthDate:
			s.Clock.Advance(tpp.ConsentReauthAfter + time.Hour)
		case beforeDeadline:
			s.Clock.Advance(tpp.ConsentPendingTTL + time.Minute)
		}
	}

	got := map[string]map[answer][]string{} // state and scope → answers → routes
	for n, c := range cells {
		res := c.route.send(s, c.id, n)
		a := answer{status: res.Status}
		m := res.JSON(t)
		if res.Status >= 400 {
			a.code, _ = m["code"].(string)
		}
		url, hasURL := m["reauthorize_url"]
		a.reauth = hasURL
		want := answer{status: c.state.status, code: c.state.code, reauth: c.state.reauth}
		if c.state.ok {
			want = answer{status: c.route.ok}
			if !c.granted {
				want = answer{status: 403, code: tpp.EScopeNotGranted}
			}
		}
		if a != want {
			t.Errorf("%s: %d %s, want %+v", c.name(), res.Status, res.Body, want)
		}
		if hasURL && url != s.OAuth.AuthorizeURL(c.id) {
			t.Errorf("%s: reauthorize_url %v, want %s", c.name(), url, s.OAuth.AuthorizeURL(c.id))
		}
		key := c.state.name + "/" + fmt.Sprint(c.granted)
		if got[key] == nil {
			got[key] = map[answer][]string{}
		}
		if a.status < 300 {
			a.status = 200 // created or read: served either way
		}
		got[key][a] = append(got[key][a], c.route.name)
		checkConsentAfter(t, s, c)
	}
	for key, answers := range got {
		if len(answers) != 1 {
			t.Errorf("%s: the roles disagree: %v", key, answers)
		}
	}
}

// checkConsentAfter checks what the request left of the consent: the
// deadline applied by whichever role came, audited as the system's.
func checkConsentAfter(t *testing.T, s *stack, c *cell) {
	t.Helper()
	if c.state.after == "" {
		return
	}
	if st := s.Consent(c.id).Status; st != c.state.after {
		t.Errorf("%s: consent is %s after the request, want %s", c.name(), st, c.state.after)
	}
	if c.state.moved == "" {
		return
	}
	tr := s.Transitions(c.id)
	if len(tr) == 0 || tr[len(tr)-1] != c.state.moved {
		t.Errorf("%s: audit trail %v, want it to end with %q", c.name(), tr, c.state.moved)
	}
}
