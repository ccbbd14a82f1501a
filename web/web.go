// Package web renders the server-side HTML pages of the end-user consent flow
// (html/template, embedded) and serves their one stylesheet. Pages work
// without JavaScript: every action is a plain form POST or link.
package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"

	"github.com/bunqtpp/tpp"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/style.css
var staticFS embed.FS

// StylesheetPath is where Static serves the stylesheet; pages link to it.
const StylesheetPath = "/static/style.css"

// Page names.
const (
	PageConnect = "connect"
	PageError   = "error"
)

// Scope describes one requested permission in plain words.
type Scope struct {
	Title       string
	Description string
}

// ConnectData is the consent page: who asks, for what, and the two forms.
type ConnectData struct {
	ClientName  string
	Scopes      []Scope
	Reauth      bool
	ContinueURL string
	CancelURL   string
	CSRFToken   string
	ExpiresAt   string // already formatted for people
	// Payment, when set, makes the page about approving this one payment
	// (a single payment's consent) instead of a standing permission.
	Payment *PaymentSummary
}

// PaymentSummary is what the user checks before approving a payment at
// bunq: the same figures bunq's page will show.
type PaymentSummary struct {
	Amount       string // formatted for people, e.g. "€ 12.50"
	CreditorName string
	CreditorIBAN string
	DebtorIBAN   string
	Description  string
}

// ErrorData is a human error page: what happened and what to do now.
type ErrorData struct {
	Heading string
	What    string
	Advice  string // what to do; the whole answer when there is no ReturnURL
	// ReturnURL, when set, is shown as a "Return to <ClientName>" link: the
	// fintech's return URL with the outcome. The caller decides when it is
	// safe to show (see oauth); a plain link works without JavaScript.
	ReturnURL  string
	ClientName string
	// RetryURL, when set, is a "Try again" link that restarts the flow
	// (a failure that may pass; the request is still open).
	RetryURL string
	// RefreshURL, when set, is where the page goes by itself after
	// RefreshSeconds (a meta refresh, no JavaScript), with a link to go now:
	// a step that is still running and will be tried again.
	RefreshURL     string
	RefreshSeconds int
}

// Branding is who runs this TPP, as the pages tell the people who use them.
type Branding struct {
	Name        string // the service's name, in the header, titles and footer
	LegalEntity string // the company that holds the licence
	Licence     string // the licence, e.g. "DNB licence R123456"
	PrivacyURL  string // the privacy policy
}

// page is what every template sees: the layout's fields plus the page's data.
type page struct {
	Product       string
	Brand         Branding
	StylesheetURL string
	RequestID     string
	Data          any
}

// Renderer renders the embedded pages. It is safe for concurrent use.
type Renderer struct {
	product string
	brand   Branding
	pages   map[string]*template.Template
}

// New parses the embedded templates. product names the service in the page
// header and titles ("" means "Open Banking Connect").
func New(product string) (*Renderer, error) {
	return NewBranded(Branding{Name: product})
}

// NewBranded is New with the full branding: the footer names the legal
// entity and its licence and links the privacy policy when they are set.
func NewBranded(b Branding) (*Renderer, error) {
	if b.Name == "" {
		b.Name = "Open Banking Connect"
	}
	r := &Renderer{product: b.Name, brand: b, pages: map[string]*template.Template{}}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("web: list templates: %w", err)
	}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New(name).Option("missingkey=error").ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("web: parse %s: %w", n, err)
		}
		r.pages[name] = t
	}
	return r, nil
}

// Render writes the page with status. The page is rendered into a buffer
// first so a template error never leaves half a page on the wire. The
// headers forbid caching (pages hold CSRF tokens), framing and referrers.
// formTargets lists extra origins forms may lead to (the CSP form-action also
// governs the redirects that follow a form POST).
func (r *Renderer) Render(w http.ResponseWriter, status int, name, requestID string, data any, formTargets ...string) error {
	t, ok := r.pages[name]
	if !ok {
		return fmt.Errorf("web: unknown page %q", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", page{
		Product: r.product, Brand: r.brand, StylesheetURL: StylesheetPath, RequestID: requestID, Data: data,
	}); err != nil {
		return fmt.Errorf("web: render %s: %w", name, err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", CSP(formTargets...))
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// CSP is the pages' Content-Security-Policy: no scripts at all, styles only
// from us, forms only to us and the given origins.
func CSP(formTargets ...string) string {
	fa := "'self'"
	for _, o := range formTargets {
		if o != "" && !strings.ContainsAny(o, " ;,'\"") {
			fa += " " + o
		}
	}
	return "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action " + fa
}

// Static serves the stylesheet (mount it at "/static/").
func Static() http.Handler {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	fsrv := http.StripPrefix("/static/", http.FileServer(http.FS(sub)))
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		fsrv.ServeHTTP(w, req)
	})
}

// FormatMoney shows minor units the way people read them: "€ 12.50" for
// euros, "12.50 USD" for anything else.
func FormatMoney(minor int64, currency string) string {
	if currency == "EUR" {
		return "€ " + tpp.FormatMinor(minor)
	}
	return tpp.FormatMinor(minor) + " " + currency
}

// FormatIBAN groups a normalized IBAN in fours, as it is printed on cards
// and statements.
func FormatIBAN(iban string) string {
	var b strings.Builder
	for i, r := range iban {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}
