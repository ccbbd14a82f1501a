package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/bunqtpp/tpp"
)

// The rate limit's three answers: through with the RateLimit headers, 429
// rate_limited with Retry-After, and 503 service_unavailable when the count
// cannot be read (fail closed).
func TestRateLimitAnswers(t *testing.T) {
	gin.SetMode(gin.TestMode)
	store := &keyStore{keys: map[string]*tpp.FintechClient{"k": {ID: "cli_1", Status: tpp.ClientActive}}}
	cases := []struct {
		name       string
		decision   RateDecision
		err        error
		status     int
		code       string
		retryAfter string
	}{
		{"allowed", RateDecision{Allowed: true, Limit: 100, Remaining: 99, ResetAfter: 20 * time.Millisecond}, nil, http.StatusOK, "", ""},
		{"over the limit", RateDecision{Limit: 100, RetryAfter: 1500 * time.Millisecond, ResetAfter: 2 * time.Second}, nil, http.StatusTooManyRequests, tpp.ERateLimited, "2"},
		{"redis down", RateDecision{}, errors.New("dial tcp: connection refused"), http.StatusServiceUnavailable, tpp.EServiceUnavailable, "2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var gotClient string
			allow := func(_ context.Context, clientID string) (RateDecision, error) {
				gotClient = clientID
				return tc.decision, tc.err
			}
			e := gin.New()
			e.GET("/x", AuthenticateLimited(store, allow, "50;w=1;burst=100"), func(c *gin.Context) { c.String(http.StatusOK, "ok") })
			req := httptest.NewRequest(http.MethodGet, "/x", nil)
			req.Header.Set("Authorization", "Bearer k")
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			if rec.Code != tc.status || gotClient != "cli_1" {
				t.Fatalf("status %d for client %q, want %d for cli_1: %s", rec.Code, gotClient, tc.status, rec.Body)
			}
			if tc.code != "" && !strings.Contains(rec.Body.String(), `"code":"`+tc.code+`"`) {
				t.Fatalf("body %s, want code %s", rec.Body, tc.code)
			}
			if got := rec.Header().Get("Retry-After"); got != tc.retryAfter {
				t.Fatalf("Retry-After = %q, want %q", got, tc.retryAfter)
			}
			if tc.err != nil {
				if rec.Header().Get("RateLimit-Limit") != "" {
					t.Fatal("RateLimit headers without a count")
				}
				return
			}
			want := map[string]string{"RateLimit-Policy": "50;w=1;burst=100", "RateLimit-Limit": "100", "RateLimit-Remaining": "99", "RateLimit-Reset": "1"}
			if tc.status != http.StatusOK {
				want["RateLimit-Remaining"], want["RateLimit-Reset"] = "0", "2"
			}
			for h, v := range want {
				if got := rec.Header().Get(h); got != v {
					t.Errorf("%s = %q, want %q", h, got, v)
				}
			}
		})
	}
	// An unknown key is refused before anything is counted.
	counted := false
	e := gin.New()
	e.GET("/x", AuthenticateLimited(store, func(context.Context, string) (RateDecision, error) {
		counted = true
		return RateDecision{Allowed: true}, nil
	}, "p"), func(c *gin.Context) {})
	req := httptest.NewRequest(http.MethodGet, "/x", nil)
	req.Header.Set("Authorization", "Bearer nope")
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized || counted {
		t.Fatalf("unknown key: %d, counted %v", rec.Code, counted)
	}
}
