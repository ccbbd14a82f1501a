// Package demo is a small fintech web app, "Demo Fintech", that uses the
// TPP's public API the way a real fintech would: over HTTP with its API key.
// It connects a user's bunq account (the real consent flow), shows accounts
// with balance charts and transactions, prepares payments the user approves
// in the bunq app, checks funds, revokes the connection and shows the
// webhooks it receives. 'tpp demo' mounts it under /demo.
//
// Pages are server-rendered and work without JavaScript (a pending payment
// then refreshes the page); one small script makes a pending payment's
// status, its history and the balances update in place, without a reload.
package demo

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Paths of the demo app. The fintech client must register
// PublicURL+ReturnPath as its return URL and PublicURL+WebhookPath as its
// webhook URL.
const (
	BasePath    = "/demo"
	ReturnPath  = BasePath + "/return"
	WebhookPath = BasePath + "/webhooks"
)

// Config configures the demo app.
type Config struct {
	// PublicURL is the TPP's public URL: the app calls the API there and
	// the browser comes back there.
	PublicURL string
	// APIKey and WebhookSecret are the demo fintech client's credentials.
	APIKey        string
	WebhookSecret string
	// BankAppURL is the emulated bank's "bunq app" page, where the user
	// approves payments; empty hides the link (a real bank has a phone app).
	BankAppURL string
	// ClientName is shown in the header; "" means "Demo Fintech".
	ClientName string
	HTTPClient *http.Client           // nil: a client with a 30 s timeout
	Clock      func() time.Time       // nil: time.Now
	Logger     *slog.Logger           // nil: discard
	Secure     bool                   // mark cookies Secure (https public URL)
	newKey     func() ([]byte, error) // tests may fix the CSRF key
}

// App is the demo fintech web app. It is safe for concurrent use.
type App struct {
	cfg     Config
	api     *api
	log     *slog.Logger
	now     func() time.Time
	csrfKey []byte
	pages   map[string]*template.Template
	events  events
	singles singles
}

//go:embed templates/*.html static/*
var assets embed.FS

// New checks cfg and parses the templates.
func New(cfg Config) (*App, error) {
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("demo: PublicURL %q is not an absolute http(s) URL", cfg.PublicURL)
	}
	if cfg.APIKey == "" || cfg.WebhookSecret == "" {
		return nil, errors.New("demo: APIKey and WebhookSecret are required")
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	if cfg.ClientName == "" {
		cfg.ClientName = "Demo Fintech"
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	now := cfg.Clock
	if now == nil {
		now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	newKey := cfg.newKey
	if newKey == nil {
		newKey = func() ([]byte, error) {
			k := make([]byte, 32)
			_, err := rand.Read(k)
			return k, err
		}
	}
	key, err := newKey()
	if err != nil {
		return nil, fmt.Errorf("demo: CSRF key: %w", err)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	return &App{
		cfg:     cfg,
		api:     &api{base: cfg.PublicURL, key: cfg.APIKey, hc: hc},
		log:     log,
		now:     now,
		csrfKey: key,
		pages:   pages,
	}, nil
}

// Handler serves the app under BasePath ("/demo/...").
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "static")
	mux.Handle("GET "+BasePath+"/static/", http.StripPrefix(BasePath+"/static/", cacheStatic(http.FileServerFS(static))))
	mux.HandleFunc("GET "+BasePath+"/{$}", a.dashboard)
	mux.HandleFunc("GET "+BasePath, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, BasePath+"/", http.StatusFound)
	})
	mux.HandleFunc("POST "+BasePath+"/connect", a.connect)
	mux.HandleFunc("GET "+ReturnPath, a.returned)
	mux.HandleFunc("POST "+BasePath+"/payments", a.pay)
	mux.HandleFunc("GET "+BasePath+"/payments/{id}/status", a.paymentStatus)
	mux.HandleFunc("GET "+BasePath+"/balances", a.balances)
	mux.HandleFunc("POST "+BasePath+"/funds", a.funds)
	mux.HandleFunc("POST "+BasePath+"/revoke", a.revoke)
	mux.HandleFunc("POST "+WebhookPath, a.receiveWebhook)
	mux.HandleFunc(BasePath+"/", func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, r, http.StatusNotFound, "There is no such page in this app.")
	})
	return mux
}

func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

// ---- the demo user

// The demo has no login: a random user id in a cookie stands for "our
// user". It is the consent's user_ref, so the consents of this browser are
// found through the API (GET /v1/consents?user_ref=) and nothing about them
// is kept here.
const userCookie = "demo_user"

func validUserRef(s string) bool {
	if !strings.HasPrefix(s, "user-") || len(s) != len("user-")+20 {
		return false
	}
	_, err := hex.DecodeString(s[len("user-"):])
	return err == nil
}

// user returns the browser's demo user, creating one when create is set.
func (a *App) user(w http.ResponseWriter, r *http.Request, create bool) string {
	if c, err := r.Cookie(userCookie); err == nil && validUserRef(c.Value) {
		return c.Value
	}
	if !create {
		return ""
	}
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	ref := "user-" + hex.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{
		Name: userCookie, Value: ref, Path: BasePath, MaxAge: 365 * 24 * 3600,
		HttpOnly: true, Secure: a.cfg.Secure, SameSite: http.SameSiteLaxMode,
	})
	return ref
}

// csrf is the form token of a user: an HMAC, so nothing is stored.
func (a *App) csrf(user string) string {
	m := hmac.New(sha256.New, a.csrfKey)
	m.Write([]byte("demo-csrf:" + user))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// postUser checks a form POST: the user cookie and the form's CSRF token.
func (a *App) postUser(w http.ResponseWriter, r *http.Request) (string, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		a.fail(w, r, http.StatusBadRequest, "The form could not be read. Please go back and try again.")
		return "", false
	}
	u := a.user(w, r, false)
	if u == "" || !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(a.csrf(u))) {
		a.fail(w, r, http.StatusForbidden, "This form has expired (the app restarted or your session ended). Please go back, reload the page and try again.")
		return "", false
	}
	return u, true
}

// clientIP is the browser's address, sent as PSU-IP-Address: the user is
// present, so the read is attended. The connection's peer is used, not
// X-Forwarded-For, which anyone can send.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	return host
}

// currentConsent returns the user's usable consent (newest first), or nil.
func (a *App) currentConsent(ctx context.Context, user string) (*Consent, []Consent, error) {
	all, err := a.api.consents(ctx, user)
	if err != nil {
		return nil, nil, err
	}
	for i := range all {
		if all[i].UserRef != user {
			continue // never trust a list filter blindly
		}
		switch all[i].Status {
		case "active", "reauth_required":
			return &all[i], all, nil
		}
	}
	return nil, all, nil
}

func newIdempotencyKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "demo-" + hex.EncodeToString(b)
}
