package main

// The whole-service test harness: it boots the TPP through run() exactly as
// an operator would ('tpp certs generate', 'tpp register', 'tpp clients
// create', 'tpp serve') against the emulated bank and a real redis-server,
// and gives tests an API client checked against the OpenAPI document, a
// cookie-jar "browser" without JavaScript, helpers for headless Chromium,
// and a record of every secret that crossed the wire to the bank so that
// the server's logs can be searched for them.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/chromedp"
	goredis "github.com/redis/go-redis/v9"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/internal/apitest"
	"github.com/bunqtpp/tpp/internal/banktest"
	"github.com/bunqtpp/tpp/internal/browsertest"
	"github.com/bunqtpp/tpp/internal/flowdriver"
	"github.com/bunqtpp/tpp/internal/redistest"
	"github.com/bunqtpp/tpp/internal/stacktest"
	"github.com/bunqtpp/tpp/redis"
	"github.com/bunqtpp/tpp/seal"
	"github.com/bunqtpp/tpp/sqlite"
	"github.com/bunqtpp/tpp/storage"
)

// harness is one TPP with its own bank, Redis, database and fintech front
// end. Tests that need isolation start their own.
type harness struct {
	t *testing.T

	Env     *banktest.Env
	Redis   *redistest.Server
	RDB     goredis.UniversalClient
	Fintech *fintech

	// URL is the TPP's public URL (http://127.0.0.1:PORT).
	URL       string
	DBPath    string
	MasterKey string
	// APIKey and ClientID are the fintech client made by 'tpp clients create'.
	APIKey    string
	ClientID  string
	ReturnURL string
	// OAuthClientID is the TPP's OAuth client_id at the bank.
	OAuthClientID string

	logs      *stacktest.LogBuffer // the server's stderr: effective config and JSON logs
	out       *stacktest.LogBuffer // the server's stdout
	secrets   *secretSet
	validator *apitest.Validator
	apiClient *http.Client
	keyring   *seal.Keyring

	// What serve needs to (re)start the server on the same data.
	opts                 harnessOptions
	apiProxy, tokenProxy string
	listen               string // host:port of URL
	redisURL             string
}

// harnessOptions change what newHarness sets up.
type harnessOptions struct {
	// redisPassword, when set, protects the redis-server with requirepass
	// and gives the TPP a redis:// URL carrying it.
	redisPassword string
	// redisTLS starts the redis-server with TLS only (and the password, if
	// set) and gives the TPP a rediss:// URL and --redis-ca.
	redisTLS bool
	// webhookURL, when set, is the fintech client's webhook URL.
	webhookURL string
	// serveFlags are added to every 'tpp serve' command line after the
	// harness's own (a later flag wins).
	serveFlags []string
}

// forTest returns the harness reporting to t, for use in a subtest: a
// helper that fails must fail the test that called it (FailNow from a
// subtest on its parent's T panics).
func (h *harness) forTest(t *testing.T) *harness {
	c := *h
	c.t = t
	c.apiClient = stacktest.APIClient(t, h.validator)
	return &c
}

// startHarness boots the whole service and stops it in t.Cleanup, failing
// t unless run() returns nil (a graceful shutdown) and the captured logs
// hold none of the secrets seen during the test.
func startHarness(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t, harnessOptions{})
	h.serve(t)
	return h
}

