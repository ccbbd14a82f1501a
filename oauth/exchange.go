package oauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// BankOAuth describes the TPP's OAuth client at bunq.
type BankOAuth struct {
	ClientID     string
	ClientSecret string
	AuthURL      string // e.g. https://oauth.bunq.com/auth
	TokenURL     string // e.g. https://api.oauth.bunq.com/v1/token
	// RedirectURL is the callback registered at bunq: {public}/oauth/callback.
	RedirectURL string
	// HTTPClient sends the token request (its Transport is wrapped);
	// http.DefaultClient's transport when nil. Give it a timeout.
	HTTPClient *http.Client
}

// Exchanger builds authorization URLs and exchanges codes with
// golang.org/x/oauth2, adapted to bunq's token endpoint, which takes its
// parameters in the query string and no body.
type Exchanger struct {
	cfg    oauth2.Config
	client *http.Client
}

// NewExchanger validates b and returns an Exchanger.
func NewExchanger(b BankOAuth) (*Exchanger, error) {
	if b.ClientID == "" || b.ClientSecret == "" {
		return nil, errors.New("oauth: bunq OAuth client id and secret are required")
	}
	for name, u := range map[string]string{"auth URL": b.AuthURL, "token URL": b.TokenURL, "redirect URL": b.RedirectURL} {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			return nil, fmt.Errorf("oauth: %s %q is not an absolute http(s) URL", name, u)
		}
	}
	base := http.DefaultTransport
	timeout := defaultExchangeTimeout
	if b.HTTPClient != nil {
		if b.HTTPClient.Transport != nil {
			base = b.HTTPClient.Transport
		}
		if b.HTTPClient.Timeout > 0 {
			timeout = b.HTTPClient.Timeout
		}
	}
	return &Exchanger{
		cfg: oauth2.Config{
			ClientID:     b.ClientID,
			ClientSecret: b.ClientSecret,
			Endpoint: oauth2.Endpoint{
				AuthURL:  b.AuthURL,
				TokenURL: b.TokenURL,
				// bunq reads client_id and client_secret from the parameters,
				// never from Basic auth; fixing the style also stops x/oauth2
				// from probing with a second request.
				AuthStyle: oauth2.AuthStyleInParams,
			},
			RedirectURL: b.RedirectURL,
		},
		client: &http.Client{Transport: QueryTransport{Base: base}, Timeout: timeout},
	}, nil
}

// AuthCodeURL is bunq's authorize URL for state: response_type=code,
// client_id, redirect_uri and state.
func (e *Exchanger) AuthCodeURL(state string) string {
	return e.cfg.AuthCodeURL(state)
}

// AuthOrigin is the scheme and host of the authorize URL (for the pages' CSP).
func (e *Exchanger) AuthOrigin() string {
	u, err := url.Parse(e.cfg.Endpoint.AuthURL)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// ClientID is the TPP's OAuth client id at bunq.
func (e *Exchanger) ClientID() string { return e.cfg.ClientID }

// ExchangeError is a failed code exchange. It carries the OAuth error code
// (e.g. invalid_grant) and never the request URL, which holds the secret.
type ExchangeError struct {
	Code   string // OAuth error code from the bank, or "" for transport errors
	Status int    // HTTP status, 0 when there was no answer
	Err    error  // the cause, already free of secrets
	// Transient is a failure that may pass: no answer (timeout, dropped
	// connection) or a 5xx or 429 from the token endpoint.
	Transient bool
}

func (e *ExchangeError) Error() string {
	switch {
	case e.Code != "":
		return fmt.Sprintf("oauth: token exchange refused by bank: %s (HTTP %d)", e.Code, e.Status)
	case e.Status != 0:
		return fmt.Sprintf("oauth: token exchange failed: HTTP %d", e.Status)
	}
	return fmt.Sprintf("oauth: token exchange failed: %v", e.Err)
}

func (e *ExchangeError) Unwrap() error { return e.Err }

// Exchange trades an authorization code for an access token.
func (e *Exchanger) Exchange(ctx context.Context, code string) (*oauth2.Token, error) {
	if code == "" {
		return nil, &ExchangeError{Code: "invalid_request", Err: errors.New("empty code")}
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, e.client)
	tok, err := e.cfg.Exchange(ctx, code)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			status := 0
			if re.Response != nil {
				status = re.Response.StatusCode
			}
			transient := status >= 500 || status == http.StatusTooManyRequests || re.ErrorCode == "temporarily_unavailable"
			return nil, &ExchangeError{Code: re.ErrorCode, Status: status, Transient: transient, Err: errors.New("token endpoint refused the code")}
		}
		if ctx.Err() != nil {
			return nil, &ExchangeError{Err: ctx.Err(), Transient: true}
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			// url.Error quotes the URL; keep only the operation and cause.
			return nil, &ExchangeError{Err: fmt.Errorf("%s token endpoint: %w", ue.Op, ue.Err), Transient: true}
		}
		return nil, &ExchangeError{Err: errors.New("token endpoint answer not understood")}
	}
	if !strings.EqualFold(tok.TokenType, "bearer") && tok.TokenType != "" {
		return nil, &ExchangeError{Err: fmt.Errorf("unexpected token type %q", tok.TokenType)}
	}
	return tok, nil
}

// TokenState is the state bunq's token answer carries (bunq-api.md §4.3):
// the state the code was issued with. "" when the answer has none.
func TokenState(tok *oauth2.Token) string {
	s, _ := tok.Extra("state").(string)
	return s
}

// defaultExchangeTimeout bounds a token request when the caller gave none.
const defaultExchangeTimeout = 15 * time.Second

// QueryTransport sends form-encoded POSTs with their parameters in the URL
// query and an empty body, as bunq's token endpoint wants ("No body is
// expected"). Other requests pass through untouched. It lets x/oauth2 build
// and parse the exchange (its types and error handling stay) while the wire
// form is bunq's.
type QueryTransport struct {
	Base http.RoundTripper // http.DefaultTransport when nil
}

// maxFormBytes bounds the body moved into the query; a token request is tiny.
const maxFormBytes = 8 << 10

// RoundTrip implements http.RoundTripper.
func (t QueryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if req.Method != http.MethodPost || mt != "application/x-www-form-urlencoded" || req.Body == nil {
		return base.RoundTrip(req)
	}
	raw, err := io.ReadAll(io.LimitReader(req.Body, maxFormBytes+1))
	req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("oauth: read token request body: %w", err)
	}
	if len(raw) > maxFormBytes {
		return nil, errors.New("oauth: token request body too large")
	}
	form, err := url.ParseQuery(string(raw))
	if err != nil {
		return nil, errors.New("oauth: token request body is not form-encoded")
	}
	// A RoundTripper must not modify the caller's request: work on a clone.
	r := req.Clone(req.Context())
	u := *req.URL
	q := u.Query()
	for k, vs := range form {
		for _, v := range vs {
			q.Add(k, v)
		}
	}
	u.RawQuery = q.Encode()
	r.URL = &u
	r.Body = http.NoBody
	r.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
	r.ContentLength = 0
	r.Header.Del("Content-Type")
	return base.RoundTrip(r)
}
