// Package apitest holds the API's contract in tests: a Validator checks real
// HTTP exchanges against the OpenAPI document of package apidoc, so the
// handlers and the document cannot drift apart.
//
// Use it in two ways:
//
//	v := apitest.NewValidator(t)
//	client := &http.Client{Transport: v.Transport(t, nil)} // every exchange is checked
//	// or, for one exchange you made yourself:
//	v.Check(t, req, reqBody, resp, respBody)
//
// The rules:
//   - The response must be declared for its operation: status, content type,
//     body schema (unknown fields are errors, as the schemas say), and the
//     headers the document marks required (X-Request-Id on every response).
//   - The request is checked too. A request the document forbids (a missing
//     API key or Idempotency-Key, a bad body) may only be answered with a
//     4xx: a 2xx or 5xx means the server accepted or choked on something the
//     contract excludes.
//   - A /v1 path or method the document does not know may only be answered
//     404 or 405 with a problem document; any other path (browser pages,
//     bank callbacks) is not part of this API and is ignored.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/bunqtpp/tpp/apidoc"
)

// Validator checks exchanges against the API document. It is safe for
// concurrent use.
type Validator struct {
	doc    *openapi3.T
	router routers.Router
	// unrouted holds the problem schemas for answers to requests the
	// document does not route: 404 (path) and 405 (method).
	unrouted map[int]*openapi3.Schema
}

// NewValidator loads and validates the document, and fails t if it cannot.
// The document's servers are replaced by "/" so that requests to any host
// (httptest servers on random ports) route by path alone.
func NewValidator(t testing.TB) *Validator {
	t.Helper()
	v, err := New(context.Background())
	if err != nil {
		t.Fatalf("apitest: %v", err)
	}
	return v
}

// New is NewValidator for callers without a testing.TB (load harnesses).
func New(ctx context.Context) (*Validator, error) {
	doc, err := apidoc.Load(ctx)
	if err != nil {
		return nil, err
	}
	doc.Servers = openapi3.Servers{{URL: "/"}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("apitest: build router: %w", err)
	}
	v := &Validator{doc: doc, router: router, unrouted: map[int]*openapi3.Schema{}}
	for status, name := range map[int]string{http.StatusNotFound: "NotFound", http.StatusMethodNotAllowed: "MethodNotAllowed"} {
		r := doc.Components.Responses[name]
		if r == nil || r.Value == nil {
			return nil, fmt.Errorf("apitest: the document has no %s response", name)
		}
		mt := r.Value.Content.Get("application/problem+json")
		if mt == nil || mt.Schema == nil || mt.Schema.Value == nil {
			return nil, fmt.Errorf("apitest: the %s response has no problem schema", name)
		}
		v.unrouted[status] = mt.Schema.Value
	}
	return v, nil
}

// Check validates one exchange and reports every violation with t.Errorf, so
// it may be called from any goroutine while the test runs. reqBody and
// respBody are the bodies as sent and received (req.Body and resp.Body are
// not read).
func (v *Validator) Check(t testing.TB, req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) {
	t.Helper()
	if err := v.Validate(req, reqBody, resp, respBody); err != nil {
		t.Errorf("%v", err)
	}
}

