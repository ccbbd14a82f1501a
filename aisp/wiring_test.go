package aisp_test

import (
	"testing"

	"github.com/bunqtpp/tpp/aisp"
	"github.com/bunqtpp/tpp/api"
	"github.com/bunqtpp/tpp/oauth"
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
