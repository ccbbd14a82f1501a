package aisp_test

import (
	"testing"

	"github.com/bunqtpp/tpp/aisp"
	"github.com/bunqtpp/tpp/api"
	"github.com/bunqtpp/tpp/oauth"
	"github.com/bunqtpp/tpp/web"
)

// The account routes live under the consents routes of package oauth; gin
// panics at registration if their parameter names differ.
func TestRoutesCoexistWithConsents(t *testing.T) {
	t.Parallel()
	s, svc := setup(t, aisp.Config{})
	pages, err := web.New("")
	if err != nil {
		t.Fatal(err)
	}
	oh, err := oauth.NewHandler(oauth.HandlerConfig{
		Service: s.OAuth, Pages: pages, Auth: api.Authenticate(s.Clients), Client: api.ClientFromGin,
	})
	if err != nil {
		t.Fatal(err)
	}
	e := api.NewEngine(api.Options{})
	oh.Register(e)
	h, _ := aisp.NewHandler(svc)
	h.Register(e.Group("/v1", api.Authenticate(s.Clients)))
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
