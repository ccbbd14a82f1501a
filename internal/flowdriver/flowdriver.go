// Package flowdriver drives the TPP's consent flow without JavaScript, as a
// fintech and its user's browser would against the emulated bank: create
// the consent, open the consent page (/connect/...), press Continue, have a
// sandbox user decide at the bank (its /_sandbox/oauth/authorize control
// endpoint, validated like its /auth page) and follow the redirect to the
// TPP's /oauth/callback. The tests of cmd/tpp, oauth and pisp (through
// stacktest) and 'tpp bench' all use it, so the flow is written once.
//
// It returns errors instead of failing a test: tests wrap it.
package flowdriver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Browser is an end user's browser without JavaScript: it keeps cookies
// and follows redirects within one host only (none without one), so the
// caller sees every hop that leaves it (to the bank, to the fintech).
type Browser struct {
	c *http.Client
}

// Page is what the browser got back.
type Page struct {
	Status   int
	Body     string
	Location string
	Header   http.Header
}

// NewBrowser returns a browser with an empty cookie jar that follows
// redirects within own's host (none when own is empty), sending through
// transport (http.DefaultTransport when nil).
func NewBrowser(own string, transport http.RoundTripper) *Browser {
	jar, _ := cookiejar.New(nil)
	host := ""
	if u, err := url.Parse(own); err == nil {
		host = u.Host
	}
	return &Browser{c: &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: transport,
		CheckRedirect: func(r *http.Request, _ []*http.Request) error {
			if host == "" || r.URL.Host != host {
				return http.ErrUseLastResponse // leaving: stop and look
			}
			return nil
		}}}
}

// Do sends req and reads the answer (at most 1 MiB of it).
func (b *Browser) Do(req *http.Request) (Page, error) {
	res, err := b.c.Do(req)
	if err != nil {
		return Page{}, fmt.Errorf("%s %s: %w", req.Method, RedactQuery(req.URL.String()), err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return Page{}, fmt.Errorf("%s %s: %w", req.Method, RedactQuery(req.URL.String()), err)
	}
	return Page{Status: res.StatusCode, Body: string(raw), Location: res.Header.Get("Location"), Header: res.Header}, nil
}

// Get loads u.
func (b *Browser) Get(ctx context.Context, u string) (Page, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Page{}, err
	}
	return b.Do(req)
}

