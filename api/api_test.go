package api_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/api"
)

type body struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

func newEngine(t *testing.T) *gin.Engine {
	t.Helper()
	e := api.NewEngine(api.Options{})
	e.POST("/echo", func(c *gin.Context) {
		var b body
		if err := api.DecodeJSON(c, &b); err != nil {
			api.Error(c, err)
			return
		}
		c.JSON(200, b)
	})
	e.GET("/panic", func(c *gin.Context) { panic("secret detail sess-token-1") })
	e.GET("/limited", func(c *gin.Context) {
		api.Error(c, &tpp.Error{Code: tpp.EBankRateLimited, Message: "bunq asks us to slow down", RetryAfter: 2500 * time.Millisecond})
	})
	e.GET("/internal", func(c *gin.Context) { api.Error(c, errors.New("db is on fire at /var/lib/x")) })
	return e
}

func do(t *testing.T, e http.Handler, method, path, reqBody string, hdr map[string]string) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(reqBody))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	var m map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &m)
	return rec, m
}

func TestDecodeAndProblems(t *testing.T) {
	e := newEngine(t)
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"ok", "POST", "/echo", `{"name":"a","count":1}`, 200, ""},
		{"unknown field", "POST", "/echo", `{"name":"a","extra":1}`, 400, tpp.EInvalid},
		{"empty body", "POST", "/echo", ``, 400, tpp.EInvalid},
		{"not json", "POST", "/echo", `{name:`, 400, tpp.EInvalid},
		{"wrong type", "POST", "/echo", `{"count":"x"}`, 400, tpp.EInvalid},
		{"trailing data", "POST", "/echo", `{"name":"a"} {"name":"b"}`, 400, tpp.EInvalid},
		{"too large", "POST", "/echo", `{"name":"` + strings.Repeat("x", api.MaxBodyBytes) + `"}`, 413, tpp.EBodyTooLarge},
		{"no route", "GET", "/nope", ``, 404, tpp.ENotFound},
		{"wrong method", "DELETE", "/echo", ``, 405, tpp.EMethodNotAllowed},
		{"panic", "GET", "/panic", ``, 500, tpp.EInternal},
		{"internal", "GET", "/internal", ``, 500, tpp.EInternal},
		{"rate limited", "GET", "/limited", ``, 429, tpp.EBankRateLimited},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, m := do(t, e, tt.method, tt.path, tt.body, nil)
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			if rec.Header().Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id on response")
			}
			if tt.code == "" {
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != api.ProblemContentType {
				t.Errorf("Content-Type = %q, want problem+json", ct)
			}
			if m["code"] != tt.code || int(m["status"].(float64)) != tt.status || m["request_id"] != rec.Header().Get("X-Request-Id") {
				t.Errorf("problem = %v", m)
			}
			if strings.Contains(rec.Body.String(), "sess-token-1") || strings.Contains(rec.Body.String(), "/var/lib") {
				t.Errorf("5xx leaked internal detail: %s", rec.Body)
			}
		})
	}
}

func TestRetryAfterRoundsUp(t *testing.T) {
	rec, _ := do(t, newEngine(t), "GET", "/limited", "", nil)
	if got := rec.Header().Get("Retry-After"); got != "3" {
		t.Fatalf("Retry-After = %q, want 3", got)
	}
}

func TestRequestIDKeptOrReplaced(t *testing.T) {
	e := newEngine(t)
	rec, _ := do(t, e, "GET", "/nope", "", map[string]string{"X-Request-Id": "abc-123.x_y"})
	if got := rec.Header().Get("X-Request-Id"); got != "abc-123.x_y" {
		t.Errorf("valid incoming id not kept: %q", got)
	}
	rec, _ = do(t, e, "GET", "/nope", "", map[string]string{"X-Request-Id": "bad id\r\n<script>"})
	if got := rec.Header().Get("X-Request-Id"); !strings.HasPrefix(got, "req_") {
		t.Errorf("invalid incoming id not replaced: %q", got)
	}
}

// An error the Unavailable hook recognises (Redis down, the database
// locked) answers 503 service_unavailable with Retry-After; others stay 500.
func TestUnavailableDependencyAnswers503(t *testing.T) {
	t.Parallel()
	errRedisDown := errors.New("dial tcp 127.0.0.1:6379: connection refused")
	e := api.NewEngine(api.Options{Unavailable: func(err error) string {
		if errors.Is(err, errRedisDown) {
			return "Redis"
		}
		return ""
	}})
	e.GET("/down", func(c *gin.Context) { api.Error(c, fmt.Errorf("oauth: store state: %w", errRedisDown)) })
	e.GET("/bug", func(c *gin.Context) { api.Error(c, errors.New("nil map")) })
	for path, want := range map[string]int{"/down": 503, "/bug": 500} {
		w := httptest.NewRecorder()
		e.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		var p struct {
			Code   string `json:"code"`
			Detail string `json:"detail"`
		}
		_ = json.Unmarshal(w.Body.Bytes(), &p)
		if w.Code != want || w.Header().Get("Content-Type") != api.ProblemContentType {
			t.Fatalf("%s: %d %s", path, w.Code, w.Body)
		}
		if want == 503 && (p.Code != tpp.EServiceUnavailable || w.Header().Get("Retry-After") != "5" || strings.Contains(p.Detail, "6379")) {
			t.Fatalf("%s: %s Retry-After %q", path, w.Body, w.Header().Get("Retry-After"))
		}
		if want == 500 && (p.Code != tpp.EInternal || w.Header().Get("Retry-After") != "") {
			t.Fatalf("%s: %s", path, w.Body)
		}
	}
}
