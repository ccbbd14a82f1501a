package oauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"github.com/bunqtpp/tpp"
)

// Browser binding. The OAuth state alone proves only that *someone* started
// a flow; the cookie proves the callback arrives in the browser that did.
// Redis keeps the hash of the cookie's nonce, never the nonce itself.

// cookie names and paths.
const (
	stateCookiePrefix = "tpp_oauth_" // + a short hash of the state: one cookie per flow
	stateCookiePath   = "/oauth"
	csrfCookieName    = "tpp_csrf"
	csrfCookiePath    = "/connect"
	// hostCSRFCookieName is the CSRF cookie's name under https: the
	// __Host- prefix makes the browser refuse it unless it is Secure, has
	// Path=/ and no Domain, so a sibling subdomain cannot plant one.
	hostCSRFCookieName = "__Host-tpp_csrf"
	csrfFormField      = "csrf_token"
)

// newState returns a fresh OAuth state: 256 random bits.
func newState() string { return tpp.RandomToken(32) }

// hashNonce is what Redis stores for the browser nonce.
func hashNonce(nonce string) string {
	sum := sha256.Sum256([]byte(nonce))
	return hex.EncodeToString(sum[:])
}

// browserHash is the hash a callback's cookie nonce must match: "" for no
// cookie, which matches no state. Redis compares it with the stored hash;
// a hash of a 256-bit random nonce gives a timing observer nothing to use.
func browserHash(nonce string) string {
	if nonce == "" {
		return ""
	}
	return hashNonce(nonce)
}

// stateCookieName names the cookie of one flow, so two flows in two tabs
// do not overwrite each other's nonce.
func stateCookieName(state string) string {
	sum := sha256.Sum256([]byte("cookie:" + state))
	return stateCookiePrefix + hex.EncodeToString(sum[:8])
}

// cookies builds the flow's cookies. Secure is set when the public URL is
// https; plain http is only for local development (http://localhost), where
// browsers would drop a Secure cookie.
type cookies struct {
	secure bool
}

func (c cookies) state(state, nonce string, ttl time.Duration) *http.Cookie {
	return &http.Cookie{
		Name: stateCookieName(state), Value: nonce, Path: stateCookiePath,
		MaxAge: int(ttl / time.Second), Secure: c.secure, HttpOnly: true,
		// Lax: the callback is a top-level GET navigation from bunq's site.
		SameSite: http.SameSiteLaxMode,
	}
}

func (c cookies) clearState(state string) *http.Cookie {
	return &http.Cookie{
		Name: stateCookieName(state), Value: "", Path: stateCookiePath, MaxAge: -1,
		Secure: c.secure, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	}
}

// csrfName is the CSRF cookie's name: __Host- prefixed under https.
func (c cookies) csrfName() string {
	if c.secure {
		return hostCSRFCookieName
	}
	return csrfCookieName
}

func (c cookies) csrf(value string) *http.Cookie {
	path := csrfCookiePath
	if c.secure {
		path = "/" // required by the __Host- prefix
	}
	return &http.Cookie{
		Name: c.csrfName(), Value: value, Path: path, MaxAge: 3600,
		Secure: c.secure, HttpOnly: true,
		// Strict: the forms post from our own page only.
		SameSite: http.SameSiteStrictMode,
	}
}

// newCSRFCookie returns a fresh CSRF cookie value: a random nonce and its
// HMAC tag, so a value the browser (or someone planting cookies) chose is
// told apart from one we issued.
func newCSRFCookie(key []byte) string {
	nonce := tpp.RandomToken(24)
	return nonce + "." + csrfCookieTag(key, nonce)
}

func csrfCookieTag(key []byte, nonce string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("csrf-cookie\x00"))
	m.Write([]byte(nonce))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

// csrfCookieIssued reports whether v is a CSRF cookie value we issued.
func csrfCookieIssued(key []byte, v string) bool {
	nonce, tag, ok := strings.Cut(v, ".")
	if !ok || len(nonce) < 32 || tag == "" {
		return false
	}
	return hmac.Equal([]byte(csrfCookieTag(key, nonce)), []byte(tag))
}

// csrfToken binds a form to the browser's CSRF cookie and to one consent:
// HMAC(key, cookie value, consent id). A forged POST from another site has
// neither the cookie (SameSite=Strict) nor a token matching it.
func csrfToken(key []byte, cookieValue, consentID string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("csrf\x00"))
	m.Write([]byte(cookieValue))
	m.Write([]byte{0})
	m.Write([]byte(consentID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func csrfValid(key []byte, cookieValue, consentID, token string) bool {
	if !csrfCookieIssued(key, cookieValue) || token == "" {
		return false
	}
	return hmac.Equal([]byte(csrfToken(key, cookieValue, consentID)), []byte(token))
}