// Validate is Check returning the violation instead of reporting it.
func (v *Validator) Validate(req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) error {
	ctx := req.Context()
	where := fmt.Sprintf("%s %s → %d", req.Method, req.URL.RequestURI(), resp.StatusCode)
	fail := func(format string, args ...any) error {
		return fmt.Errorf("apitest: %s: %s\n  response body: %s", where, fmt.Sprintf(format, args...), excerpt(respBody))
	}

	// Route on a copy with a path-only URL: the router must not care which
	// host or port the test server got.
	routed := req.Clone(ctx)
	routed.URL = &url.URL{Path: req.URL.Path, RawPath: req.URL.RawPath, RawQuery: req.URL.RawQuery}
	routed.Host = ""
	route, pathParams, err := v.router.FindRoute(routed)
	if err != nil {
		if !isAPIPath(req.URL.Path) {
			return nil
		}
		schema, ok := v.unrouted[resp.StatusCode]
		if !ok {
			return fail("the document has no such operation (%v), yet the server answered %d", err, resp.StatusCode)
		}
		return checkProblem(schema, resp, respBody, fail)
	}

	opts := &openapi3filter.Options{
		IncludeResponseStatus: true,
		MultiError:            true,
		SkipSettingDefaults:   true,
		AuthenticationFunc:    authenticate,
		SchemaValidationOptions: []openapi3.SchemaValidationOption{
			openapi3.WithStringFormatValidator("uri", openapi3.NewCallbackValidator(validURI)),
		},
	}
	opts.WithCustomSchemaErrorFunc(schemaErrorMessage)

	routed.Body = io.NopCloser(bytes.NewReader(reqBody))
	routed.ContentLength = int64(len(reqBody))
	reqInput := &openapi3filter.RequestValidationInput{
		Request:    routed,
		PathParams: pathParams,
		Route:      route,
		Options:    opts,
	}
	if err := openapi3filter.ValidateRequest(ctx, reqInput); err != nil {
		// The server refused a request the contract refuses too: fine.
		// Anything else means it let an invalid request through.
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			return fail("the request violates the document, but the server answered %d instead of a 4xx:\n  %s",
				resp.StatusCode, indent(err.Error()))
		}
	}

	respInput := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: reqInput,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Options:                opts,
	}
	respInput.SetBodyBytes(respBody)
	if err := openapi3filter.ValidateResponse(ctx, respInput); err != nil {
		return fail("the response violates %s %s in the document:\n  %s", route.Method, route.Path, indent(responseErrorMessage(err)))
	}
	if code, listed := problemCode(resp, respBody); code != "" && !listed(route.Operation) {
		return fail("%s %s answered %s, which its x-codes do not list", route.Method, route.Path, code)
	}
	return nil
}

// problemCode returns the code of a problem answer ("" for any other) and
// a check that an operation's x-codes, the codes /docs shows for it, list it.
func problemCode(resp *http.Response, body []byte) (string, func(*openapi3.Operation) bool) {
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/problem+json" {
		return "", nil
	}
	var p struct {
		Code string `json:"code"`
	}
	if json.Unmarshal(body, &p) != nil || p.Code == "" {
		return "", nil
	}
	return p.Code, func(op *openapi3.Operation) bool {
		raw, ok := op.Extensions["x-codes"]
		if !ok {
			return true // the document's own test requires x-codes
		}
		list, _ := raw.([]any)
		for _, c := range list {
			if c == p.Code {
				return true
			}
		}
		return false
	}
}

// checkProblem holds answers to unknown API paths and methods to the error
// contract: the shared 404 or 405 problem response.
func checkProblem(schema *openapi3.Schema, resp *http.Response, body []byte, fail func(string, ...any) error) error {
	if resp.Header.Get("X-Request-Id") == "" {
		return fail("missing X-Request-Id header")
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "application/problem+json" {
		return fail("an error must be application/problem+json, got Content-Type %q", resp.Header.Get("Content-Type"))
	}
	value, err := decodeJSON(body)
	if err != nil {
		return fail("problem body is not JSON: %v", err)
	}
	if err := schema.VisitJSON(value, openapi3.MultiErrors(), openapi3.VisitAsResponse()); err != nil {
		return fail("problem body violates the document's %d problem:\n  %s", resp.StatusCode, indent(responseErrorMessage(err)))
	}
	return nil
}

// Transport returns a RoundTripper that sends through base
// (http.DefaultTransport when nil) and checks every exchange with Check.
// Bodies are buffered so the caller still reads them normally.
func (v *Validator) Transport(t testing.TB, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{v: v, t: t, base: base}
}

type transport struct {
	v    *Validator
	t    testing.TB
	base http.RoundTripper
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	out := req
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("apitest: read request body: %w", err)
		}
		reqBody = b
		// A RoundTripper must not change the caller's request: send a copy.
		out = req.Clone(req.Context())
		out.Body = io.NopCloser(bytes.NewReader(b))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	resp, err := tr.base.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("apitest: read response body: %w", err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	tr.v.Check(tr.t, out, reqBody, resp, respBody)
	return resp, nil
}

// authenticate accepts what the bearerAuth scheme describes: a bearer token.
// Whether the key is valid is the server's business, not the contract's.
func authenticate(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if in.SecuritySchemeName != "bearerAuth" {
		return fmt.Errorf("unknown security scheme %q", in.SecuritySchemeName)
	}
	h := in.RequestValidationInput.Request.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return errors.New(`no "Authorization: Bearer <api key>" header`)
	}
	return nil
}

