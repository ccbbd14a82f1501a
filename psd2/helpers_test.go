package psd2_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/bunqtpp/tpp/internal/banktest"
	"github.com/bunqtpp/tpp/psd2"
)

// noBudget admits every call at once: for tests that do not test rate
// limits (the emulator's limits are off unless a test turns them on).
type noBudget struct{}

func (noBudget) Wait(ctx context.Context, _ string, _ int, _ time.Duration) error { return ctx.Err() }

// fakeClock is a settable clock shared by the client and the emulator.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// recorded is one request the client sent.
type recorded struct {
	Method string
	URL    string
	Header http.Header
	Body   []byte
	// Response side, for the contract test.
	Status   int
	RespBody []byte
}

// recorder is an http.RoundTripper that keeps every request and answer.
type recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	reqs []recorded
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	rec := recorded{Method: req.Method, URL: req.URL.String(), Header: req.Header.Clone(), Body: body}
	resp, err := r.next.RoundTrip(req)
	if err == nil {
		rb, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr != nil {
			return nil, rerr
		}
		resp.Body = io.NopCloser(bytes.NewReader(rb))
		rec.Status, rec.RespBody = resp.StatusCode, rb
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, rec)
	r.mu.Unlock()
	return resp, err
}

func (r *recorder) all() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.reqs...)
}

// newClient returns a client for env with quick retries and no budget,
// unless o says otherwise.
func newClient(t testing.TB, env *banktest.Env, o psd2.Options) *psd2.Client {
	t.Helper()
	o.BaseURL = env.APIURL
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Budget == nil {
		o.Budget = noBudget{}
	}
	if o.RetryBase == 0 {
		o.RetryBase = time.Millisecond
		o.RetryMax = 5 * time.Millisecond
	}
	c, err := psd2.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var (
	keyPoolOnce sync.Once
	keyPool     chan *rsa.PrivateKey
)

// poolKey hands out pre-generated RSA-2048 keys so that tests spend their
// time on the protocol, as the production key pool does.
func poolKey() (*rsa.PrivateKey, error) {
	keyPoolOnce.Do(func() {
		keyPool = make(chan *rsa.PrivateKey, 8)
		for i := 0; i < 2; i++ {
			go func() {
				for {
					k, err := rsa.GenerateKey(rand.Reader, 2048)
					if err != nil {
						panic(err)
					}
					keyPool <- k
				}
			}()
		}
	})
	return <-keyPool, nil
}

func ctxOpts() psd2.ContextOptions { return psd2.ContextOptions{KeySource: poolKey} }

// testCert is a self-signed pseudo QSeal certificate as bunq's sandbox takes it.
func testCert(t testing.TB, cn string) psd2.PSD2Credentials {
	t.Helper()
	key, err := poolKey()
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn, Country: []string{"NL"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return psd2.PSD2Credentials{Certificate: cert, Key: key}
}

// oauthFlow is the TPP registered with an OAuth client and a callback URL.
type oauthFlow struct {
	psp          *psd2.Context
	clientID     string
	clientSecret string
	oauthID      int64
	redirect     string
}

func registerTPP(t testing.TB, ctx context.Context, c *psd2.Client) *oauthFlow {
	t.Helper()
	psp, err := c.NewPSD2Context(ctx, testCert(t, "Test TPP AISP PISP"), ctxOpts())
	if err != nil {
		t.Fatalf("PSD2 context: %v", err)
	}
	id, err := c.CreateOAuthClient(ctx, psp)
	if err != nil {
		t.Fatalf("create OAuth client: %v", err)
	}
	const redirect = "https://tpp.example/oauth/callback"
	if _, err := c.CreateCallbackURL(ctx, psp, id, redirect); err != nil {
		t.Fatalf("create callback URL: %v", err)
	}
	oc, err := c.GetOAuthClient(ctx, psp, id)
	if err != nil {
		t.Fatalf("get OAuth client: %v", err)
	}
	return &oauthFlow{psp: psp, clientID: oc.ClientID, clientSecret: oc.Secret, oauthID: id, redirect: redirect}
}

// accessToken lets userID approve the TPP and exchanges the code the way
// bunq documents it (query parameters, empty body). The oauth package does
// this for real; the test only needs a token.
func (f *oauthFlow) accessToken(t testing.TB, env *banktest.Env, userID int64) string {
	t.Helper()
	redirect := env.Authorize(t, banktest.AuthorizeRequest{ClientID: f.clientID, RedirectURI: f.redirect, State: "st", UserID: userID})
	u, err := url.Parse(redirect)
	if err != nil {
		t.Fatal(err)
	}
	code := u.Query().Get("code")
	if code == "" {
		t.Fatalf("no code in redirect %q", redirect)
	}
	q := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {f.redirect},
		"client_id": {f.clientID}, "client_secret": {f.clientSecret}}
	resp, err := http.Post(env.TokenURL+"/v1/token?"+q.Encode(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token exchange: status %d, %v", resp.StatusCode, err)
	}
	return tok.AccessToken
}
