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
