package apidoc_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"golang.org/x/net/html"

	"github.com/bunqtpp/tpp/aisp"
	"github.com/bunqtpp/tpp/api"
	"github.com/bunqtpp/tpp/apidoc"
	"github.com/bunqtpp/tpp/internal/apitest"
)

func load(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := apidoc.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestDocumentRules checks the house rules every operation must follow, so a
// new endpoint cannot be documented half-way.
func TestDocumentRules(t *testing.T) {
	t.Parallel()
	doc := load(t)
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi = %q, want 3.0.3 (what the validator is tested with)", doc.OpenAPI)
	}
	if len(doc.Security) != 1 || doc.Security[0]["bearerAuth"] == nil {
		t.Errorf("document security = %v, want bearerAuth on everything by default", doc.Security)
	}
	wantPaths := []string{
		"/v1/consents", "/v1/consents/{consent_id}",
		"/v1/consents/{consent_id}/accounts", "/v1/consents/{consent_id}/accounts/{account_id}",
		"/v1/consents/{consent_id}/accounts/{account_id}/transactions",
		"/v1/consents/{consent_id}/payments", "/v1/consents/{consent_id}/payments/{payment_id}",
		"/v1/single-payments", "/v1/single-payments/{payment_id}",
		"/v1/consents/{consent_id}/funds-confirmations",
		"/healthz", "/readyz", "/openapi.json", "/docs",
	}
	for _, p := range wantPaths {
		if doc.Paths.Value(p) == nil {
			t.Errorf("path %s is not documented", p)
		}
	}
	ids := map[string]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			where := method + " " + path
			if op.OperationID == "" || op.Summary == "" || op.Description == "" || len(op.Tags) != 1 {
				t.Errorf("%s: needs operationId, summary, description and one tag", where)
			}
			if prev, dup := ids[op.OperationID]; dup {
				t.Errorf("%s: operationId %q already used by %s", where, op.OperationID, prev)
			}
			ids[op.OperationID] = where
			isAPI := strings.HasPrefix(path, "/v1/")
			if isAPI && op.Security != nil {
				t.Errorf("%s: /v1 operations must keep the document's bearerAuth", where)
			}
			if !isAPI && (op.Security == nil || len(*op.Security) != 0) {
				t.Errorf("%s: operations endpoints must say security: []", where)
			}
			var want []string
			if isAPI {
				want = []string{"401", "429", "500"}
			}
			if op.RequestBody != nil {
				want = append(want, "400", "413")
			}
			if strings.HasPrefix(path, "/v1/consents/{consent_id}/") {
				want = append(want, "403", "404")
			}
			for _, st := range want {
				if op.Responses.Value(st) == nil {
					t.Errorf("%s: does not declare %s", where, st)
				}
			}
			if method == http.MethodPost && (strings.HasSuffix(path, "/payments") || path == "/v1/single-payments") {
				p := findParam(item, op, "header", "Idempotency-Key")
				if p == nil || !p.Required {
					t.Errorf("%s: moves money and must require Idempotency-Key", where)
				}
				if r := op.Responses.Value("422"); r == nil {
					t.Errorf("%s: must declare 422 for a reused Idempotency-Key", where)
				}
				if r := op.Responses.Value("201"); r == nil || r.Value.Headers["Idempotent-Replayed"] == nil {
					t.Errorf("%s: 201 must declare Idempotent-Replayed", where)
				}
			}
			for st, r := range op.Responses.Map() {
				h := r.Value.Headers["X-Request-Id"]
				if h == nil || !h.Value.Required {
					t.Errorf("%s %s: every response must declare a required X-Request-Id", where, st)
				}
				if mt := r.Value.Content.Get("application/json"); mt != nil && strings.HasPrefix(st, "2") && isAPI &&
					mt.Schema != nil && mt.Schema.Ref == "" {
					t.Errorf("%s %s: success bodies must be named component schemas", where, st)
				}
			}
		}
	}
	if tmr := doc.Components.Responses["TooManyRequests"]; tmr == nil || tmr.Value.Headers["Retry-After"] == nil {
		t.Error("429 must declare Retry-After")
	}
}

func findParam(item *openapi3.PathItem, op *openapi3.Operation, in, name string) *openapi3.Parameter {
	for _, p := range slices.Concat(item.Parameters, op.Parameters) {
		if p.Value != nil && p.Value.In == in && strings.EqualFold(p.Value.Name, name) {
			return p.Value
		}
	}
	return nil
}

