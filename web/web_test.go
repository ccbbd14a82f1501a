package web

import (
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func newRenderer(t *testing.T) *Renderer {
	t.Helper()
	r, err := New("Test Connect")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestConnectPage(t *testing.T) {
	t.Parallel()
	r := newRenderer(t)
	w := httptest.NewRecorder()
	err := r.Render(w, http.StatusOK, PageConnect, "req_1", ConnectData{
		ClientName:  `Evil <script>alert(1)</script> Ltd`,
		Scopes:      []Scope{{Title: "Your accounts", Description: "see your accounts, balances and transactions"}},
		ContinueURL: "/connect/c1/continue",
		CancelURL:   "/connect/c1/cancel",
		CSRFToken:   "tok123",
		ExpiresAt:   "12:00 UTC",
	}, "https://oauth.example")
	if err != nil {
		t.Fatal(err)
	}
	body := w.Body.String()
	for _, want := range []string{
		`<html lang="en">`,
		`Evil &lt;script&gt;alert(1)&lt;/script&gt; Ltd`,
		`see your accounts, balances and transactions`,
		`<form method="post" action="/connect/c1/continue">`,
		`<form method="post" action="/connect/c1/cancel">`,
		`name="csrf_token" value="tok123"`,
		`<button type="submit" class="primary">Continue to bunq</button>`,
		`href="/static/style.css"`,
		`Reference: <code>req_1</code>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "<script>") {
		t.Error("client name not escaped")
	}
	if got := w.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q", got)
	}
	csp := w.Header().Get("Content-Security-Policy")
	if !strings.Contains(csp, "form-action 'self' https://oauth.example") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP = %q", csp)
	}
}

// A single payment's consent page is about that payment: the user sees
// what they approve, and no standing permission that it is not.
func TestConnectPageForAPayment(t *testing.T) {
	t.Parallel()
	r := newRenderer(t)
	w := httptest.NewRecorder()
	err := r.Render(w, http.StatusOK, PageConnect, "req_2", ConnectData{
		ClientName:  "Shop",
		ContinueURL: "/connect/c2/continue",
		CancelURL:   "/connect/c2/cancel",
		CSRFToken:   "tok",
		Payment: &PaymentSummary{
			Amount: FormatMoney(1250, "EUR"), CreditorName: "Bakkerij <b>", CreditorIBAN: FormatIBAN("NL02ABNA0123456789"),
			DebtorIBAN: FormatIBAN("NL06BUNQ2048711446"), Description: "Order 1042",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	body := w.Body.String()
	for _, want := range []string{
		"<title>Approve a payment for Shop", "Approve a payment for", "€ 12.50", "Bakkerij &lt;b&gt;",
		"NL02 ABNA 0123 4567 89", "NL06 BUNQ 2048 7114 46", "Order 1042", "bunq asks you to give access to your bunq account",
		"together with any other payment still waiting", "for this payment only",
		`<form method="post" action="/connect/c2/continue">`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("payment page lacks %q", want)
		}
	}
	for _, not := range []string{"180 days", "asks for permission to", "Connect your bunq account"} {
		if strings.Contains(body, not) {
			t.Errorf("payment page says %q", not)
		}
	}
	if got := FormatMoney(5, "USD"); got != "0.05 USD" {
		t.Errorf("FormatMoney(5, USD) = %q", got)
	}
}

func TestErrorPage(t *testing.T) {
	t.Parallel()
	r := newRenderer(t)
	w := httptest.NewRecorder()
	if err := r.Render(w, http.StatusBadRequest, PageError, "", ErrorData{
		Heading: "This link has expired", What: "It was valid for 15 minutes.", Advice: "Start again.",
		ReturnURL: "https://fintech.example/back?a=1&b=2", ClientName: "Acme",
	}); err != nil {
		t.Fatal(err)
	}
	if w.Code != http.StatusBadRequest {
		t.Fatalf("status %d", w.Code)
	}
	body := w.Body.String()
	for _, want := range []string{"<h1>This link has expired</h1>", "Start again.", `href="https://fintech.example/back?a=1&amp;b=2" rel="noreferrer">Return to Acme</a>`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "Reference:") {
		t.Error("empty request id rendered")
	}
}

// Without a way back the page gives its advice and no link; a return URL
// that is not http(s) is never rendered as a working link.
func TestErrorPageLinks(t *testing.T) {
	t.Parallel()
	r := newRenderer(t)
	w := httptest.NewRecorder()
	if err := r.Render(w, http.StatusBadRequest, PageError, "", ErrorData{
		Heading: "Please finish in the browser where you started", What: "Stopped.", Advice: "Go back to the app you came from.",
	}); err != nil {
		t.Fatal(err)
	}
	body := w.Body.String()
	if !strings.Contains(body, "<p>Go back to the app you came from.</p>") || strings.Contains(body, "Return to") ||
		strings.Contains(body, `class="button`) {
		t.Errorf("page without a return URL:\n%s", body)
	}

	w = httptest.NewRecorder()
	if err := r.Render(w, http.StatusGone, PageError, "", ErrorData{
		Heading: "Gone", What: "Gone.", ReturnURL: "javascript:alert(1)", ClientName: "Acme",
	}); err != nil {
		t.Fatal(err)
	}
	if body := w.Body.String(); strings.Contains(body, "javascript:") || !strings.Contains(body, `href="#ZgotmplZ"`) {
		t.Errorf("unsafe return URL rendered:\n%s", body)
	}
}

func TestUnknownPage(t *testing.T) {
	t.Parallel()
	if err := newRenderer(t).Render(httptest.NewRecorder(), 200, "nope", "", nil); err == nil {
		t.Fatal("want error")
	}
}

// A template error must not leave a half-written 200 page.
func TestRenderErrorWritesNothing(t *testing.T) {
	t.Parallel()
	w := httptest.NewRecorder()
	if err := newRenderer(t).Render(w, 200, PageConnect, "", ErrorData{}); err == nil {
		t.Fatal("want error for wrong data type")
	}
	if w.Body.Len() != 0 || w.Header().Get("Content-Type") != "" {
		t.Fatalf("wrote output: %q", w.Body.String())
	}
}

func TestStaticStylesheet(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(Static())
	defer srv.Close()
	res, err := http.Get(srv.URL + StylesheetPath)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/css") {
		t.Fatalf("status %d type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if !strings.Contains(string(b), ":focus-visible") {
		t.Error("stylesheet has no focus style")
	}
}

// The colour pairs the pages use must meet WCAG AA (4.5:1 for text).
func TestContrast(t *testing.T) {
	t.Parallel()
	css, err := staticFS.ReadFile("static/style.css")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, m := range regexp.MustCompile(`--([a-z-]+):\s*(#[0-9a-fA-F]{6})`).FindAllStringSubmatch(string(css), -1) {
		vars[m[1]] = m[2]
	}
	pairs := [][2]string{{"ink", "bg"}, {"ink", "card"}, {"muted", "card"}, {"muted", "bg"},
		{"accent-ink", "accent"}, {"accent", "card"}, {"focus", "card"}, {"notice-ink", "notice"}}
	for _, p := range pairs {
		fg, bg := vars[p[0]], vars[p[1]]
		if fg == "" || bg == "" {
			t.Fatalf("missing colour %v", p)
		}
		if r := contrast(fg, bg); r < 4.5 {
			t.Errorf("%s on %s: contrast %.2f < 4.5", p[0], p[1], r)
		}
	}
}

func contrast(a, b string) float64 {
	la, lb := luminance(a), luminance(b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

func luminance(hex string) float64 {
	var c [3]float64
	for i := range 3 {
		v, _ := strconv.ParseUint(hex[1+2*i:3+2*i], 16, 8)
		s := float64(v) / 255
		if s <= 0.03928 {
			c[i] = s / 12.92
		} else {
			c[i] = math.Pow((s+0.055)/1.055, 2.4)
		}
	}
	return 0.2126*c[0] + 0.7152*c[1] + 0.0722*c[2]
}

// TestBrandingInTheFooter: the footer names the service once, the company
// that holds the licence and the licence, and links the privacy policy;
// without them it claims no licence.
func TestBrandingInTheFooter(t *testing.T) {
	t.Parallel()
	r, err := NewBranded(Branding{Name: "Acme Connect", LegalEntity: "Acme Payments B.V.", Licence: "DNB licence R123456", PrivacyURL: "https://acme.example/privacy"})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	if err := r.Render(w, http.StatusOK, PageError, "", ErrorData{Heading: "h", What: "w", Advice: "a"}); err != nil {
		t.Fatal(err)
	}
	body := w.Body.String()
	for _, want := range []string{
		"Acme Connect is an account information and payment initiation service of Acme Payments B.V., DNB licence R123456.",
		`<a href="https://acme.example/privacy">Privacy policy</a>`,
		"<title>", "· Acme Connect</title>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "Open Banking Connect") {
		t.Error("the page shows a second name")
	}
	w = httptest.NewRecorder()
	if err := newRenderer(t).Render(w, http.StatusOK, PageError, "", ErrorData{Heading: "h", What: "w", Advice: "a"}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(w.Body.String(), "licensed") || strings.Contains(w.Body.String(), "Privacy policy") {
		t.Errorf("without branding the footer claims a licence or links a policy:\n%s", w.Body.String())
	}
}