// newHarness prepares a TPP as an operator would ('tpp certs generate',
// 'tpp register', 'tpp clients create' through run()) without starting it:
// serve does, as often as a test likes, on the same data. The server's
// output is checked for secrets when t ends, after every server started
// here has stopped.
func newHarness(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	h := &harness{t: t, logs: &stacktest.LogBuffer{}, out: &stacktest.LogBuffer{}, secrets: newSecretSet(), opts: o}
	t.Cleanup(func() { h.checkLogs(t) }) // runs last: registered first
	h.Env = banktest.Start(t, banktest.WithSignedCallbacks())
	switch {
	case o.redisTLS:
		// The server knows the password from its start (StartTLS).
		h.Redis = redistest.StartTLS(t, o.redisPassword)
		h.redisURL = h.Redis.URL
		h.RDB = h.Redis.Client(t)
		h.opts.serveFlags = append([]string{"--redis-ca", h.Redis.CAFile}, o.serveFlags...)
		if o.redisPassword != "" {
			h.secrets.add("redis password", o.redisPassword)
		}
	case o.redisPassword != "":
		h.Redis = redistest.Start(t)
		h.requirePass(t)
		h.redisURL = "redis://:" + o.redisPassword + "@" + h.Redis.Addr + "/0"
		h.secrets.add("redis password", o.redisPassword)
		c := goredis.NewClient(&goredis.Options{Addr: h.Redis.Addr, Password: o.redisPassword})
		t.Cleanup(func() { _ = c.Close() })
		h.RDB = c
	default:
		h.Redis = redistest.Start(t)
		h.redisURL = h.Redis.URL
		h.RDB = h.Redis.Client(t)
	}
	h.Fintech = newFintech(t)
	h.ReturnURL = h.Fintech.URL + "/return"

	// The TPP reaches the bank's API and token hosts through recording
	// proxies: that is how the test learns the tokens and secrets that
	// must never show up in the logs (the user's browser goes straight to
	// the bank's authorize page, as in production).
	h.apiProxy = tapProxy(t, h.Env.APIURL, h.secrets)
	h.tokenProxy = tapProxy(t, h.Env.TokenURL, h.secrets)

	h.listen = "127.0.0.1:" + strconv.Itoa(freeTCPPort(t))
	h.URL = "http://" + h.listen
	dir := t.TempDir()
	h.DBPath = filepath.Join(dir, "data", "tpp.db")
	mk := randomBytes(t, 32)
	h.MasterKey = "k1:" + hex.EncodeToString(mk)
	h.secrets.add("master key", hex.EncodeToString(mk))
	kr, err := storage.OpenKeyring(h.MasterKey)
	if err != nil {
		t.Fatal(err)
	}
	h.keyring = kr

	certDir := filepath.Join(dir, "certs")
	h.cli("certs", "generate", "--out", certDir, "--roles", "AISP,PISP,CBPII", "--org", "E2E TPP B.V.")
	h.addPEMSecret("certificate private key", filepath.Join(certDir, "key.pem"))

	out := h.cli("register", "--env", h.apiProxy, "--cert", filepath.Join(certDir, "cert.pem"),
		"--key", filepath.Join(certDir, "key.pem"), "--chain", filepath.Join(certDir, "chain.pem"),
		"--public-url", h.URL, "--db", h.DBPath, "--master-key", h.MasterKey)
	if !strings.Contains(out, "registered: OAuth client_id") {
		t.Fatalf("tpp register did not finish:\n%s", out)
	}
	h.readRegistration(h.apiProxy)

	flags := []string{"--return-url", h.ReturnURL}
	if o.webhookURL != "" {
		flags = append(flags, "--webhook-url", o.webhookURL)
	}
	h.APIKey, h.ClientID = h.createClientWith("Acme Budget", flags...)

	h.validator = apitest.NewValidator(t)
	h.apiClient = stacktest.APIClient(t, h.validator)
	return h
}

// requirePass (re)sets the redis-server's password: a restarted server
// forgets it, as its configuration is not persisted.
func (h *harness) requirePass(t *testing.T) {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: h.Redis.Addr})
	defer c.Close()
	if err := c.ConfigSet(context.Background(), "requirepass", h.opts.redisPassword).Err(); err != nil {
		t.Fatalf("CONFIG SET requirepass: %v", err)
	}
}

// serveArgs is the command line of 'tpp serve' for this harness; later
// flags in extra win (the flag package keeps the last value).
func (h *harness) serveArgs(extra ...string) []string {
	args := []string{"serve",
		"--bank", h.apiProxy,
		"--bank-oauth-url", h.Env.OAuthURL + "/auth",
		"--bank-token-url", h.tokenProxy + "/v1/token",
		"--listen", h.listen,
		"--public-url", h.URL,
		"--redis-url", h.redisURL,
		"--db", h.DBPath,
		"--master-key", h.MasterKey,
		"--metrics-listen", "",
		"--log-level", "debug",
		// Above net/http's 5 s for a connection that has sent nothing
		// yet: Chromium's preconnects would otherwise fail the stop.
		"--shutdown-grace", "15s",
		// The emulated bank signs its callbacks (newHarness turns its
		// option on); bunq does not, see TestE2EUnsignedCallbacks (mode none).
		"--bank-callback-auth", "signature",
	}
	return append(append(args, h.opts.serveFlags...), extra...)
}

