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

func TestNoStoreOnEveryAPIAnswer(t *testing.T) {
	e := api.NewEngine(api.Options{})
	e.GET("/v1/things", func(c *gin.Context) { api.JSON(c, 200, gin.H{"ok": true}) })
	e.GET("/v1/fail", func(c *gin.Context) { api.Error(c, tpp.Errorf(tpp.EInvalid, "no")) })
	e.GET("/v1/panic", func(c *gin.Context) { panic("boom") })
	e.GET("/docs", func(c *gin.Context) { c.String(200, "docs") })
	for _, path := range []string{"/v1/things", "/v1/fail", "/v1/panic", "/v1/nothing-here", "/v1"} {
		rec, _ := do(t, e, "GET", path, "", nil)
		if got := rec.Header().Get("Cache-Control"); got != "no-store" {
			t.Errorf("GET %s (%d): Cache-Control = %q, want no-store", path, rec.Code, got)
		}
	}
	rec, _ := do(t, e, "POST", "/v1/things", "", nil)
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("POST /v1/things: %d, Cache-Control %q", rec.Code, rec.Header().Get("Cache-Control"))
	}
	for _, path := range []string{"/docs", "/v1x"} {
		if rec, _ := do(t, e, "GET", path, "", nil); rec.Header().Get("Cache-Control") != "" {
			t.Errorf("GET %s: Cache-Control = %q, want none (not the API)", path, rec.Header().Get("Cache-Control"))
		}
	}
}

func TestJSONIsNotHTMLEscaped(t *testing.T) {
	e := api.NewEngine(api.Options{})
	e.GET("/v1/url", func(c *gin.Context) { api.JSON(c, 200, gin.H{"url": "https://x.example/r?a=1&b=<2>"}) })
	rec, m := do(t, e, "GET", "/v1/url", "", nil)
	if !strings.Contains(rec.Body.String(), `"https://x.example/r?a=1&b=<2>"`) {
		t.Fatalf("body %s: want & < > unescaped", rec.Body.String())
	}
	if m["url"] != "https://x.example/r?a=1&b=<2>" || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("decoded %v, content type %q", m, rec.Header().Get("Content-Type"))
	}
}

// TestPageQueryOneRule: every list reads limit and cursor alike, with the
// same words for the same mistake.
func TestPageQueryOneRule(t *testing.T) {
	e := api.NewEngine(api.Options{})
	e.GET("/v1/list", func(c *gin.Context) {
		p, err := api.PageQuery(c, api.DefaultListLimit, api.MaxListLimit)
		if err != nil {
			api.Error(c, err)
			return
		}
		api.JSON(c, 200, gin.H{"limit": p.Limit, "cursor": p.Cursor})
	})
	for q, want := range map[string]string{
		"":                    `{"cursor":"","limit":20}`,
		"?limit=100&cursor=x": `{"cursor":"x","limit":100}`,
		"?limit=1":            `{"cursor":"","limit":1}`,
	} {
		if rec, _ := do(t, e, "GET", "/v1/list"+q, "", nil); rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != want {
			t.Errorf("%s: %d %s, want %s", q, rec.Code, rec.Body, want)
		}
	}
	for q, want := range map[string]string{
		"?limit=0":         "limit must be a whole number from 1 to 100",
		"?limit=101":       "limit must be a whole number from 1 to 100",
		"?limit=ten":       "limit must be a whole number from 1 to 100",
		"?limit=":          "query parameter limit must be given once and not be empty",
		"?limit=1&limit=2": "query parameter limit must be given once and not be empty",
		"?cursor=":         "query parameter cursor must be given once and not be empty",
	} {
		rec, m := do(t, e, "GET", "/v1/list"+q, "", nil)
		if rec.Code != 400 || m["code"] != tpp.EInvalid || m["detail"] != want {
			t.Errorf("%s: %d %v, want 400 invalid_request %q", q, rec.Code, m, want)
		}
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
