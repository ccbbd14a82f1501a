// Package banktest starts the emulated bunq sandbox for other packages'
// tests. Tests then talk to it only over HTTP: bunq's protocol on APIURL,
// OAuthURL and TokenURL, plus the emulator's /_sandbox/ control endpoints
// through the typed helpers here.
package banktest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/bunqtpp/tpp/sandbox"
)

// Env is a running emulator. URLs have no trailing slash; APIURL has no /v1.
type Env struct {
	APIURL, OAuthURL, TokenURL string
}

// Option changes the emulator's configuration.
type Option func(*sandbox.Config)

// WithRateLimits turns bunq's rate limits on (they are off by default here).
func WithRateLimits() Option { return func(c *sandbox.Config) { c.RateLimits = true } }

// WithSeed picks the seed of the emulator's users and histories.
func WithSeed(n int64) Option { return func(c *sandbox.Config) { c.Seed = n } }

// WithClock makes the emulator read time from clock (plus control offsets).
func WithClock(clock func() time.Time) Option { return func(c *sandbox.Config) { c.Clock = clock } }

// WithSignedCallbacks makes the bank sign its notification callbacks (not
// bunq's documented behaviour; the emulator's option).
func WithSignedCallbacks() Option { return func(c *sandbox.Config) { c.SignCallbacks = true } }

// WithRateLimitsPerInstallation counts rate limits per installation
// instead of per source IP.
func WithRateLimitsPerInstallation() Option {
	return func(c *sandbox.Config) { c.RateLimits, c.RateLimitPerInstallation = true, true }
}

// WithFundsAnswer picks the confirmation-of-funds answer shape: "id" or
// "confirmation" (the default).
func WithFundsAnswer(shape string) Option { return func(c *sandbox.Config) { c.FundsAnswer = shape } }

// WithNullObjects makes the emulator send null for empty object fields,
// as real bunq payloads do (sandbox.Config.NullEmptyObjects).
func WithNullObjects() Option { return func(c *sandbox.Config) { c.NullEmptyObjects = true } }

// WithDNFormat sets how the emulator spells the PSP's certificate subject:
// "rfc2253" or "openssl" (sandbox.Config.DNFormat).
func WithDNFormat(format string) Option { return func(c *sandbox.Config) { c.DNFormat = format } }

// WithLenient turns strict header checks off (they are on in tests).
func WithLenient() Option { return func(c *sandbox.Config) { c.Strict = false } }

// Start runs an emulator on in-process httptest servers, stopped by t.Cleanup.
// Its strict mode is on: every mandatory bunq header must be sent.
func Start(t testing.TB, opts ...Option) *Env {
	t.Helper()
	cfg := sandbox.Config{Strict: true}
	for _, o := range opts {
		o(&cfg)
	}
	bank, err := sandbox.New(cfg)
	if err != nil {
		t.Fatalf("banktest: %v", err)
	}
	api := httptest.NewServer(bank.API())
	oauth := httptest.NewServer(bank.OAuth())
	token := httptest.NewServer(bank.Token())
	t.Cleanup(func() {
		api.Close()
		oauth.Close()
		token.Close()
		bank.Close()
	})
	return &Env{APIURL: api.URL, OAuthURL: oauth.URL, TokenURL: token.URL}
}

// Control sends a JSON control call to APIURL+path (path starts with
// /_sandbox/) and decodes the answer into out (if not nil). It fails t on a
// transport error or a non-2xx answer.
func (e *Env) Control(t testing.TB, method, path string, in, out any) {
	t.Helper()
	if err := e.control(method, path, in, out); err != nil {
		t.Fatalf("banktest: %v", err)
	}
}

func (e *Env) control(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encode: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.APIURL+path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: status %d: %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decode %s: %w", method, path, raw, err)
		}
	}
	return nil
}

// Amount is bunq's amount: a decimal string and a currency.
type Amount struct {
	Value    string `json:"value"`
	Currency string `json:"currency"`
}

