package apitest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"
)

// recorder is a testing.TB that records failures instead of failing, so a
// test can assert that the validator rejects what it must.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) Error(args ...any) { r.Errorf("%s", fmt.Sprint(args...)) }

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	r.TB.FailNow()
}

func (r *recorder) failures() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

const consentJSON = `{"id":"con_4p2fzq7ksmw5x3c9ddn2h6yrta","status":"active","scopes":["accounts"],` +
	`"user_ref":"user-4711","return_url":"https://app.example.com/bunq/return",` +
	`"created_at":"2026-11-22T09:30:00Z","authorized_at":"2026-11-22T09:31:12Z",` +
	`"reauth_due_at":"2027-05-21T09:31:12Z","bank_user":{"display_name":"Emma Visser"},` +
	`"revoked_at":null,"error":null}`

const paymentJSON = `{"id":"pay_1","consent_id":"con_1","status":"pending","account_id":"acc_1",` +
	`"amount":{"amount":"12.50","currency":"EUR"},"counterparty":{"iban":"NL02ABNA0123456789","name":"Bakkerij"},` +
	`"description":"Order 1042","reference":null,"bank_draft_id":918273,"failure_reason":null,"failure_message":null,` +
	`"status_history":[{"status":"pending","at":"2026-11-22T10:15:03Z"}],` +
	`"created_at":"2026-11-22T10:15:03Z","updated_at":"2026-11-22T10:15:03Z"}`

// answer is one canned exchange of the test server: what it sends back.
type answer struct {
	status      int
	contentType string
	headers     map[string]string
	body        string
	noRequestID bool
}

// newServer starts a real gin server that answers each request with the
// answer registered for "METHOD path" (as requested, not as routed).
func newServer(t *testing.T, answers map[string]answer) *httptest.Server {
	t.Helper()
	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.NoRoute(func(c *gin.Context) {
		a, ok := answers[c.Request.Method+" "+c.Request.URL.Path]
		if !ok {
			c.String(http.StatusTeapot, "no canned answer for %s %s", c.Request.Method, c.Request.URL.Path)
			return
		}
		if !a.noRequestID {
			c.Header("X-Request-Id", "req_test123")
		}
		for k, v := range a.headers {
			c.Header(k, v)
		}
		ct := a.contentType
		if ct == "" {
			ct = "application/json; charset=utf-8"
		}
		c.Data(a.status, ct, []byte(a.body))
	})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv
}

func problem(status int, code string) string {
	return fmt.Sprintf(`{"type":"/docs#error-%s","title":%q,"status":%d,"code":%q,"request_id":"req_test123"}`,
		code, http.StatusText(status), status, code)
}