// tppRun is one run() of 'tpp serve'.
type tppRun struct {
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// serve starts 'tpp serve' in-process and waits until it is healthy. If
// the test has not stopped it, it is stopped when t ends and must return
// nil.
func (h *harness) serve(t *testing.T, extra ...string) *tppRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &tppRun{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- run(ctx, h.serveArgs(extra...), h.out, h.logs) }()
	t.Cleanup(func() {
		if err := r.stop(30 * time.Second); err != nil {
			t.Errorf("tpp serve did not shut down cleanly: %v\nlogs:\n%s", err, tail(h.logs.String(), 4000))
		}
	})
	h.waitHealthy(r.done)
	return r
}

// stop does what main does on SIGTERM: main runs run() under
// signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM), so a SIGTERM
// is exactly the cancellation of run()'s context. It returns run()'s
// result, or an error if run() does not return within d.
func (r *tppRun) stop(d time.Duration) error {
	r.once.Do(func() {
		r.cancel()
		select {
		case r.err = <-r.done:
		case <-time.After(d):
			r.err = fmt.Errorf("run() did not return within %s of the cancellation", d)
		}
	})
	return r.err
}

// cli runs one tpp command and returns its stdout, failing t on error.
func (h *harness) cli(args ...string) string {
	h.t.Helper()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), args, &out, &errOut); err != nil {
		h.t.Fatalf("tpp %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args[:min(2, len(args))], " "), err, out.String(), errOut.String())
	}
	return out.String()
}

var (
	e2eClientIDRe = regexp.MustCompile(`(?m)^Client ID:\n  (\S+)$`)
	e2eAPIKeyRe   = regexp.MustCompile(`(?m)^API key \(shown once[^\n]*\n  (\S+)$`)
	e2eWebhookRe  = regexp.MustCompile(`(?m)^Webhook signing secret[^\n]*\n  (\S+)$`)
)

// createClient runs 'tpp clients create' against the live database and
// returns the new client's API key and id.
func (h *harness) createClient(name string, returnURLs ...string) (apiKey, clientID string) {
	h.t.Helper()
	var flags []string
	for _, u := range returnURLs {
		flags = append(flags, "--return-url", u)
	}
	return h.createClientWith(name, flags...)
}

// createClientWith is createClient with any flags of 'tpp clients create'.
func (h *harness) createClientWith(name string, flags ...string) (apiKey, clientID string) {
	h.t.Helper()
	args := append([]string{"clients", "create", "--db", h.DBPath, "--master-key", h.MasterKey, "--name", name}, flags...)
	out := h.cli(args...)
	key, id := e2eAPIKeyRe.FindStringSubmatch(out), e2eClientIDRe.FindStringSubmatch(out)
	if key == nil || id == nil {
		h.t.Fatalf("tpp clients create printed no API key or client id:\n%s", out)
	}
	h.secrets.add("fintech API key", key[1])
	if ws := e2eWebhookRe.FindStringSubmatch(out); ws != nil {
		h.secrets.add("webhook signing secret", ws[1])
	}
	return key[1], id[1]
}

// readRegistration reads what 'tpp register' stored, as an operator with
// the master key could: the OAuth client id, and the client secret and API
// context tokens as secrets.
func (h *harness) readRegistration(apiBase string) {
	h.t.Helper()
	db, err := sqlite.Open(context.Background(), h.DBPath, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	defer db.Close()
	reg, err := sqlite.NewRegistrationStore(db, h.keyring).Registration(context.Background(), apiBase)
	if err != nil {
		h.t.Fatalf("read the registration: %v", err)
	}
	h.OAuthClientID = reg.ClientID
	h.secrets.add("OAuth client secret", reg.ClientSecret)
	h.secrets.addContext("TPP API context", reg.Context)
}

func (h *harness) addPEMSecret(label, path string) {
	h.t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		h.t.Fatal(err)
	}
	h.secrets.addPEM(label, string(raw))
}

// waitHealthy polls /healthz until the server answers, or fails t with the
// server's output when it stopped or took too long.
func (h *harness) waitHealthy(done <-chan error) {
	h.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		res, err := http.Get(h.URL + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-done:
			h.t.Fatalf("tpp serve stopped before it was healthy: %v\nstdout:\n%s\nlogs:\n%s", err, h.out.String(), tail(h.logs.String(), 4000))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("tpp serve not healthy within 45s\nlogs:\n%s", tail(h.logs.String(), 4000))
		}
	}
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	// Below the kernel's ephemeral range (32768 and up on Linux), so no
	// connection or :0 listener of a parallel test can take the port
	// between this check and its use (a server restarted on its old port
	// needs it again); never the same port twice in this process.
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 1000 {
		port := 20000 + mathrand.IntN(12000)
		if handedOut.ports[port] {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		l.Close()
		handedOut.ports[port] = true
		return port
	}
	t.Fatal("no free TCP port between 20000 and 32000")
	return 0
}

