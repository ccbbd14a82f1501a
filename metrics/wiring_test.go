package metrics_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/bunqtpp/tpp/api"
	"github.com/bunqtpp/tpp/bankctx"
	"github.com/bunqtpp/tpp/metrics"
	"github.com/bunqtpp/tpp/psd2"
	"github.com/bunqtpp/tpp/redis"
	"github.com/bunqtpp/tpp/webhook"
)

// TestHooksFitTheirPackages keeps the hooks' signatures in step with the
// packages that call them: this fails to compile when one drifts.
func TestHooksFitTheirPackages(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	_ = api.Options{Observe: m.APIObserver()}
	_ = redis.RateBudget{OnWait: m.ObserveBudgetWait}
	_ = webhook.Options{OnResult: m.ObserveWebhook}
	_ = bankctx.Config{OnRebuild: m.OnContextRebuild()}
	_ = psd2.Options{
		OnCall: func(ci psd2.CallInfo) { m.ObserveBankCall(ci.Method, ci.Path, ci.Status, ci.Duration) },
		Budget: m.WrapBudget(psd2.NewMemoryBudget(nil)),
	}
}

// TestAPIEngineRequestsAreObserved runs real requests through the API's gin
// engine with the metrics observer.
func TestAPIEngineRequestsAreObserved(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	e := api.NewEngine(api.Options{Observe: m.APIObserver()})
	e.GET("/v1/consents/:id", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"id": c.Param("id")}) })
	srv := httptest.NewServer(e)
	defer srv.Close()
	for _, p := range []string{"/v1/consents/con_a", "/v1/consents/con_b", "/v1/nope/123"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	f := scrape(t, m.Handler())
	if n, _ := f.histogram(t, "tpp_http_request_duration_seconds", map[string]string{"route": "/v1/consents/:id", "method": "GET", "status": "200"}); n != 2 {
		t.Errorf("consent route count = %d, want 2", n)
	}
	if n, _ := f.histogram(t, "tpp_http_request_duration_seconds", map[string]string{"route": "unmatched", "method": "GET", "status": "404"}); n != 1 {
		t.Errorf("unmatched count = %d, want 1", n)
	}
}