func TestValidator(t *testing.T) {
	t.Parallel()
	v := NewValidator(t)

	type exchange struct {
		method, path string
		headers      map[string]string // request headers; Authorization is added unless noAuth
		noAuth       bool
		body         string
	}
	tests := []struct {
		name string
		req  exchange
		resp answer
		// want lists substrings of the one expected failure; none means the
		// exchange conforms.
		want []string
	}{
		{
			name: "conforming consent",
			req:  exchange{method: "GET", path: "/v1/consents/con_1"},
			resp: answer{status: 200, body: consentJSON},
		},
		{
			name: "conforming create with body",
			req: exchange{method: "POST", path: "/v1/consents",
				body: `{"user_ref":"u1","scopes":["accounts","funds"],"return_url":"https://app.example.com/r"}`},
			resp: answer{status: 201, body: strings.Replace(consentJSON, `"status":"active"`, `"status":"pending","authorize_url":"https://tpp.example.com/connect/con_1","expires_at":"2026-11-22T09:45:00Z"`, 1)},
		},
		{
			name: "conforming problem",
			req:  exchange{method: "GET", path: "/v1/consents/con_x"},
			resp: answer{status: 404, contentType: "application/problem+json", body: problem(404, "consent_not_found")},
		},
		{
			name: "conforming payment replay",
			req: exchange{method: "POST", path: "/v1/consents/con_1/payments",
				headers: map[string]string{"Idempotency-Key": "k-1"},
				body:    `{"account_id":"acc_1","amount":{"amount":"12.5","currency":"EUR"},"counterparty":{"iban":"NL02 ABNA 0123 4567 89","name":"Bakkerij"},"description":"Order 1042"}`},
			resp: answer{status: 201, body: paymentJSON, headers: map[string]string{"Idempotent-Replayed": "true"}},
		},
		{
			name: "conforming 429",
			req:  exchange{method: "GET", path: "/v1/consents/con_1/accounts"},
			resp: answer{status: 429, contentType: "application/problem+json", headers: map[string]string{"Retry-After": "30"}, body: problem(429, "access_frequency_exceeded")},
		},
		{
			name: "invalid request refused with 4xx",
			req:  exchange{method: "POST", path: "/v1/consents/con_1/payments", body: `{"account_id":"acc_1"}`},
			resp: answer{status: 400, contentType: "application/problem+json", body: problem(400, "idempotency_key_required")},
		},
		{
			name: "unknown API path answered with a problem",
			req:  exchange{method: "GET", path: "/v1/nothing-here"},
			resp: answer{status: 404, contentType: "application/problem+json", body: problem(404, "not_found")},
		},
		{
			name: "undocumented method answered with a problem",
			req:  exchange{method: "PUT", path: "/v1/consents/con_1", body: `{}`},
			resp: answer{status: 405, contentType: "application/problem+json", body: problem(405, "method_not_allowed")},
		},
		{
			name: "unknown API path answered with the wrong code",
			req:  exchange{method: "GET", path: "/v1/nothing-here"},
			resp: answer{status: 404, contentType: "application/problem+json", body: problem(404, "method_not_allowed")},
			want: []string{"violates the document's 404 problem", "at /code"},
		},
		{
			name: "a code the operation's x-codes do not list",
			req:  exchange{method: "GET", path: "/v1/consents/con_x"},
			resp: answer{status: 404, contentType: "application/problem+json", body: problem(404, "payment_not_found")},
			want: []string{"GET /v1/consents/{consent_id} answered payment_not_found, which its x-codes do not list"},
		},
		{
			name: "non-API path ignored",
			req:  exchange{method: "GET", path: "/connect/con_1"},
			resp: answer{status: 200, contentType: "text/html", body: "<!doctype html>"},
		},
		{
			name: "missing required field",
			req:  exchange{method: "GET", path: "/v1/consents/con_1"},
			resp: answer{status: 200, body: strings.Replace(consentJSON, `"revoked_at":null,`, "", 1)},
			want: []string{"GET /v1/consents/con_1 → 200", `property "revoked_at" is missing`},
		},
		{
			name: "undocumented field",
			req:  exchange{method: "GET", path: "/v1/consents/con_1"},
			resp: answer{status: 200, body: strings.Replace(consentJSON, `"error":null`, `"error":null,"secret":"x"`, 1)},
			want: []string{`property "secret" is unsupported`},
		},
		{
			name: "status outside the enum",
			req:  exchange{method: "GET", path: "/v1/consents/con_1"},
			resp: answer{status: 200, body: strings.Replace(consentJSON, `"status":"active"`, `"status":"approved"`, 1)},
			want: []string{"at /status", "allowed values"},
		},
		{
			name: "money as a JSON number",
			req:  exchange{method: "GET", path: "/v1/consents/con_1/payments/pay_1"},
			resp: answer{status: 200, body: strings.Replace(paymentJSON, `"amount":"12.50"`, `"amount":12.5`, 1)},
			want: []string{"at /amount/amount", "must be a string"},
		},
		{
			name: "missing X-Request-Id",
			req:  exchange{method: "GET", path: "/v1/consents/con_1"},
			resp: answer{status: 200, body: consentJSON, noRequestID: true},
			want: []string{`"X-Request-Id"`},
		},
		{
			name: "429 without Retry-After",
			req:  exchange{method: "GET", path: "/v1/consents/con_1/accounts"},
			resp: answer{status: 429, contentType: "application/problem+json", body: problem(429, "rate_limited")},
			want: []string{`"Retry-After"`},
		},
		{
			name: "undeclared status",
			req:  exchange{method: "GET", path: "/v1/consents/con_1"},
			resp: answer{status: 202, body: consentJSON},
			want: []string{"status is not supported"},
		},
		{
			name: "wrong content type",
			req:  exchange{method: "GET", path: "/v1/consents/con_1"},
			resp: answer{status: 200, contentType: "text/plain", body: consentJSON},
			want: []string{"Content-Type", "text/plain"},
		},
		{
			name: "error code of another status",
			req:  exchange{method: "GET", path: "/v1/consents/con_1"},
			resp: answer{status: 404, contentType: "application/problem+json", body: problem(404, "invalid_iban")},
			want: []string{"at /code"},
		},
		{
			name: "problem served as plain JSON",
			req:  exchange{method: "GET", path: "/v1/consents/con_1"},
			resp: answer{status: 404, body: problem(404, "consent_not_found")},
			want: []string{"Content-Type", "application/json"},
		},
		{
			name: "request without API key accepted",
			req:  exchange{method: "GET", path: "/v1/consents/con_1", noAuth: true},
			resp: answer{status: 200, body: consentJSON},
			want: []string{"the request violates the document", "answered 200", "Authorization: Bearer"},
		},
		{
			name: "invalid request body accepted",
			req: exchange{method: "POST", path: "/v1/consents",
				body: `{"user_ref":"u1","scopes":["everything"],"return_url":"https://app.example.com/r"}`},
			resp: answer{status: 201, body: consentJSON},
			want: []string{"the request violates the document", "answered 201", "/scopes/0"},
		},
		{
			name: "relative return_url accepted",
			req: exchange{method: "POST", path: "/v1/consents",
				body: `{"user_ref":"u1","scopes":["accounts"],"return_url":"/r"}`},
			resp: answer{status: 201, body: consentJSON},
			want: []string{"the request violates the document", "return_url"},
		},
		{
			name: "undocumented API path answered 200",
			req:  exchange{method: "GET", path: "/v1/secret-admin"},
			resp: answer{status: 200, body: `{}`},
			want: []string{"no such operation"},
		},
		{
			name: "undocumented method answered 200",
			req:  exchange{method: "PUT", path: "/v1/consents/con_1", body: `{}`},
			resp: answer{status: 200, body: consentJSON},
			want: []string{"no such operation"},
		},
		{
			name: "unknown API path answered in plain text",
			req:  exchange{method: "GET", path: "/v1/nothing-here"},
			resp: answer{status: 404, contentType: "text/plain", body: "404 page not found"},
			want: []string{"application/problem+json"},
		},
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, map[string]answer{tc.req.method + " " + tc.req.path: tc.resp})
			rec := &recorder{TB: t}
			client := &http.Client{Transport: v.Transport(rec, nil)}

			var body io.Reader
			if tc.req.body != "" {
				body = strings.NewReader(tc.req.body)
			}
			req, err := http.NewRequest(tc.req.method, srv.URL+tc.req.path, body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.req.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if !tc.req.noAuth {
				req.Header.Set("Authorization", "Bearer tpp_key_secret")
			}
			for k, val := range tc.req.headers {
				req.Header.Set(k, val)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			// The transport must hand the body on untouched.
			if resp.StatusCode != http.StatusNotModified && string(got) != tc.resp.body {
				t.Errorf("client read %q, server sent %q", got, tc.resp.body)
			}

			fails := rec.failures()
			if len(tc.want) == 0 {
				if len(fails) > 0 {
					t.Fatalf("conforming exchange rejected:\n%s", strings.Join(fails, "\n"))
				}
				return
			}
			t.Logf("failure as reported: %v", fails)
			if len(fails) != 1 {
				t.Fatalf("want exactly one failure containing %q, got %d:\n%s", tc.want, len(fails), strings.Join(fails, "\n"))
			}
			for _, w := range tc.want {
				if !strings.Contains(fails[0], w) {
					t.Errorf("failure does not mention %q:\n%s", w, fails[0])
				}
			}
		})
	}
}

