package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/bunqtpp/tpp"
)

// fakeTokenHost is a token endpoint that accepts parameters ONLY in the
// query string with an empty body, as bunq documents; anything else is 400.
type fakeTokenHost struct {
	mu   sync.Mutex
	seen []*http.Request
	body []string
}

func (f *fakeTokenHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.seen = append(f.seen, r)
	f.body = append(f.body, string(b))
	f.mu.Unlock()
	q := r.URL.Query()
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodPost || len(b) != 0 || r.URL.Path != "/v1/token" {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_request"})
		return
	}
	if q.Get("grant_type") != "authorization_code" || q.Get("client_id") != "cid" || q.Get("client_secret") != "s3cret" ||
		q.Get("redirect_uri") != "https://tpp.example/oauth/callback" {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client"})
		return
	}
	if q.Get("code") != "good-code" {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant", "error_description": "The authorization code is invalid or expired."})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"access_token": "tok-123", "token_type": "bearer", "state": ""})
}

func newTestExchanger(t *testing.T, tokenURL string) *Exchanger {
	t.Helper()
	ex, err := NewExchanger(BankOAuth{
		ClientID: "cid", ClientSecret: "s3cret",
		AuthURL: "https://oauth.example/auth", TokenURL: tokenURL,
		RedirectURL: "https://tpp.example/oauth/callback",
	})
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

func TestExchangeQueryString(t *testing.T) {
	t.Parallel()
	host := &fakeTokenHost{}
	srv := httptest.NewServer(host)
	defer srv.Close()
	ex := newTestExchanger(t, srv.URL+"/v1/token")

	tok, err := ex.Exchange(context.Background(), "good-code")
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "tok-123" || !strings.EqualFold(tok.TokenType, "bearer") {
		t.Fatalf("token = %+v", tok)
	}
	host.mu.Lock()
	defer host.mu.Unlock()
	if len(host.seen) != 1 {
		t.Fatalf("token endpoint called %d times, want 1 (no auth-style probing)", len(host.seen))
	}
	r := host.seen[0]
	if host.body[0] != "" || r.ContentLength != 0 {
		t.Errorf("body %q (len %d), want empty", host.body[0], r.ContentLength)
	}
	if r.Header.Get("Authorization") != "" {
		t.Error("client credentials sent as Basic auth")
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		t.Errorf("Content-Type %q on an empty body", ct)
	}
}

func TestExchangeInvalidGrantHidesSecrets(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(&fakeTokenHost{})
	defer srv.Close()
	ex := newTestExchanger(t, srv.URL+"/v1/token")
	_, err := ex.Exchange(context.Background(), "bad-code")
	var ee *ExchangeError
	if !errors.As(err, &ee) || ee.Code != "invalid_grant" || ee.Status != 400 {
		t.Fatalf("err = %v, want ExchangeError invalid_grant/400", err)
	}
	for _, secret := range []string{"s3cret", "bad-code"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error text %q contains %q", err, secret)
		}
	}
}

func TestExchangeTransportErrorHidesSecrets(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close() // connection refused from now on
	ex := newTestExchanger(t, u+"/v1/token")
	_, err := ex.Exchange(context.Background(), "some-code")
	if err == nil {
		t.Fatal("want error")
	}
	if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "some-code") {
		t.Fatalf("error leaks secrets: %v", err)
	}
}

// QueryTransport must leave other requests alone and not modify the
// caller's request.
func TestQueryTransportPassThrough(t *testing.T) {
	t.Parallel()
	var gotQuery, gotBody string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotQuery, gotBody = r.URL.RawQuery, string(b)
	}))
	defer srv.Close()
	c := &http.Client{Transport: QueryTransport{}}
	res, err := c.Post(srv.URL+"?a=1", "application/json", strings.NewReader(`{"x":1}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if gotQuery != "a=1" || gotBody != `{"x":1}` {
		t.Fatalf("JSON POST changed: query %q body %q", gotQuery, gotBody)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"?a=1", strings.NewReader(url.Values{"b": {"2"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if gotQuery != "a=1&b=2" || gotBody != "" {
		t.Fatalf("form POST: query %q body %q", gotQuery, gotBody)
	}
	if req.URL.RawQuery != "a=1" || req.Header.Get("Content-Type") == "" {
		t.Fatal("caller's request was modified")
	}
}

func TestAuthCodeURL(t *testing.T) {
	t.Parallel()
	ex := newTestExchanger(t, "https://token.example/v1/token")
	u, err := url.Parse(ex.AuthCodeURL("st-1"))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Host != "oauth.example" || u.Path != "/auth" || q.Get("response_type") != "code" || q.Get("client_id") != "cid" ||
		q.Get("redirect_uri") != "https://tpp.example/oauth/callback" || q.Get("state") != "st-1" {
		t.Fatalf("authorize URL %s", u)
	}
	if strings.Contains(u.String(), "s3cret") {
		t.Fatal("authorize URL holds the client secret")
	}
	if ex.AuthOrigin() != "https://oauth.example" {
		t.Fatalf("AuthOrigin %q", ex.AuthOrigin())
	}
}

func TestBrowserBinding(t *testing.T) {
	t.Parallel()
	s1, s2 := newState(), newState()
	if s1 == s2 || len(s1) < 43 { // 32 bytes base64url
		t.Fatalf("states %q %q", s1, s2)
	}
	n := tpp.RandomToken(32)
	h := hashNonce(n)
	if browserHash(n) != h || browserHash(tpp.RandomToken(32)) == h || browserHash("") != "" {
		t.Fatal("browser hash wrong")
	}
	if stateCookieName(s1) == stateCookieName(s2) {
		t.Fatal("cookie names collide")
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	cookie := newCSRFCookie(key)
	tok := csrfToken(key, cookie, "con_1")
	if !csrfValid(key, cookie, "con_1", tok) {
		t.Fatal("valid token refused")
	}
	// A cookie value we did not issue is refused even with its matching
	// token (only the key's holder makes those, but the value must be ours).
	planted := strings.Repeat("a", 40)
	for _, c := range [][3]string{{newCSRFCookie(key), "con_1", tok}, {cookie, "con_2", tok}, {"", "con_1", tok}, {cookie, "con_1", ""},
		{planted, "con_1", csrfToken(key, planted, "con_1")}, {cookie + "x", "con_1", csrfToken(key, cookie+"x", "con_1")}} {
		if csrfValid(key, c[0], c[1], c[2]) {
			t.Errorf("accepted %v", c)
		}
	}
	ck := cookies{secure: true}.state(s1, n, 600e9)
	if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/oauth" || ck.MaxAge != 600 {
		t.Fatalf("state cookie %+v", ck)
	}
	if c := (cookies{}).csrf("v"); c.Secure || c.SameSite != http.SameSiteStrictMode || !c.HttpOnly || c.Name != "tpp_csrf" || c.Path != "/connect" {
		t.Fatalf("csrf cookie %+v", c)
	}
}

// Under https the CSRF cookie carries the __Host- prefix (and so Secure,
// Path=/ and no Domain), so a sibling subdomain cannot plant it (issue 10).
func TestCSRFCookieHostPrefixUnderHTTPS(t *testing.T) {
	t.Parallel()
	c := cookies{secure: true}.csrf("v")
	if c.Name != "__Host-tpp_csrf" || !c.Secure || c.Path != "/" || c.Domain != "" || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
		t.Fatalf("csrf cookie under https %+v", c)
	}
	if err := c.Valid(); err != nil {
		t.Fatal(err)
	}
}
