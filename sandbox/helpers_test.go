package sandbox_test

// A minimal bunq client written for these tests only, from the reference:
// it must not share code with package psd2 or with the emulator itself.

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bunqtpp/tpp/internal/banktest"
)

type tclient struct {
	t         testing.TB
	base      string // API host without /v1
	key       *rsa.PrivateKey
	pubPEM    string
	serverKey *rsa.PublicKey
	instToken string
	sessToken string
	userID    int64
	user      map[string]any // the session-server user element
	userType  string
	secret    string // the API key or credential token of context
}

type tresp struct {
	status int
	header http.Header
	raw    []byte
}

func (r tresp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.raw, &m); err != nil {
		t.Fatalf("response is not JSON: %v: %s", err, r.raw)
	}
	return m
}

// elems returns the Response array as (type, object) pairs.
func (r tresp) elems(t testing.TB) []elem {
	t.Helper()
	m := r.json(t)
	arr, ok := m["Response"].([]any)
	if !ok {
		t.Fatalf("no Response array: %s", r.raw)
	}
	var out []elem
	for _, e := range arr {
		em := e.(map[string]any)
		if len(em) != 1 {
			t.Fatalf("element with %d keys: %v", len(em), em)
		}
		for k, v := range em {
			out = append(out, elem{k, v.(map[string]any)})
		}
	}
	return out
}

func (r tresp) errText(t testing.TB) string {
	t.Helper()
	m := r.json(t)
	errs, ok := m["Error"].([]any)
	if !ok || len(errs) == 0 {
		t.Fatalf("no Error envelope: %s", r.raw)
	}
	return errs[0].(map[string]any)["error_description"].(string)
}

type elem struct {
	typ string
	obj map[string]any
}

func num(v any) int64 {
	switch x := v.(type) {
	case float64:
		return int64(x)
	case json.Number:
		n, _ := x.Int64()
		return n
	}
	return -1
}

func genKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pubPEM(t testing.TB, k *rsa.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func sign(t testing.TB, k *rsa.PrivateKey, data []byte) string {
	t.Helper()
	sum := sha256.Sum256(data)
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// requestSeq makes request ids unique, as bunq (and strict mode) want.
var requestSeq atomic.Int64

func newClient(t testing.TB, env *banktest.Env) *tclient {
	t.Helper()
	k := genKey(t)
	return &tclient{t: t, base: env.APIURL, key: k, pubPEM: pubPEM(t, &k.PublicKey)}
}

// call sends a request. token "" sends no auth header; sig "auto" signs
// the body with the client key, "" sends none, anything else is sent as is.
func (c *tclient) call(method, path string, body any, token, sig string) tresp {
	c.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		raw = b
	case string:
		raw = []byte(b)
	default:
		var err error
		raw, err = json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(raw))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("User-Agent", "sandbox-test")
	req.Header.Set("Cache-Control", "no-cache")
	reqID := fmt.Sprintf("req-%s%s-%d", method, path, requestSeq.Add(1))
	req.Header.Set("X-Bunq-Client-Request-Id", reqID)
	req.Header.Set("X-Bunq-Geolocation", "0 0 0 0 000")
	req.Header.Set("X-Bunq-Language", "en_US")
	req.Header.Set("X-Bunq-Region", "nl_NL")
	if token != "" {
		req.Header.Set("X-Bunq-Client-Authentication", token)
	}
	switch sig {
	case "":
	case "auto":
		req.Header.Set("X-Bunq-Client-Signature", sign(c.t, c.key, raw))
	default:
		req.Header.Set("X-Bunq-Client-Signature", sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	r := tresp{resp.StatusCode, resp.Header, out}
	if got := resp.Header.Get("X-Bunq-Client-Request-Id"); got != reqID {
		c.t.Errorf("%s %s: request id echo %q", method, path, got)
	}
	if resp.Header.Get("X-Bunq-Client-Response-Id") == "" {
		c.t.Errorf("%s %s: no X-Bunq-Client-Response-Id", method, path)
	}
	if c.serverKey != nil && resp.StatusCode/100 == 2 {
		if err := verifyServer(c.serverKey, out, resp.Header.Get("X-Bunq-Server-Signature")); err != nil {
			c.t.Errorf("%s %s: server signature: %v", method, path, err)
		}
	}
	return r
}

func verifyServer(k *rsa.PublicKey, body []byte, sig string) error {
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	return rsa.VerifyPKCS1v15(k, crypto.SHA256, sum[:], raw)
}

// must fails the test unless the response has the wanted status.
func (r tresp) must(t testing.TB, status int) tresp {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	return r
}

func (c *tclient) install() {
	c.t.Helper()
	r := c.call("POST", "/v1/installation", map[string]string{"client_public_key": c.pubPEM}, "", "").must(c.t, 200)
	es := r.elems(c.t)
	if len(es) != 3 || es[0].typ != "Id" || es[1].typ != "Token" || es[2].typ != "ServerPublicKey" {
		c.t.Fatalf("installation response: %s", r.raw)
	}
	c.instToken = es[1].obj["token"].(string)
	block, _ := pem.Decode([]byte(es[2].obj["server_public_key"].(string)))
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		c.t.Fatal(err)
	}
	c.serverKey = k.(*rsa.PublicKey)
	// The installation answer itself must verify with the key it hands out.
	if err := verifyServer(c.serverKey, r.raw, r.header.Get("X-Bunq-Server-Signature")); err != nil {
		c.t.Fatalf("installation signature: %v", err)
	}
}

// context builds installation → device → session for secret.
func (c *tclient) context(secret string) {
	c.t.Helper()
	if c.instToken == "" {
		c.install()
	}
	c.call("POST", "/v1/device-server", map[string]any{"description": "test", "secret": secret, "permitted_ips": []string{"*"}}, c.instToken, "").must(c.t, 200)
	c.secret = secret
	c.session(secret)
}

func (c *tclient) session(secret string) tresp {
	c.t.Helper()
	r := c.call("POST", "/v1/session-server", map[string]string{"secret": secret}, c.instToken, "auto").must(c.t, 200)
	es := r.elems(c.t)
	if len(es) != 3 || es[0].typ != "Id" || es[1].typ != "Token" {
		c.t.Fatalf("session response: %s", r.raw)
	}
	c.sessToken = es[1].obj["token"].(string)
	c.userType, c.user = es[2].typ, es[2].obj
	c.userID = num(es[2].obj["id"])
	return r
}

func (c *tclient) get(path string) tresp { return c.call("GET", path, nil, c.sessToken, "") }

func (c *tclient) post(path string, body any, signed bool) tresp {
	sig := ""
	if signed {
		sig = "auto"
	}
	return c.call("POST", path, body, c.sessToken, sig)
}

func userPath(id int64, rest ...string) string {
	return "/v1/user/" + itoa(id) + strings.Join(rest, "")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// seeded returns the seeded user at index i with its accounts.
func seeded(t testing.TB, env *banktest.Env, i int) banktest.User {
	t.Helper()
	us := env.Users(t)
	if len(us) <= i {
		t.Fatalf("only %d users", len(us))
	}
	return us[i]
}

func accountOf(t testing.TB, u banktest.User, typ string) banktest.Account {
	t.Helper()
	for _, a := range u.Accounts {
		if a.Type == typ {
			return a
		}
	}
	t.Fatalf("user %d has no %s", u.ID, typ)
	return banktest.Account{}
}

// httpPost posts a JSON body and returns the status.
func httpPost(u, body string) (int, error) {
	resp, err := http.Post(u, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