// Account is a monetary account as GET /_sandbox/users shows it.
type Account struct {
	ID          int64  `json:"id"`
	Type        string `json:"type"` // MonetaryAccountBank, MonetaryAccountSavings, MonetaryAccountJoint
	IBAN        string `json:"iban"`
	Description string `json:"description"`
	Balance     Amount `json:"balance"`
	Status      string `json:"status"`
}

// User is a sandbox person or company with its API key and accounts.
type User struct {
	ID          int64     `json:"id"`
	DisplayName string    `json:"display_name"`
	Email       string    `json:"email"`
	APIKey      string    `json:"api_key"`
	Accounts    []Account `json:"accounts"`
}

// Users lists the seeded and API-created persons and companies.
func (e *Env) Users(t testing.TB) []User {
	t.Helper()
	var us []User
	e.Control(t, http.MethodGet, "/_sandbox/users", nil, &us)
	return us
}

// Stats returns the request counts by "METHOD /route/{id}" pattern.
func (e *Env) Stats(t testing.TB) map[string]int {
	t.Helper()
	var out struct {
		Requests map[string]int `json:"requests"`
	}
	e.Control(t, http.MethodGet, "/_sandbox/stats", nil, &out)
	return out.Requests
}

// ResetStats zeroes the request counts.
func (e *Env) ResetStats(t testing.TB) {
	t.Helper()
	e.Control(t, http.MethodDelete, "/_sandbox/stats", nil, nil)
}

// Fault kinds.
const (
	FaultLatency       = "latency"
	FaultStatus        = "status"
	FaultDrop          = "drop"
	FaultDropBefore    = "drop_before"
	FaultBadSignature  = "bad_signature"
	FaultNoSignature   = "no_signature"
	FaultExpireSession = "expire_session"
)

// Fault injects a failure into the next Count calls matching Method and
// Path (segment-wise, "*" for one segment, a trailing "/**" for any rest).
type Fault struct {
	Method    string `json:"method,omitempty"`
	Path      string `json:"path"`
	Kind      string `json:"kind"`
	Status    int    `json:"status,omitempty"`
	LatencyMS int    `json:"latency_ms,omitempty"`
	Count     int    `json:"count,omitempty"` // 0 = until cleared
}

// Fault adds a fault.
func (e *Env) Fault(t testing.TB, f Fault) {
	t.Helper()
	e.Control(t, http.MethodPost, "/_sandbox/faults", f, nil)
}

// ClearFaults removes every fault.
func (e *Env) ClearFaults(t testing.TB) {
	t.Helper()
	e.Control(t, http.MethodDelete, "/_sandbox/faults", nil, nil)
}

// SetRateLimits turns bunq's rate limits on or off.
func (e *Env) SetRateLimits(t testing.TB, on bool) {
	t.Helper()
	e.Control(t, http.MethodPut, "/_sandbox/rate-limits", map[string]bool{"enabled": on}, nil)
}

// SetTokenState makes the token host's answers carry the code's state (on,
// the default, as bunq documents) or leave it out (an older answer).
func (e *Env) SetTokenState(t testing.TB, on bool) {
	t.Helper()
	e.Control(t, http.MethodPut, "/_sandbox/token-state", map[string]bool{"enabled": on}, nil)
}

// SetMerchantReferenceEcho sets whether draft payment entries read back
// with the merchant_reference they were made with (bunq does not document
// it; off reads null).
func (e *Env) SetMerchantReferenceEcho(t testing.TB, on bool) {
	t.Helper()
	e.Control(t, http.MethodPut, "/_sandbox/merchant-reference", map[string]bool{"echo": on}, nil)
}

// SetClientIP makes every loopback caller appear to the bank to come from
// ip ("" resets): the TPP's egress IP changes.
func (e *Env) SetClientIP(t testing.TB, ip string) {
	t.Helper()
	e.Control(t, http.MethodPut, "/_sandbox/client-ip", map[string]string{"ip": ip}, nil)
}

// SetCallbackSigning turns the signing of callbacks on or off.
func (e *Env) SetCallbackSigning(t testing.TB, on bool) {
	t.Helper()
	e.Control(t, http.MethodPut, "/_sandbox/callback-signing", map[string]bool{"enabled": on}, nil)
}