// TestPageLimitsDocumentedAsServed: every paged list documents the limit
// bounds and default its handler applies.
func TestPageLimitsDocumentedAsServed(t *testing.T) {
	t.Parallel()
	doc := load(t)
	want := map[string][2]int{ // operationId → default, max
		"listConsents":     {api.DefaultListLimit, api.MaxListLimit},
		"listPayments":     {api.DefaultListLimit, api.MaxListLimit},
		"listTransactions": {aisp.DefaultTxLimit, aisp.MaxTxLimit},
	}
	seen := 0
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for _, p := range op.Parameters {
				if p.Value == nil || p.Value.Name != "limit" {
					continue
				}
				seen++
				w, ok := want[op.OperationID]
				if !ok {
					t.Errorf("%s %s (%s) takes a limit this test does not know", method, path, op.OperationID)
					continue
				}
				sc := p.Value.Schema.Value
				if sc.Min == nil || *sc.Min != 1 || sc.Max == nil || int(*sc.Max) != w[1] || sc.Default == nil || int(sc.Default.(float64)) != w[0] {
					t.Errorf("%s: limit documented as min %v max %v default %v; served as 1..%d, default %d",
						op.OperationID, ptrVal(sc.Min), ptrVal(sc.Max), sc.Default, w[1], w[0])
				}
			}
		}
	}
	if seen != len(want) {
		t.Errorf("%d operations document a limit, want %d", seen, len(want))
	}
}

func ptrVal(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestErrorCodeRowsAreWellFormed: every x-error-codes row has exactly code,
// status and meaning, with the right types. A YAML flow mapping splits an
// unquoted meaning at its comma into a stray key (as "invalid_iban" once did).
func TestErrorCodeRowsAreWellFormed(t *testing.T) {
	t.Parallel()
	doc := load(t)
	b, err := json.Marshal(doc.Extensions["x-error-codes"])
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(b, &rows); err != nil || len(rows) == 0 {
		t.Fatalf("x-error-codes is not a list of objects: %v", err)
	}
	for i, row := range rows {
		var keys []string
		for k := range row {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if !slices.Equal(keys, []string{"code", "meaning", "status"}) {
			t.Errorf("x-error-codes[%d] (%v) has keys %q, want exactly code, status, meaning", i, row["code"], keys)
			continue
		}
		code, _ := row["code"].(string)
		meaning, _ := row["meaning"].(string)
		status, isNum := row["status"].(float64)
		if code == "" || strings.TrimSpace(meaning) == "" || !isNum || status != float64(int(status)) || status < 400 || status > 599 {
			t.Errorf("x-error-codes[%d]: %v: want a code, an HTTP error status and a meaning", i, row)
		}
		if !strings.HasSuffix(meaning, ".") {
			t.Errorf("x-error-codes[%d] %s: meaning %q is cut short (an unquoted comma?)", i, code, meaning)
		}
	}
}

// TestErrorCodesMatchService holds the document's error contract to the one
// mapping the service uses (api.Codes): same codes, same statuses, in the
// Problem enum, the error table and the per-status problem responses.
func TestErrorCodesMatchService(t *testing.T) {
	t.Parallel()
	doc := load(t)
	service := api.Codes()

	var enum []string
	for _, v := range doc.Components.Schemas["Problem"].Value.Properties["code"].Value.Enum {
		enum = append(enum, v.(string))
	}
	if got, want := sorted(enum), sorted(keys(service)); !slices.Equal(got, want) {
		t.Errorf("Problem.code enum = %v\nservice codes     = %v", got, want)
	}

	table, err := apidoc.ErrorCodes(doc)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, row := range table {
		if seen[row.Code] {
			t.Errorf("x-error-codes lists %s twice", row.Code)
		}
		seen[row.Code] = true
		st, ok := service[row.Code]
		switch {
		case !ok:
			t.Errorf("x-error-codes: %s is not a service code", row.Code)
		case st != row.Status:
			t.Errorf("x-error-codes: %s has status %d, the service answers %d", row.Code, row.Status, st)
		}
		if row.Meaning == "" {
			t.Errorf("x-error-codes: %s has no meaning", row.Code)
		}
	}
	for code := range service {
		if !seen[code] {
			t.Errorf("x-error-codes lacks %s", code)
		}
	}

	byStatus := apidoc.ProblemCodesByStatus(doc)
	placed := map[string]int{}
	for st, codes := range byStatus {
		for _, c := range codes {
			if prev, dup := placed[c]; dup {
				t.Errorf("%s is allowed under both %d and %d", c, prev, st)
			}
			placed[c] = st
		}
	}
	for code, st := range service {
		if placed[code] != st {
			t.Errorf("%s: problem responses allow it under %d, the service answers %d", code, placed[code], st)
		}
	}
}

// TestSpecJSON checks the served form: JSON, the same document, and no
// amount anywhere written as a JSON number.
func TestSpecJSON(t *testing.T) {
	t.Parallel()
	dec := json.NewDecoder(bytes.NewReader(apidoc.Spec()))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("Spec is not JSON: %v", err)
	}
	var walk func(path string, v any)
	amounts := 0
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if k == "amount" {
					if _, isNum := c.(json.Number); isNum {
						t.Errorf("%s/amount is a JSON number; money is a string", path)
					}
					if _, isStr := c.(string); isStr {
						amounts++
					}
				}
				walk(path+"/"+k, c)
			}
		case []any:
			for _, c := range x {
				walk(path+"/[]", c)
			}
		}
	}
	walk("", v)
	if amounts < 10 {
		t.Errorf("found %d string amounts in examples; the walk is not looking where the examples are", amounts)
	}
}