// Post submits form to u.
func (b *Browser) Post(ctx context.Context, u string, form url.Values) (Page, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return Page{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.Do(req)
}

var csrfRe = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// Open loads the consent page and returns it with its form's CSRF token.
func (b *Browser) Open(ctx context.Context, authorizeURL string) (Page, string, error) {
	p, err := b.Get(ctx, authorizeURL)
	if err != nil {
		return p, "", err
	}
	m := csrfRe.FindStringSubmatch(p.Body)
	if p.Status != http.StatusOK || m == nil {
		return p, "", fmt.Errorf("consent page: status %d without a CSRF token\n%s", p.Status, p.Body)
	}
	return p, html.UnescapeString(m[1]), nil
}

// ToBank opens the consent page, presses Continue and returns the bank's
// authorize URL it redirects to.
func (b *Browser) ToBank(ctx context.Context, authorizeURL string) (*url.URL, error) {
	_, tok, err := b.Open(ctx, authorizeURL)
	if err != nil {
		return nil, err
	}
	p, err := b.Post(ctx, authorizeURL+"/continue", url.Values{"csrf_token": {tok}})
	if err != nil {
		return nil, err
	}
	if p.Status != http.StatusSeeOther {
		return nil, fmt.Errorf("continue to the bank: status %d: %s", p.Status, p.Body)
	}
	u, err := url.Parse(p.Location)
	if err != nil {
		return nil, fmt.Errorf("continue to the bank: location %q: %w", p.Location, err)
	}
	return u, nil
}

// Bank is the emulated bank's control API.
type Bank struct {
	URL  string       // its API base URL
	HTTP *http.Client // nil: http.DefaultClient
}

// Decide has userID approve or deny (decision) at the bank what
// bankAuthURL asks for, and returns the redirect to the TPP's callback
// (with code and state, or an error).
func (k Bank) Decide(ctx context.Context, bankAuthURL *url.URL, userID int64, decision string) (string, error) {
	q := bankAuthURL.Query()
	var out struct {
		RedirectURL string `json:"redirect_url"`
	}
	err := k.Control(ctx, http.MethodPost, "/_sandbox/oauth/authorize", map[string]any{
		"client_id": q.Get("client_id"), "redirect_uri": q.Get("redirect_uri"), "state": q.Get("state"),
		"user_id": userID, "decision": decision,
	}, &out)
	return out.RedirectURL, err
}

// Control calls one of the bank's /_sandbox/ endpoints with in as JSON
// and decodes a 2xx answer into out.
func (k Bank) Control(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, k.URL+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	c := k.HTTP
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("bank control %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("bank control %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("bank control %s %s: status %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(raw))
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// Approval is one user's approval of a created consent.
type Approval struct {
	AuthorizeURL string // the consent's authorize_url
	ConsentID    string
	ReturnURL    string // the fintech's return URL the TPP must send the browser back to
	UserID       int64  // the sandbox user who approves
	// OnBankAuth, when set, checks the bank's authorize URL the consent
	// page sent the browser to (client, callback, state).
	OnBankAuth func(bankAuthURL *url.URL) error
	// OnCallback, when set, sees the bank's redirect to the TPP's callback
	// (tests collect the OAuth code as a secret the logs must not show).
	OnCallback func(callbackURL string)
}

// Approve runs the browser part of the flow for a pending consent: the
// consent page, Continue, the user's approval at the bank and the TPP's
// callback, which must send the browser back to the return URL with
// status=active for the consent.
func Approve(ctx context.Context, b *Browser, bank Bank, a Approval) error {
	bankAuth, err := b.ToBank(ctx, a.AuthorizeURL)
	if err != nil {
		return err
	}
	if a.OnBankAuth != nil {
		if err := a.OnBankAuth(bankAuth); err != nil {
			return err
		}
	}
	cb, err := bank.Decide(ctx, bankAuth, a.UserID, "approve")
	if err != nil {
		return err
	}
	if a.OnCallback != nil {
		a.OnCallback(cb)
	}
	p, err := b.Get(ctx, cb)
	if err != nil {
		return err
	}
	back, err := url.Parse(p.Location)
	if p.Status != http.StatusSeeOther || err != nil || !strings.HasPrefix(p.Location, a.ReturnURL+"?") {
		return fmt.Errorf("OAuth callback: status %d, redirect %q, want the return URL\n%s", p.Status, RedactQuery(p.Location), p.Body)
	}
	if q := back.Query(); q.Get("status") != "active" || q.Get("consent_id") != a.ConsentID {
		return fmt.Errorf("OAuth callback: return URL %q, want status=active for %s", p.Location, a.ConsentID)
	}
	return nil
}

// Fintech calls the TPP's API as one client.
type Fintech struct {
	URL    string // the TPP's base URL
	APIKey string
	HTTP   *http.Client // nil: http.DefaultClient
	// PSUIP, when set, marks calls as attended (PSU-IP-Address).
	PSUIP string
}

// Call sends in as JSON to path and decodes a want-status answer into out.
func (f Fintech) Call(ctx context.Context, method, path string, in any, want int, out any) error {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, f.URL+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+f.APIKey)
	if f.PSUIP != "" {
		req.Header.Set("PSU-IP-Address", f.PSUIP)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c := f.HTTP
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d: %s", method, path, resp.StatusCode, OneLine(string(bytes.TrimSpace(raw[:min(len(raw), 300)]))))
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

// CreateConsent creates a pending consent and returns its id and
// authorize_url.
func (f Fintech) CreateConsent(ctx context.Context, userRef string, scopes []string, returnURL string) (id, authorizeURL string, err error) {
	var created struct {
		ID           string `json:"id"`
		AuthorizeURL string `json:"authorize_url"`
	}
	body := map[string]any{"user_ref": userRef, "scopes": scopes, "return_url": returnURL}
	if err := f.Call(ctx, http.MethodPost, "/v1/consents", body, http.StatusCreated, &created); err != nil {
		return "", "", err
	}
	if created.ID == "" || created.AuthorizeURL == "" {
		return "", "", errors.New("create consent: the answer has no id or authorize_url")
	}
	return created.ID, created.AuthorizeURL, nil
}

// ActiveConsent creates a consent and has userID approve it through a new
// browser sending through transport; it returns the active consent's id.
func (f Fintech) ActiveConsent(ctx context.Context, bank Bank, transport http.RoundTripper, userRef string, scopes []string, returnURL string, userID int64) (string, error) {
	id, au, err := f.CreateConsent(ctx, userRef, scopes, returnURL)
	if err != nil {
		return "", err
	}
	err = Approve(ctx, NewBrowser(f.URL, transport), bank, Approval{AuthorizeURL: au, ConsentID: id, ReturnURL: returnURL, UserID: userID})
	return id, err
}

// RedactQuery drops a URL's query, which may hold a code or state.
func RedactQuery(u string) string {
	base, _, _ := strings.Cut(u, "?")
	return base
}

// OneLine turns tabs and line breaks into spaces, so a text fits a line.
func OneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}