// TestCheckDirect drives Check without the transport, as a test that made its
// own request would, and checks the request body is what gets validated.
func TestCheckDirect(t *testing.T) {
	t.Parallel()
	v := NewValidator(t)
	srv := newServer(t, map[string]answer{
		"POST /v1/consents/con_1/funds-confirmations": {status: 200, body: `{"sufficient":true,"checked_at":"2026-11-22T10:20:31Z"}`},
	})
	send := func(reqBody string) []string {
		req, err := http.NewRequest("POST", srv.URL+"/v1/consents/con_1/funds-confirmations", strings.NewReader(reqBody))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer k")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		respBody, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{TB: t}
		v.Check(rec, req, []byte(reqBody), resp, respBody)
		return rec.failures()
	}
	if f := send(`{"iban":"NL91BUNQ2025341011","amount":{"amount":"250.00","currency":"EUR"}}`); len(f) != 0 {
		t.Errorf("conforming funds confirmation rejected: %v", f)
	}
	// Both account_id and iban: oneOf forbids it, and the server said 200.
	f := send(`{"iban":"NL91BUNQ2025341011","account_id":"acc_1","amount":{"amount":"250.00","currency":"EUR"}}`)
	if len(f) != 1 || !strings.Contains(f[0], "the request violates the document") {
		t.Errorf("want one request violation, got %v", f)
	}
}

// TestTransportKeepsRequestBody checks the server still receives the body
// the transport read for validation.
func TestTransportKeepsRequestBody(t *testing.T) {
	t.Parallel()
	v := NewValidator(t)
	var got []byte
	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.POST("/v1/consents", func(c *gin.Context) {
		got, _ = io.ReadAll(c.Request.Body)
		c.Header("X-Request-Id", "req_1")
		c.Data(http.StatusBadRequest, "application/problem+json", []byte(problem(400, "invalid_return_url")))
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	rec := &recorder{TB: t}
	client := &http.Client{Transport: v.Transport(rec, nil)}
	body := []byte(`{"user_ref":"u1","scopes":["accounts"],"return_url":"https://evil.example/r"}`)
	req, _ := http.NewRequest("POST", srv.URL+"/v1/consents", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer k")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !bytes.Equal(got, body) {
		t.Errorf("server received %q, want %q", got, body)
	}
	if f := rec.failures(); len(f) != 0 {
		t.Errorf("conforming 400 rejected: %v", f)
	}
}
