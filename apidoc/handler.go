package apidoc

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// ContentTypeHTML is the media type of the docs page.
const ContentTypeHTML = "text/html; charset=utf-8"

// site holds what the two routes serve, built once: the document only
// changes with the binary.
type site struct {
	spec, page       []byte
	specTag, pageTag string
	csp              string
}

func newSite() (*site, error) {
	spec, err := specJSON()
	if err != nil {
		return nil, err
	}
	doc, err := Load(context.Background())
	if err != nil {
		return nil, err
	}
	page, err := renderDocs(doc)
	if err != nil {
		return nil, err
	}
	css, err := files.ReadFile("docs.css")
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(css)
	s := &site{spec: spec, page: page}
	s.specTag, s.pageTag = etag(spec), etag(page)
	// The page needs nothing but its own inline stylesheet; the policy
	// proves it (and blocks anything a description could smuggle in).
	s.csp = "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	return s, nil
}

// Register adds GET /openapi.json and GET /docs to r. Both are public and
// revalidate with ETag. It panics if the embedded document does not load,
// validate and render: that is a build defect (the package's tests catch
// it), and a service must not start with a contract it cannot show.
func Register(r gin.IRoutes) {
	s, err := newSite()
	if err != nil {
		panic(err)
	}
	r.GET("/openapi.json", s.serveSpec)
	r.GET("/docs", s.serveDocs)
}

func (s *site) serveSpec(c *gin.Context) {
	c.Header("Access-Control-Allow-Origin", "*") // public contract; lets browser tools fetch it
	s.serve(c, s.spec, s.specTag, "application/json")
}

func (s *site) serveDocs(c *gin.Context) {
	c.Header("Content-Security-Policy", s.csp)
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Referrer-Policy", "no-referrer")
	s.serve(c, s.page, s.pageTag, ContentTypeHTML)
}

func (s *site) serve(c *gin.Context, body []byte, tag, contentType string) {
	c.Header("ETag", tag)
	c.Header("Cache-Control", "public, max-age=300")
	if etagMatch(c.GetHeader("If-None-Match"), tag) {
		c.Status(http.StatusNotModified)
		c.Writer.WriteHeaderNow()
		return
	}
	c.Data(http.StatusOK, contentType, body)
}

func etag(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:8]) + `"`
}

// etagMatch implements If-None-Match's weak comparison (RFC 9110 §13.1.2).
func etagMatch(header, tag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == tag {
			return true
		}
	}
	return false
}