// AdvanceClock moves the emulator's clock forward by d (whole seconds).
func (e *Env) AdvanceClock(t testing.TB, d time.Duration) {
	t.Helper()
	e.Control(t, http.MethodPost, "/_sandbox/clock", map[string]int64{"advance_seconds": int64(d / time.Second)}, nil)
}

// AcceptDraftPayment accepts a draft payment as its owner would in the app.
func (e *Env) AcceptDraftPayment(t testing.TB, id int64) {
	t.Helper()
	e.Control(t, http.MethodPost, "/_sandbox/draft-payments/"+strconv.FormatInt(id, 10)+"/accept", nil, nil)
}

// RejectDraftPayment rejects a draft payment as its owner would in the app.
func (e *Env) RejectDraftPayment(t testing.TB, id int64) {
	t.Helper()
	e.Control(t, http.MethodPost, "/_sandbox/draft-payments/"+strconv.FormatInt(id, 10)+"/reject", nil, nil)
}

// AcceptPSPDraftPayment accepts a PSP draft payment as the paying user.
func (e *Env) AcceptPSPDraftPayment(t testing.TB, id int64) {
	t.Helper()
	e.Control(t, http.MethodPost, "/_sandbox/psp-draft-payments/"+strconv.FormatInt(id, 10)+"/accept", nil, nil)
}

// RejectPSPDraftPayment rejects a PSP draft payment as the paying user.
func (e *Env) RejectPSPDraftPayment(t testing.TB, id int64) {
	t.Helper()
	e.Control(t, http.MethodPost, "/_sandbox/psp-draft-payments/"+strconv.FormatInt(id, 10)+"/reject", nil, nil)
}

// AuthorizeRequest is what a user does on the /auth page.
type AuthorizeRequest struct {
	ClientID    string `json:"client_id"`
	RedirectURI string `json:"redirect_uri"`
	State       string `json:"state"`
	UserID      int64  `json:"user_id"`
	Decision    string `json:"decision"` // "approve" (default) or "deny"
}

// Authorize approves or denies an OAuth request without a browser, with the
// same validation as the /auth page, and returns the redirect URL (with
// code and state, or error=access_denied).
func (e *Env) Authorize(t testing.TB, req AuthorizeRequest) string {
	t.Helper()
	if req.Decision == "" {
		req.Decision = "approve"
	}
	var out struct {
		RedirectURL string `json:"redirect_url"`
	}
	e.Control(t, http.MethodPost, "/_sandbox/oauth/authorize", req, &out)
	return out.RedirectURL
}

// RevokeGrant revokes every grant userID gave to clientID, as the user
// would in the app: sessions and access tokens die, an OAUTH callback fires.
func (e *Env) RevokeGrant(t testing.TB, userID int64, clientID string) {
	t.Helper()
	e.Control(t, http.MethodPost, "/_sandbox/oauth/revoke", map[string]any{"user_id": userID, "client_id": clientID}, nil)
}

// Callback is one delivery attempt of a notification callback.
type Callback struct {
	URL       string `json:"url"`
	Category  string `json:"category"`
	EventType string `json:"event_type"`
	Status    int    `json:"status"` // HTTP status, 0 when the request failed
	Attempt   int    `json:"attempt"`
	Body      string `json:"body"`
}

// Callbacks lists every callback delivery attempt so far.
func (e *Env) Callbacks(t testing.TB) []Callback {
	t.Helper()
	var out []Callback
	e.Control(t, http.MethodGet, "/_sandbox/callbacks", nil, &out)
	return out
}

// SetSessionTimeout changes a user's auto-logout setting, which bunq shows as
// session_timeout: for a PSP the lifetime of its sessions after the PSD2
// key's first hour-long one.
func (e *Env) SetSessionTimeout(t testing.TB, userID int64, seconds int) {
	t.Helper()
	e.Control(t, http.MethodPut, "/_sandbox/users/"+strconv.FormatInt(userID, 10)+"/session-timeout", map[string]int{"seconds": seconds}, nil)
}
