package apidoc_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/bunqtpp/tpp/apidoc"
)

func TestHomeLinksDocsHealthAndTheDemoWhenThere(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	for _, withDemo := range []bool{false, true} {
		e := gin.New()
		apidoc.RegisterHome(e)
		if withDemo {
			e.GET("/demo/*path", func(c *gin.Context) {})
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		body := rec.Body.String()
		if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
			t.Fatalf("GET / = %d %s", rec.Code, rec.Header().Get("Content-Type"))
		}
		for _, link := range []string{`href="/docs"`, `href="/healthz"`, `href="/openapi.json"`} {
			if !strings.Contains(body, link) {
				t.Errorf("home page lacks %s", link)
			}
		}
		if got := strings.Contains(body, `href="/demo/"`); got != withDemo {
			t.Errorf("with demo %v: demo link shown = %v", withDemo, got)
		}
	}
}

// TestDocsUseTheRequestsServer: the examples, a curl command per
// endpoint among them, show the address the reader used; a host that is
// not a plain one is never echoed.
func TestDocsUseTheRequestsServer(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	apidoc.Register(e)
	get := func(host, proto string) string {
		req := httptest.NewRequest(http.MethodGet, "/docs", nil)
		req.Host = host
		if proto != "" {
			req.Header.Set("X-Forwarded-Proto", proto)
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET /docs with Host %q: %d", host, rec.Code)
		}
		return rec.Body.String()
	}
	page := get("127.0.0.1:8080", "")
	if strings.Contains(page, apidoc.ServerPlaceholder) {
		t.Error("the page still shows the placeholder server")
	}
	for _, want := range []string{
		`curl -s -X POST &#39;http://127.0.0.1:8080/v1/consents&#39;`,
		`curl -s &#39;http://127.0.0.1:8080/v1/consents/`,
		`-H &#34;Authorization: Bearer $TPP_API_KEY&#34;`,
		`-H &#34;Idempotency-Key: $(uuidgen)&#34;`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if n := strings.Count(page, `<pre class="curl">`); n < 10 {
		t.Errorf("%d curl examples", n)
	}
	if page := get("tpp.acme.example", "https"); !strings.Contains(page, "https://tpp.acme.example/v1/consents") {
		t.Error("behind a TLS proxy the examples do not use https and the host")
	}
	if page := get(`evil.example"><script>`, ""); strings.Contains(page, "<script>") || !strings.Contains(page, apidoc.ServerPlaceholder) {
		t.Error("a host with markup reached the page")
	}
}

// TestDocsShowEachSchemaOnce: a response that is a named schema links to
// it; its fields are listed once, under Schemas.
func TestDocsShowEachSchemaOnce(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	apidoc.Register(e)
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/docs", nil))
	page := rec.Body.String()
	endpoints, _, _ := strings.Cut(page, `id="schemas"`)
	if n := strings.Count(endpoints, `<tr class="d0"><td><code>authorize_url</code>`); n != 0 {
		t.Errorf("the endpoints repeat the fields of response schemas (%d times authorize_url)", n)
	}
	if !strings.Contains(page, `<a href="#schema-Consent">Consent</a>, its fields under Schemas`) {
		t.Error("responses do not link the Consent schema")
	}
}