// handedOut is the ports freeTCPPort gave this test process.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// ---- the fintech's API

// jsonObject is a decoded JSON object; numbers stay json.Number, never float.
type jsonObject map[string]any

func (o jsonObject) str(key string) string {
	s, _ := o[key].(string)
	return s
}

func (o jsonObject) obj(key string) jsonObject {
	m, _ := o[key].(map[string]any)
	return m
}

// apiResponse is one answer of the TPP's API.
type apiResponse struct {
	Status int
	Header http.Header
	Body   jsonObject
}

// apiAs calls the TPP's API with key (none when empty) and extra headers.
// Every exchange is validated against the OpenAPI document.
func (h *harness) apiAs(key, method, path string, body any, header http.Header) apiResponse {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	res, err := h.apiClient.Do(req)
	if err != nil {
		h.t.Errorf("%s %s: %v", method, path, err)
		return apiResponse{}
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Errorf("%s %s: read: %v", method, path, err)
		return apiResponse{}
	}
	out := apiResponse{Status: res.StatusCode, Header: res.Header}
	if len(raw) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber() // no floats, even in a test
		if err := dec.Decode(&out.Body); err != nil {
			h.t.Errorf("%s %s → %d: body is not a JSON object: %v\n%s", method, path, res.StatusCode, err, raw)
		}
	}
	return out
}

// api calls the TPP's API as the harness's fintech client. Safe to call
// from several goroutines.
func (h *harness) api(method, path string, body any) (int, jsonObject) {
	h.t.Helper()
	r := h.apiAs(h.APIKey, method, path, body, nil)
	return r.Status, r.Body
}

// createConsent creates a pending consent returning to the registered
// return URL and returns its id and authorize_url.
func (h *harness) createConsent(scopes ...string) (id, authorizeURL string) {
	h.t.Helper()
	if len(scopes) == 0 {
		scopes = []string{"accounts", "payments"}
	}
	st, out := h.api(http.MethodPost, "/v1/consents", map[string]any{"user_ref": "user-42", "scopes": scopes, "return_url": h.ReturnURL})
	if st != http.StatusCreated || out.str("status") != "pending" || out.str("authorize_url") == "" {
		h.t.Fatalf("create consent: %d %v", st, out)
	}
	return out.str("id"), out.str("authorize_url")
}

// consent reads a consent through the API.
func (h *harness) consent(id string) jsonObject {
	h.t.Helper()
	st, out := h.api(http.MethodGet, "/v1/consents/"+url.PathEscape(id), nil)
	if st != http.StatusOK {
		h.t.Fatalf("GET consent %s: %d %v", id, st, out)
	}
	return out
}

