// Package bankctxtest registers a TPP at the emulated bank for tests: a
// PSD2 context from a generated test certificate, an OAuth client with a
// redirect URL, and optionally a notification filter for OAUTH callbacks.
// It also walks an end user through the OAuth flow without a browser.
package bankctxtest

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bunqtpp/tpp/certs"
	"github.com/bunqtpp/tpp/internal/banktest"
	"github.com/bunqtpp/tpp/psd2"
)

// TPP is a registered TPP at the emulator.
type TPP struct {
	Env          *banktest.Env
	Client       *psd2.Client
	Context      *psd2.Context // the TPP's own PSD2 context
	ClientID     string
	ClientSecret string
	RedirectURL  string
}

// Register makes a PSD2 context, an OAuth client with redirectURL, and,
// when callbackURL is set, an OAUTH notification filter pointing there.
func Register(t testing.TB, env *banktest.Env, redirectURL, callbackURL string) *TPP {
	t.Helper()
	ctx := context.Background()
	gen, err := certs.Generate(nil, time.Now(), certs.Options{Roles: []certs.Role{"AISP", "PISP"}})
	if err != nil {
		t.Fatalf("bankctxtest: generate certificate: %v", err)
	}
	cl, err := psd2.New(psd2.Options{BaseURL: env.APIURL, RateMargin: -1, HTTPClient: &http.Client{Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	bc, err := cl.NewPSD2Context(ctx, psd2.PSD2Credentials{Certificate: gen.Leaf, Chain: []*x509.Certificate{gen.CA}, Key: gen.Key}, psd2.ContextOptions{})
	if err != nil {
		t.Fatalf("bankctxtest: PSD2 context: %v", err)
	}
	id, err := cl.CreateOAuthClient(ctx, bc)
	if err != nil {
		t.Fatalf("bankctxtest: create OAuth client: %v", err)
	}
	if _, err := cl.CreateCallbackURL(ctx, bc, id, redirectURL); err != nil {
		t.Fatalf("bankctxtest: register redirect URL: %v", err)
	}
	oc, err := cl.GetOAuthClient(ctx, bc, id)
	if err != nil {
		t.Fatalf("bankctxtest: read OAuth client: %v", err)
	}
	if callbackURL != "" {
		if _, err := cl.CreateNotificationFilters(ctx, bc, []psd2.NotificationFilter{
			{Category: psd2.CategoryOAuth, NotificationTarget: callbackURL},
		}); err != nil {
			t.Fatalf("bankctxtest: notification filter: %v", err)
		}
	}
	return &TPP{Env: env, Client: cl, Context: bc, ClientID: oc.ClientID, ClientSecret: oc.Secret, RedirectURL: redirectURL}
}

// Person returns a seeded sandbox person (the first user with accounts).
func Person(t testing.TB, env *banktest.Env) banktest.User {
	t.Helper()
	for _, u := range env.Users(t) {
		if len(u.Accounts) > 0 {
			return u
		}
	}
	t.Fatal("bankctxtest: the emulator has no user with accounts")
	return banktest.User{}
}

// Code approves the TPP for userID at the emulator's /auth (control
// endpoint) and returns the code from the redirect.
func (p *TPP) Code(t testing.TB, userID int64, state string) string {
	t.Helper()
	to := p.Env.Authorize(t, banktest.AuthorizeRequest{ClientID: p.ClientID, RedirectURI: p.RedirectURL, State: state, UserID: userID})
	u, err := url.Parse(to)
	if err != nil {
		t.Fatal(err)
	}
	code := u.Query().Get("code")
	if code == "" {
		t.Fatalf("bankctxtest: no code in redirect %s", to)
	}
	return code
}

// AccessToken runs the whole grant for userID and exchanges the code at the
// token host (query-string form, empty body).
func (p *TPP) AccessToken(t testing.TB, userID int64) string {
	t.Helper()
	code := p.Code(t, userID, "st")
	q := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {p.RedirectURL},
		"client_id": {p.ClientID}, "client_secret": {p.ClientSecret}}
	res, err := http.Post(p.Env.TokenURL+"/v1/token?"+q.Encode(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if res.StatusCode != 200 || json.Unmarshal(b, &out) != nil || out.AccessToken == "" {
		t.Fatalf("bankctxtest: token exchange: %d %s", res.StatusCode, strings.TrimSpace(string(b)))
	}
	return out.AccessToken
}
