package stacktest

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/bunqtpp/tpp/internal/flowdriver"
)

// Browser is an end user's browser without JavaScript on the consent
// pages (flowdriver.Browser failing the test on errors): it keeps cookies,
// follows redirects within the stack's server and stops at any leaving
// it, so tests see where it would go.
type Browser struct {
	t testing.TB
	b *flowdriver.Browser
}

// Page is what the browser got back.
type Page = flowdriver.Page

// NewBrowser returns a browser with an empty cookie jar.
func (s *Stack) NewBrowser() *Browser {
	return &Browser{t: s.T, b: flowdriver.NewBrowser(s.URL, nil)}
}

// Do sends req, failing the test on a transport error.
func (b *Browser) Do(req *http.Request) Page {
	b.t.Helper()
	p, err := b.b.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	return p
}

// Get loads u.
func (b *Browser) Get(u string) Page {
	b.t.Helper()
	p, err := b.b.Get(context.Background(), u)
	if err != nil {
		b.t.Fatal(err)
	}
	return p
}

// Post submits form to u.
func (b *Browser) Post(u string, form url.Values) Page {
	b.t.Helper()
	p, err := b.b.Post(context.Background(), u, form)
	if err != nil {
		b.t.Fatal(err)
	}
	return p
}

// Open loads the consent page and returns it with its CSRF token.
func (b *Browser) Open(authorizeURL string) (Page, string) {
	b.t.Helper()
	p, tok, err := b.b.Open(context.Background(), authorizeURL)
	if err != nil {
		b.t.Fatal(err)
	}
	return p, tok
}

// ToBank opens the consent page, presses Continue and returns bunq's
// authorize URL.
func (b *Browser) ToBank(authorizeURL string) *url.URL {
	b.t.Helper()
	u, err := b.b.ToBank(context.Background(), authorizeURL)
	if err != nil {
		b.t.Fatal(err)
	}
	return u
}