// validURI holds format: uri to its meaning: an absolute URI.
func validURI(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URI: %w", err)
	}
	if u.Scheme == "" || (u.Host == "" && u.Opaque == "") {
		return errors.New("not an absolute URI")
	}
	return nil
}

func isAPIPath(p string) bool {
	return p == "/v1" || strings.HasPrefix(p, "/v1/")
}

// schemaErrorMessage names the failing field by its JSON pointer; the
// library's default dumps whole schemas, which buries the point.
func schemaErrorMessage(err *openapi3.SchemaError) string {
	ptr := "/" + strings.Join(err.JSONPointer(), "/")
	reason := err.Reason
	if err.SchemaField != "" {
		reason += " (" + err.SchemaField + ")"
	}
	return fmt.Sprintf("at %s: %s", ptr, reason)
}

// responseErrorMessage flattens kin-openapi's nested errors into lines.
func responseErrorMessage(err error) string {
	var me openapi3.MultiError
	if errors.As(err, &me) {
		lines := make([]string, 0, len(me))
		for _, e := range me {
			lines = append(lines, responseErrorMessage(e))
		}
		return strings.Join(lines, "\n")
	}
	var se *openapi3.SchemaError
	if errors.As(err, &se) {
		var re *openapi3filter.ResponseError
		if errors.As(err, &re) && re.Reason != "" {
			return re.Reason + ": " + schemaErrorMessage(se)
		}
		return schemaErrorMessage(se)
	}
	return err.Error()
}

// decodeJSON decodes numbers as json.Number: the API never speaks floats,
// and neither do its tests.
func decodeJSON(b []byte) (any, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}

func indent(s string) string {
	return strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n  ")
}

// excerpt shows the start of a body in a failure message.
func excerpt(b []byte) string {
	const max = 1500
	if len(b) == 0 {
		return "(empty)"
	}
	if len(b) <= max {
		return string(b)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(b[cut]) {
		cut--
	}
	return string(b[:cut]) + fmt.Sprintf("… (%d bytes)", len(b))
}

// ValidateWebhook checks one webhook request as a fintech receives it: the
// Standard Webhooks headers the document lists, a body matching the
// WebhookEvent schema (whose event id is the webhook-id header). It does not
// verify the signature; that needs the client's secret.
func (v *Validator) ValidateWebhook(header http.Header, body []byte) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("apitest: webhook: %s\n  body: %s", fmt.Sprintf(format, args...), excerpt(body))
	}
	hooks, err := apidoc.WebhooksOf(v.doc)
	if err != nil {
		return err
	}
	for _, name := range hooks.Headers {
		h := v.doc.Components.Headers[name]
		if h == nil || h.Value == nil {
			return fmt.Errorf("apitest: webhook header %s is not in the document", name)
		}
		val := header.Get(name)
		if val == "" {
			if h.Value.Required {
				return fail("missing %s header", name)
			}
			continue
		}
		if s := h.Value.Schema; s != nil && s.Value != nil {
			if err := s.Value.VisitJSON(val); err != nil {
				return fail("header %s = %q: %s", name, val, responseErrorMessage(err))
			}
		}
	}
	if mt, _, _ := mime.ParseMediaType(header.Get("Content-Type")); mt != "application/json" {
		return fail("Content-Type %q, want application/json", header.Get("Content-Type"))
	}
	value, err := decodeJSON(body)
	if err != nil {
		return fail("body is not JSON: %v", err)
	}
	schema := v.doc.Components.Schemas["WebhookEvent"]
	if schema == nil || schema.Value == nil {
		return errors.New("apitest: the document has no WebhookEvent schema")
	}
	if err := schema.Value.VisitJSON(value, openapi3.MultiErrors(), openapi3.VisitAsResponse(),
		openapi3.WithStringFormatValidator("uri", openapi3.NewCallbackValidator(validURI))); err != nil {
		return fail("body violates WebhookEvent:\n  %s", indent(responseErrorMessage(err)))
	}
	// The event id travels only in webhook-id (Standard Webhooks); the body
	// schema forbids a second copy that could disagree with it.
	return nil
}

// CheckWebhook is ValidateWebhook reporting to t, for a test's webhook
// receiver.
func (v *Validator) CheckWebhook(t testing.TB, header http.Header, body []byte) {
	t.Helper()
	if err := v.ValidateWebhook(header, body); err != nil {
		t.Errorf("%v", err)
	}
}
