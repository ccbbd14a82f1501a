package apidoc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"regexp"
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
	c.Header("Vary", "Host, X-Forwarded-Proto")
	base := requestBase(c.Request)
	if base == ServerPlaceholder {
		s.serve(c, s.page, s.pageTag, ContentTypeHTML)
		return
	}
	// The examples show the address the reader used (it is checked to be
	// a plain host, so nothing else reaches the page).
	page := bytes.ReplaceAll(s.page, []byte(ServerPlaceholder), []byte(base))
	s.serve(c, page, etag(page), ContentTypeHTML)
}

// validHost is what a Host header may hold to be shown: a name or an
// address, and a port.
var validHost = regexp.MustCompile(`^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$`)

// requestBase is the base URL the request reached this server by: https
// behind TLS or a proxy saying so, http otherwise; ServerPlaceholder when
// the host is not a plain one.
func requestBase(r *http.Request) string {
	if !validHost.MatchString(r.Host) {
		return ServerPlaceholder
	}
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host
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
