package aisp_test

import (
	"errors"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/aisp"
	"github.com/bunqtpp/tpp/aisp/aisptest"
	"github.com/bunqtpp/tpp/api"
	"github.com/bunqtpp/tpp/oauth"
	"github.com/bunqtpp/tpp/sqlite"
)

// The account routes live under the consents routes of package oauth; gin
// panics at registration if their parameter names differ.
func TestRoutesCoexistWithConsents(t *testing.T) {
	t.Parallel()
	s, svc := setup(t, aisp.Config{})
	oh, err := oauth.NewHandler(s.OAuth)
	if err != nil {
		t.Fatal(err)
	}
	e := api.NewEngine(api.Options{})
	v1 := e.Group("/v1", api.Authenticate(s.Clients))
	oh.Register(v1)
	h, _ := aisp.NewHandler(svc)
	h.Register(v1)
	var paths []string
	for _, r := range e.Routes() {
		paths = append(paths, r.Method+" "+r.Path)
	}
	for _, want := range []string{"GET /v1/consents/:id", "GET /v1/consents/:id/accounts/:account_id/transactions"} {
		found := false
		for _, p := range paths {
			found = found || p == want
		}
		if !found {
			t.Errorf("route %s missing from %v", want, paths)
		}
	}
}

// withLink is the bare consent store plus the re-authorization link: a
// wiring without oauth's own deadline handling.
type withLink struct{ *sqlite.ConsentService }

func (withLink) AuthorizeURL(id string) string { return "https://tpp.example/connect/" + id }

// Even on a bare store, a consent past its 180 days is never served.
func TestGateAppliesReauthOnABareStore(t *testing.T) {
	t.Parallel()
	s := aisptest.New(t)
	gate, err := aisp.NewGate(aisp.GateConfig{Consents: withLink{s.Consents}, BankContexts: s.Provider, Transitions: s.Consents, Clock: s.Clock})
	if err != nil {
		t.Fatal(err)
	}
	c := s.ActiveConsent(tpp.ScopeAccounts)
	if _, err := gate.Open(t.Context(), s.Client.ID, c.ID, tpp.ScopeAccounts); err != nil {
		t.Fatal(err)
	}
	s.Clock.Advance(tpp.ConsentReauthAfter + time.Second)
	_, err = gate.Open(t.Context(), s.Client.ID, c.ID, tpp.ScopeAccounts)
	var re *aisp.ReauthError
	if tpp.ErrorCode(err) != tpp.EConsentReauthRequired || !errors.As(err, &re) || re.URL != "https://tpp.example/connect/"+c.ID {
		t.Fatalf("past due: %v", err)
	}
	if tr := s.Transitions(c.ID); len(tr) != 2 || tr[1] != "active>reauth_required system" {
		t.Errorf("audit trail %v", tr)
	}
}
