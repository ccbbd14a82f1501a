package apidoc

import (
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"
)

// homeCSS is the home page's whole style; the page's policy allows exactly it.
const homeCSS = `body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1.25rem;color:#1d1b2f}
h1{font-size:1.5rem}ul{padding-left:1.2rem}li{margin:.4rem 0}a{color:#4b3fc4}.muted{color:#5f5b77;font-size:.9rem}`

var homePage = template.Must(template.New("home").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>bunq PSD2 TPP</title><style>{{.CSS}}</style></head>
<body><main>
<h1>bunq PSD2 TPP</h1>
<p>This service is a PSD2 third-party provider for bunq. Fintech apps use its JSON API under <code>/v1</code>; people see its pages only while they connect their bunq account.</p>
<ul>
{{if .Demo}}<li><a href="/demo/">Demo fintech app</a>: try the whole flow with the emulated bank</li>{{end}}
<li><a href="/docs">API reference</a> (<a href="/openapi.json">OpenAPI document</a>)</li>
<li><a href="/healthz">Health</a> and <a href="/readyz">readiness</a></li>
</ul>
<p class="muted">Nothing else lives here: other paths answer a JSON 404.</p>
</main></body></html>`))

// RegisterHome adds GET / : a small page with links to the demo (when e has
// one), the docs and the health checks, instead of a JSON 404 for a person
// who opens the service's address.
func RegisterHome(e *gin.Engine) {
	sum := sha256.Sum256([]byte(homeCSS))
	csp := "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	// The routes are complete once the server serves; look once, then.
	hasDemo := sync.OnceValue(func() bool {
		for _, r := range e.Routes() {
			if strings.HasPrefix(r.Path, "/demo/") {
				return true
			}
		}
		return false
	})
	e.GET("/", func(c *gin.Context) {
		c.Header("Content-Security-Policy", csp)
		c.Header("X-Content-Type-Options", "nosniff")
		c.Header("Cache-Control", "no-cache")
		c.Status(http.StatusOK)
		c.Header("Content-Type", ContentTypeHTML)
		_ = homePage.Execute(c.Writer, struct {
			CSS  template.CSS
			Demo bool
		}{template.CSS(homeCSS), hasDemo()})
	})
}
