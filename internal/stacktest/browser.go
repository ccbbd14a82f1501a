package stacktest

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Browser is an end user's browser without JavaScript on the consent
// pages: it keeps cookies, follows redirects within the stack's server and
// stops at any leaving it, so tests see where it would go.
type Browser struct {
	t testing.TB
	c *http.Client
}

// Page is what the browser got back.
type Page struct {
	Status   int
	Body     string
	Location string
	Header   http.Header
}

// NewBrowser returns a browser with an empty cookie jar.
func (s *Stack) NewBrowser() *Browser {
	jar, _ := cookiejar.New(nil)
	own, _ := url.Parse(s.URL)
	return &Browser{t: s.T, c: &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(r *http.Request, via []*http.Request) error {
		if r.URL.Host != own.Host {
			return http.ErrUseLastResponse
		}
		return nil
	}}}
}

// Do sends req, failing the test on a transport error.
func (b *Browser) Do(req *http.Request) Page {
	b.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return Page{Status: res.StatusCode, Body: string(raw), Location: res.Header.Get("Location"), Header: res.Header}
}

// Get loads u.
func (b *Browser) Get(u string) Page {
	b.t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	return b.Do(req)
}

// Post submits form to u.
func (b *Browser) Post(u string, form url.Values) Page {
	b.t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.Do(req)
}

var csrfRe = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// Open loads the consent page and returns it with its CSRF token.
func (b *Browser) Open(authorizeURL string) (Page, string) {
	b.t.Helper()
	p := b.Get(authorizeURL)
	m := csrfRe.FindStringSubmatch(p.Body)
	if p.Status != 200 || m == nil {
		b.t.Fatalf("consent page: %d\n%s", p.Status, p.Body)
	}
	return p, m[1]
}

// ToBank opens the consent page, presses Continue and returns bunq's
// authorize URL.
func (b *Browser) ToBank(authorizeURL string) *url.URL {
	b.t.Helper()
	_, tok := b.Open(authorizeURL)
	p := b.Post(authorizeURL+"/continue", url.Values{"csrf_token": {tok}})
	if p.Status != http.StatusSeeOther {
		b.t.Fatalf("continue: %d %s", p.Status, p.Body)
	}
	u, err := url.Parse(p.Location)
	if err != nil {
		b.t.Fatal(err)
	}
	return u
}
