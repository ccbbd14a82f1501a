package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/bunqtpp/tpp"
)

// routeParam matches a gin path parameter (:id) or wildcard (*path).
var routeParam = regexp.MustCompile(`[:*][A-Za-z_]+`)

// TestServeV1RoutesNeedAPIKey walks every route of the engine serve
// builds: each one under /v1 must answer 401 unauthorized (problem+json,
// with a Bearer challenge) to a request without an API key. A route
// mounted outside the authenticated group fails it.
func TestServeV1RoutesNeedAPIKey(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	fs := flag.NewFlagSet("tpp serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg, err := parseConfig(fs, h.serveArgs()[1:], os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	engine, started, done := make(chan *gin.Engine, 1), make(chan string, 1), make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		done <- serve(ctx, cfg, serveEnv{stdout: h.out, stderr: h.logs, clock: tpp.SystemClock{},
			prepare: func(_ context.Context, a *app) error { engine <- a.engine; return nil },
			started: func(u string) { started <- u },
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	var e *gin.Engine
	select {
	case e = <-engine:
	case err := <-done:
		t.Fatalf("serve stopped: %v\n%s", err, tail(h.logs.String(), 4000))
	case <-time.After(time.Minute):
		t.Fatal("serve did not start")
	}
	<-started

	var checked []string
	for _, r := range e.Routes() {
		if r.Path != "/v1" && !strings.HasPrefix(r.Path, "/v1/") {
			continue
		}
		req, _ := http.NewRequest(r.Method, h.URL+routeParam.ReplaceAllString(r.Path, "x"), strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			Status int    `json:"status"`
			Code   string `json:"code"`
		}
		derr := json.NewDecoder(res.Body).Decode(&p)
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized || derr != nil || p.Status != http.StatusUnauthorized ||
			!strings.HasPrefix(res.Header.Get("Content-Type"), "application/problem+json") ||
			!strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer ") {
			t.Errorf("%s %s without an API key: %d %s %+v (%v); want 401 problem+json with a Bearer challenge",
				r.Method, r.Path, res.StatusCode, res.Header.Get("Content-Type"), p, derr)
		}
		checked = append(checked, r.Method+" "+r.Path)
	}
	// Every role's routes were walked: the walk itself cannot come up empty.
	for _, want := range []string{"POST /v1/consents", "DELETE /v1/consents/:id", "GET /v1/consents/:id/accounts/:account_id/transactions",
		"POST /v1/consents/:id/funds-confirmations", "POST /v1/consents/:id/payments", "GET /v1/single-payments/:payment_id"} {
		if !strings.Contains(strings.Join(checked, "\n")+"\n", want+"\n") {
			t.Errorf("route %s not found among the /v1 routes %v", want, checked)
		}
	}
}