func newEngine(t *testing.T) *httptest.Server {
	t.Helper()
	// The real engine, so its unmatched-route answers are held to the
	// document too.
	r := api.NewEngine(api.Options{Logger: slog.New(slog.DiscardHandler)})
	apidoc.Register(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, client *http.Client, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestServeOpenAPIJSON(t *testing.T) {
	t.Parallel()
	srv := newEngine(t)
	v := apitest.NewValidator(t)
	client := &http.Client{Transport: v.Transport(t, nil)}

	resp, body := get(t, client, srv.URL+"/openapi.json", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if !bytes.Equal(body, apidoc.Spec()) {
		t.Error("served document differs from Spec()")
	}
	tag := resp.Header.Get("ETag")
	if !regexp.MustCompile(`^"[0-9a-f]{16}"$`).MatchString(tag) {
		t.Fatalf("ETag = %q", tag)
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age") {
		t.Errorf("Cache-Control = %q, want it cacheable", cc)
	}

	for _, inm := range []string{tag, "W/" + tag, `"other", ` + tag, "*"} {
		resp, body = get(t, client, srv.URL+"/openapi.json", map[string]string{"If-None-Match": inm})
		if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
			t.Errorf("If-None-Match %s: status %d with %d bytes, want 304 empty", inm, resp.StatusCode, len(body))
		}
	}
	resp, _ = get(t, client, srv.URL+"/openapi.json", map[string]string{"If-None-Match": `"stale"`})
	if resp.StatusCode != http.StatusOK {
		t.Errorf("stale If-None-Match: status %d, want 200", resp.StatusCode)
	}
}

// TestEngineUnknownRoutes holds the engine's answers to unknown /v1 paths to
// the document's 404 problem (the validating transport checks them).
func TestEngineUnknownRoutes(t *testing.T) {
	t.Parallel()
	srv := newEngine(t)
	v := apitest.NewValidator(t)
	client := &http.Client{Transport: v.Transport(t, nil)}
	resp, _ := get(t, client, srv.URL+"/v1/no-such-thing", nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("status %d, want 404", resp.StatusCode)
	}
}

func TestServeDocs(t *testing.T) {
	t.Parallel()
	srv := newEngine(t)
	v := apitest.NewValidator(t)
	client := &http.Client{Transport: v.Transport(t, nil)}
	doc := load(t)

	resp, body := get(t, client, srv.URL+"/docs", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != apidoc.ContentTypeHTML {
		t.Errorf("Content-Type = %q", ct)
	}
	page := string(body)

	// Every operation is on the page: its path, its anchor and a sidebar link.
	for path, item := range doc.Paths.Map() {
		if !strings.Contains(page, ">"+html.EscapeString(path)+"<") {
			t.Errorf("page lacks path %s", path)
		}
		for _, op := range item.Operations() {
			if !strings.Contains(page, `id="`+op.OperationID+`"`) || !strings.Contains(page, `href="#`+op.OperationID+`"`) {
				t.Errorf("page lacks operation %s or its sidebar link", op.OperationID)
			}
		}
	}
	// Each endpoint's error tables list exactly its x-codes.
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			art := regexp.MustCompile(`(?s)<article class="op" id="` + op.OperationID + `".*?</article>`).FindString(page)
			var shown []string
			for _, m := range regexp.MustCompile(`href="#error-([a-z_]+)"`).FindAllStringSubmatch(art, -1) {
				shown = append(shown, m[1])
			}
			codes, _ := operationCodes(t, op)
			if got, want := sorted(shown), sorted(codes); !slices.Equal(got, want) {
				t.Errorf("%s: error tables show %v, x-codes lists %v", op.OperationID, got, want)
			}
		}
	}
	for code, st := range api.Codes() {
		re := regexp.MustCompile(`<tr id="error-` + code + `"><td><code>` + code + `</code></td><td><span class="status s\d">` + strconv.Itoa(st) + `</span>`)
		if !re.MatchString(page) {
			t.Errorf("error table lacks %s with status %d", code, st)
		}
	}
	for _, want := range []string{"consent.updated", "payment.updated", "webhook-signature", "Authorization: Bearer", `id="schema-Money"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}

	// Offline: nothing is loaded from anywhere, and the policy says so.
	root, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	ids, hrefs := map[string]int{}, []string{}
	var style string
	var visit func(n *html.Node)
	visit = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "script", "link", "img", "iframe", "object", "embed":
				t.Errorf("page has a <%s> element; it must be self-contained", n.Data)
			case "style":
				if n.FirstChild != nil {
					style += n.FirstChild.Data
				}
			}
			for _, a := range n.Attr {
				switch a.Key {
				case "id":
					ids[a.Val]++
				case "href":
					hrefs = append(hrefs, a.Val)
				case "src", "style":
					t.Errorf("<%s %s=%q>: no loaded resources or inline styles", n.Data, a.Key, a.Val)
				}
			}
		}
		for c := range n.ChildNodes() {
			visit(c)
		}
	}
	visit(root)
	for id, n := range ids {
		if n > 1 {
			t.Errorf("id %q used %d times", id, n)
		}
	}
	for _, h := range hrefs {
		if frag, ok := strings.CutPrefix(h, "#"); ok && ids[frag] == 0 {
			t.Errorf("link %s points nowhere", h)
		}
	}
	sum := sha256.Sum256([]byte(style))
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") {
		t.Errorf("CSP %q does not pin the inline stylesheet", csp)
	}

	resp, body = get(t, client, srv.URL+"/docs", map[string]string{"If-None-Match": resp.Header.Get("ETag")})
	if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Errorf("revalidation: status %d, %d bytes", resp.StatusCode, len(body))
	}
}

func keys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

// TestOperationCodes: every operation lists in x-codes the error codes it
// can produce, which its error tables on /docs show. Each code is one of the
// document's, answered under a status the operation declares, with a
// problem response that allows it; and every problem response the operation
// declares is there for at least one of its codes.
func TestOperationCodes(t *testing.T) {
	t.Parallel()
	doc := load(t)
	table, err := apidoc.ErrorCodes(doc)
	if err != nil {
		t.Fatal(err)
	}
	statusOf := map[string]int{}
	for _, row := range table {
		statusOf[row.Code] = row.Status
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			where := method + " " + path
			codes, ok := operationCodes(t, op)
			if !ok {
				t.Errorf("%s: no x-codes; list the error codes it can produce ([] for none)", where)
				continue
			}
			used := map[string]bool{}
			seen := map[string]bool{}
			for _, code := range codes {
				if seen[code] {
					t.Errorf("%s: x-codes lists %s twice", where, code)
				}
				seen[code] = true
				st, known := statusOf[code]
				if !known {
					t.Errorf("%s: x-codes names %s, which is not in x-error-codes", where, code)
					continue
				}
				r := op.Responses.Value(strconv.Itoa(st))
				if r == nil {
					t.Errorf("%s: x-codes has %s but the operation declares no %d response", where, code, st)
					continue
				}
				if !slices.Contains(apidoc.ResponseCodes(r.Value), code) {
					t.Errorf("%s: x-codes has %s but its %d response does not allow it", where, code, st)
				}
				used[strconv.Itoa(st)] = true
			}
			for st, r := range op.Responses.Map() {
				if len(apidoc.ResponseCodes(r.Value)) > 0 && !used[st] {
					t.Errorf("%s: declares a %s problem response but x-codes has no code for it", where, st)
				}
			}
			if strings.HasPrefix(path, "/v1/") {
				for _, code := range []string{"unauthorized", "rate_limited", "internal_error", "service_unavailable"} {
					if !seen[code] {
						t.Errorf("%s: x-codes lacks %s, which every /v1 request can give", where, code)
					}
				}
				if op.RequestBody != nil && !seen["body_too_large"] {
					t.Errorf("%s: x-codes lacks body_too_large, which every request body can give", where)
				}
			}
		}
	}
}

// operationCodes reads op's x-codes; ok is false when it has none.
func operationCodes(t *testing.T, op *openapi3.Operation) (codes []string, ok bool) {
	t.Helper()
	raw, ok := op.Extensions["x-codes"]
	if !ok {
		return nil, false
	}
	b, err := json.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &codes); err != nil {
		t.Errorf("%s: x-codes is not a list of codes: %v", op.OperationID, err)
	}
	return codes, true
}