// waitConsent polls the API until the consent has status want.
func (h *harness) waitConsent(id, want string, within time.Duration) jsonObject {
	h.t.Helper()
	deadline := time.Now().Add(within)
	for {
		c := h.consent(id)
		if c.str("status") == want {
			return c
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("consent %s is %q after %s, want %q\nlogs:\n%s", id, c.str("status"), within, want, tail(h.logs.String(), 3000))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// ---- the bank side

// person is a seeded sandbox person with accounts (who approves consents).
func (h *harness) person() banktest.User {
	h.t.Helper()
	for _, u := range h.Env.Users(h.t) {
		if len(u.Accounts) > 0 {
			return u
		}
	}
	h.t.Fatal("the emulated bank has no user with accounts")
	return banktest.User{}
}

func (h *harness) userNamed(name string) banktest.User {
	h.t.Helper()
	for _, u := range h.Env.Users(h.t) {
		if u.DisplayName == name {
			return u
		}
	}
	h.t.Fatalf("the emulated bank has no user %q", name)
	return banktest.User{}
}

// decide has userID approve or deny at the bank (the emulator's control
// endpoint, validated like its /auth page) and returns the redirect to our
// callback, with code and state or an error.
func (h *harness) decide(bankAuthURL *url.URL, userID int64, decision string) string {
	h.t.Helper()
	if err := h.checkBankAuth(bankAuthURL); err != nil {
		h.t.Fatal(err)
	}
	to := h.Env.Authorize(h.t, banktest.AuthorizeRequest{
		ClientID: bankAuthURL.Query().Get("client_id"), RedirectURI: bankAuthURL.Query().Get("redirect_uri"), State: bankAuthURL.Query().Get("state"),
		UserID: userID, Decision: decision,
	})
	h.collectCode(to)
	return to
}

// checkBankAuth checks that the bank's authorize URL carries our client,
// callback and a state.
func (h *harness) checkBankAuth(u *url.URL) error {
	q := u.Query()
	if q.Get("client_id") != h.OAuthClientID || q.Get("redirect_uri") != h.URL+"/oauth/callback" || q.Get("state") == "" {
		return fmt.Errorf("the bank authorize URL does not carry our client, callback and a state: %s", u)
	}
	return nil
}

// collectCode adds the OAuth code of a callback URL to the secrets.
func (h *harness) collectCode(callbackURL string) {
	if u, err := url.Parse(callbackURL); err == nil {
		h.secrets.add("OAuth code", u.Query().Get("code"))
	}
}

// activeConsent runs the whole consent flow without a real browser
// (flowdriver: a cookie-jar client posting our forms, and the bank's
// approval through the emulator's control endpoint) and returns the active
// consent's id.
func (h *harness) activeConsent(t *testing.T, scopes ...string) string {
	t.Helper()
	id, au := h.createConsent(scopes...)
	err := flowdriver.Approve(context.Background(), flowdriver.NewBrowser("", nil), flowdriver.Bank{URL: h.Env.APIURL}, flowdriver.Approval{
		AuthorizeURL: au, ConsentID: id, ReturnURL: h.ReturnURL, UserID: h.person().ID,
		OnBankAuth: h.checkBankAuth, OnCallback: h.collectCode,
	})
	if err != nil {
		t.Fatal(err)
	}
	if c := h.consent(id); c.str("status") != "active" {
		t.Fatalf("consent after the flow: %v", c)
	}
	h.collectStoredSecrets(id)
	return id
}

// contextStored reports whether Redis holds a bunq context for consent id.
func (h *harness) contextStored(id string) bool {
	h.t.Helper()
	store, err := redis.NewContextStore(h.RDB, redis.NewKeys("tpp:"), h.keyring, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	_, err = store.Get(context.Background(), id)
	if errors.Is(err, tpp.ErrNotFound) {
		return false
	}
	if err != nil {
		h.t.Fatalf("read the stored context of %s: %v", id, err)
	}
	return true
}

// collectStoredSecrets adds the consent's sealed access token (SQLite) and
// its bunq context (Redis) to the secrets the logs must not contain.
func (h *harness) collectStoredSecrets(id string) {
	h.t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, h.DBPath, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	defer db.Close()
	if tok, err := sqlite.NewConsentService(db, h.keyring).AccessToken(ctx, id); err == nil {
		h.secrets.add("user access token", tok)
	}
	store, err := redis.NewContextStore(h.RDB, redis.NewKeys("tpp:"), h.keyring, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	if blob, err := store.Get(ctx, id); err == nil {
		h.secrets.addContext("user API context", blob)
	}
}

// ---- a browser without JavaScript

// jarBrowser is flowdriver's browser following no redirects, so tests see
// every hop (and the callback URL with the code); it fails the test on
// errors.
type jarBrowser struct {
	t *testing.T
	b *flowdriver.Browser
}

func (h *harness) newJarBrowser() *jarBrowser {
	return &jarBrowser{t: h.t, b: flowdriver.NewBrowser("", nil)}
}

type page struct {
	status   int
	body     string
	location string
}

func (b *jarBrowser) page(p flowdriver.Page, err error) page {
	b.t.Helper()
	if err != nil {
		b.t.Fatal(err)
	}
	return page{status: p.Status, body: p.Body, location: p.Location}
}

func (b *jarBrowser) do(req *http.Request) page {
	b.t.Helper()
	return b.page(b.b.Do(req))
}

func (b *jarBrowser) get(u string) page {
	b.t.Helper()
	return b.page(b.b.Get(context.Background(), u))
}

func (b *jarBrowser) post(u string, form url.Values) page {
	b.t.Helper()
	return b.page(b.b.Post(context.Background(), u, form))
}

// open loads our consent page and returns its form token.
func (b *jarBrowser) open(authorizeURL string) string {
	b.t.Helper()
	_, tok, err := b.b.Open(context.Background(), authorizeURL)
	if err != nil {
		b.t.Fatalf("consent page %s: %v", authorizeURL, err)
	}
	return tok
}

// toBank presses Continue on our page and returns the bank's authorize URL.
func (b *jarBrowser) toBank(authorizeURL string) *url.URL {
	b.t.Helper()
	u, err := b.b.ToBank(context.Background(), authorizeURL)
	if err != nil {
		b.t.Fatal(err)
	}
	return u
}

func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("parse %q: %v", raw, err)
	}
	return u.Query()
}

// ---- headless Chromium

// connectInBrowser runs the consent flow in a real browser: our consent
// page (Continue), the bank's sign-in (pick userName) and consent page
// (Approve, or Deny when approve is false), until the fintech's return
// page. It saves a screenshot at every step and returns the final URL.
func (h *harness) connectInBrowser(b *browsertest.Browser, consentID, userName string) string {
	h.t.Helper()
	return h.browserFlow(b, consentID, userName, "approve")
}

func (h *harness) browserFlow(b *browsertest.Browser, consentID, userName, decision string) string {
	h.t.Helper()
	u := h.userNamed(userName)
	b.Run("open consent page",
		chromedp.Navigate(h.URL+"/connect/"+url.PathEscape(consentID)),
		chromedp.WaitVisible(`form[action$="/continue"] button`),
	)
	b.Screenshot("1-consent-page")
	b.Run("continue to bunq",
		chromedp.Click(`form[action$="/continue"] button`),
		chromedp.WaitVisible(`input[name="user_id"][value="`+strconv.FormatInt(u.ID, 10)+`"]`),
	)
	b.Screenshot("2-bank-sign-in")
	b.Run("pick the sandbox user",
		chromedp.Click(`input[name="user_id"][value="`+strconv.FormatInt(u.ID, 10)+`"]`),
		chromedp.Click(`form[action="/auth"] button.primary`),
		chromedp.WaitVisible(`button[value="approve"]`),
	)
	b.Screenshot("3-bank-consent")
	b.Run(decision+" at bunq",
		chromedp.Click(`button[value="`+decision+`"]`),
		chromedp.WaitVisible(`#fintech-landing`),
	)
	b.Screenshot("4-back-at-fintech-" + decision)
	return b.Location()
}

// consoleLog collects what the browser's console says (CSP violations,
// blocked navigations), for failure messages.
type consoleLog struct {
	mu      sync.Mutex
	entries []string
}

func (c *consoleLog) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.entries, "\n")
}

// watchConsole starts collecting b's console entries.
func watchConsole(t *testing.T, b *browsertest.Browser) *consoleLog {
	t.Helper()
	c := &consoleLog{}
	if err := chromedp.Listen(b.Ctx, func(ev any) {
		if e, ok := ev.(*cdplog.EventEntryAdded); ok && e.Entry != nil {
			c.mu.Lock()
			c.entries = append(c.entries, string(e.Entry.Source)+": "+e.Entry.Text)
			c.mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("listen to the browser console: %v", err)
	}
	ctx, cancel := context.WithTimeout(b.Ctx, 10*time.Second)
	defer cancel()
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("enable the browser console log: %v", err)
	}
	return c
}

// ---- the fintech front end

// fintech is the fintech's web front end: the return URL lands here and
// every landing is recorded.
type fintech struct {
	URL string
	mu  sync.Mutex
	got []url.Values
}

func newFintech(t *testing.T) *fintech {
	f := &fintech{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/return" {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		f.mu.Lock()
		f.got = append(f.got, q)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><title>Acme Budget</title><body style="font-family:sans-serif;margin:40px">`+
			`<h1 id="fintech-landing">Back at Acme Budget</h1><p>Connection <b>%s</b>: <span id="status">%s</span> %s</p></body></html>`,
			html.EscapeString(q.Get("consent_id")), html.EscapeString(q.Get("status")), html.EscapeString(q.Get("error")))
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// landings returns the queries the fintech's return page was opened with.
func (f *fintech) landings() []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]url.Values(nil), f.got...)
}

// ---- secrets and logs

// secretSet is every secret value the test saw, with the labels of where
// it was seen.
type secretSet struct {
	mu   sync.Mutex
	vals map[string]map[string]bool
}

func newSecretSet() *secretSet { return &secretSet{vals: map[string]map[string]bool{}} }

// minSecretLen keeps short values (ids, "true") out: they would match by
// chance and are no secrets.
const minSecretLen = 12

func (s *secretSet) add(label, v string) {
	if len(v) < minSecretLen {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.vals[v] == nil {
		s.vals[v] = map[string]bool{}
	}
	s.vals[v][label] = true
}

// addPEM adds the base64 lines of a PEM block: enough of a key to find
// it in logs in any layout.
func (s *secretSet) addPEM(label, pem string) {
	for _, line := range strings.Split(pem, "\n") {
		line = strings.TrimSpace(line)
		if len(line) >= 40 && !strings.HasPrefix(line, "-----") {
			s.add(label, line)
		}
	}
}

// addContext adds the tokens and private key of a serialised psd2.Context.
func (s *secretSet) addContext(label string, blob []byte) {
	var c struct {
		Installation struct {
			Token         string `json:"token"`
			ClientPrivate string `json:"client_private_key"`
		} `json:"installation"`
		Secret  string `json:"secret"`
		Session *struct {
			Token string `json:"token"`
		} `json:"session"`
	}
	if json.Unmarshal(blob, &c) != nil {
		return
	}
	s.add(label+" installation token", c.Installation.Token)
	s.add(label+" API key", c.Secret)
	if c.Session != nil {
		s.add(label+" session token", c.Session.Token)
	}
	s.addPEM(label+" private key", c.Installation.ClientPrivate)
}

// sample returns a value collected under label ("" if none).
func (s *secretSet) sample(label string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for v, ls := range s.vals {
		if ls[label] {
			return v
		}
	}
	return ""
}

// labels returns the distinct labels collected so far.
func (s *secretSet) labels() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, ls := range s.vals {
		for l := range ls {
			if !seen[l] {
				seen[l] = true
				out = append(out, l)
			}
		}
	}
	sort.Strings(out)
	return out
}

// find returns the labels of the secrets that occur in text.
func (s *secretSet) find(text string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var hits []string
	for v, ls := range s.vals {
		if strings.Contains(text, v) {
			for l := range ls {
				hits = append(hits, l)
			}
		}
	}
	sort.Strings(hits)
	return hits
}

// checkLogs fails t if the server's output holds a collected secret or any
// PEM block.
func (h *harness) checkLogs(t testing.TB) {
	t.Helper()
	logs := h.logs.String() + h.out.String()
	if hits := h.secrets.find(logs); len(hits) > 0 {
		t.Errorf("the server's output contains secrets: %v", hits)
	}
	if strings.Contains(logs, "BEGIN") {
		t.Errorf("the server's output contains a PEM block (BEGIN marker)")
	}
}

// tapProxy is a reverse proxy to target that records every secret going
// to or coming from the bank: authentication headers, tokens, secrets and
// codes in bodies and queries.
func tapProxy(t *testing.T, target string, secrets *secretSet) string {
	t.Helper()
	to, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(to)
			secrets.add("bank auth header", r.In.Header.Get("X-Bunq-Client-Authentication"))
			for _, k := range []string{"code", "client_secret", "refresh_token"} {
				secrets.add("bank request "+k, r.In.URL.Query().Get(k))
			}
			if r.In.Body != nil {
				raw, _ := io.ReadAll(r.In.Body)
				r.Out.Body = io.NopCloser(bytes.NewReader(raw))
				r.Out.ContentLength = int64(len(raw))
				collectJSONSecrets(secrets, "bank request", raw)
				if form, err := url.ParseQuery(string(raw)); err == nil {
					for _, k := range []string{"code", "client_secret", "refresh_token"} {
						secrets.add("bank request "+k, form.Get(k))
					}
				}
			}
		},
		ModifyResponse: func(res *http.Response) error {
			raw, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil {
				return err
			}
			res.Body = io.NopCloser(bytes.NewReader(raw))
			collectJSONSecrets(secrets, "bank response", raw)
			return nil
		},
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv.URL
}

// secretKeys are the JSON members that carry credentials in bunq's API.
var secretKeys = map[string]bool{"token": true, "access_token": true, "refresh_token": true, "secret": true, "client_secret": true}

func collectJSONSecrets(s *secretSet, label string, raw []byte) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if str, ok := e.(string); ok && secretKeys[k] {
					s.add(label+" "+k, str)
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
}
