package psd2

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// Keys are slow to make; the unit tests share two.
var (
	keyOnce           sync.Once
	testKey, testKey2 *rsa.PrivateKey
)

func keys(t testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	keyOnce.Do(func() {
		var err error
		if testKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if testKey2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return testKey, testKey2
}

func TestSignVerify(t *testing.T) {
	t.Parallel()
	k, other := keys(t)
	body := []byte(`{"secret":"x"}`)
	sig, err := Sign(k, body)
	if err != nil {
		t.Fatal(err)
	}
	// Independent check with the standard library primitives.
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		t.Fatalf("signature is not standard base64: %v", err)
	}
	sum := sha256.Sum256(body)
	if err := rsa.VerifyPKCS1v15(&k.PublicKey, crypto.SHA256, sum[:], raw); err != nil {
		t.Fatalf("signature does not verify as PKCS#1 v1.5 SHA-256: %v", err)
	}
	if err := Verify(&k.PublicKey, body, sig); err != nil {
		t.Fatal(err)
	}
	// Folded base64 is accepted.
	if err := Verify(&k.PublicKey, body, sig[:10]+"\n "+sig[10:]); err != nil {
		t.Fatalf("folded signature: %v", err)
	}
	if Verify(&k.PublicKey, []byte(`{"secret":"y"}`), sig) == nil {
		t.Fatal("tampered body verified")
	}
	if Verify(&other.PublicKey, body, sig) == nil {
		t.Fatal("signature verified with another key")
	}
	if Verify(&k.PublicKey, body, "") == nil {
		t.Fatal("empty signature verified")
	}
	if Verify(&k.PublicKey, body, "!!!") == nil {
		t.Fatal("non-base64 signature verified")
	}
	// The empty body (GET with SignAll) is signed as the empty string.
	empty, err := Sign(k, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(&k.PublicKey, []byte{}, empty); err != nil {
		t.Fatal(err)
	}
}

func TestSignPSD2Message(t *testing.T) {
	t.Parallel()
	k, cert := keys(t)
	pub, err := publicKeyPEM(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(pub, "-----BEGIN PUBLIC KEY-----\n") || !strings.HasSuffix(pub, "-----END PUBLIC KEY-----\n") {
		t.Fatalf("public key PEM form: %q", pub)
	}
	const token = "0123abcd"
	want := pub + token // PEM with exactly one trailing newline, then the token
	for _, in := range []string{pub, strings.TrimRight(pub, "\n"), pub + "\n\n"} {
		sig, err := signPSD2(cert, in, token)
		if err != nil {
			t.Fatal(err)
		}
		if err := Verify(&cert.PublicKey, []byte(want), sig); err != nil {
			t.Fatalf("PSD2 signature over %q variant does not cover PEM+\\n+token: %v", in[len(in)-3:], err)
		}
	}
}

func TestDecodeEnvelopePagination(t *testing.T) {
	t.Parallel()
	body := []byte(`{"Response":[{"Payment":{"id":250,"amount":{"value":"-1.50","currency":"EUR"},"unknown":{"X":1}}},
		{"Payment":{"id":249,"amount":{"value":2,"currency":"EUR"}}}],
		"Pagination":{"future_url":null,"newer_url":"/v1/user/1/monetary-account/2/payment?count=2&newer_id=250",
		"older_url":"/v1/user/1/monetary-account/2/payment?count=2&older_id=249"}}`)
	env, err := decodeEnvelope(body)
	if err != nil {
		t.Fatal(err)
	}
	p := env.Pagination
	if !p.Present || p.OlderID != 249 || p.NewerID != 250 || p.FutureID != 0 || p.Count != 2 {
		t.Fatalf("pagination %+v", p)
	}
	pays, err := decodeAll[Payment](env, "Payment")
	if err != nil {
		t.Fatal(err)
	}
	if len(pays) != 2 || pays[0].Amount.Value != "-1.50" || pays[1].Amount.Value != "2" {
		t.Fatalf("payments %+v", pays)
	}
	if older, ok := p.Older(); !ok || older != (Page{Count: 2, OlderID: 249}) {
		t.Fatalf("Older() = %+v %v", older, ok)
	}
	for _, bad := range []string{`{}`, `{"Response":[{"A":{},"B":{}}]}`, `[1]`, `not json`} {
		if _, err := decodeEnvelope([]byte(bad)); err == nil {
			t.Errorf("decodeEnvelope(%s) accepted", bad)
		}
	}
}

func TestAmountNeverFloat(t *testing.T) {
	t.Parallel()
	var a Amount
	if err := json.Unmarshal([]byte(`{"value":10.10,"currency":"EUR"}`), &a); err != nil {
		t.Fatal(err)
	}
	if a.Value != "10.10" {
		t.Fatalf("number amount kept as %q, want literal 10.10", a.Value)
	}
	if err := json.Unmarshal([]byte(`{"value":true,"currency":"EUR"}`), &a); err == nil {
		t.Fatal("boolean amount accepted")
	}
	b, _ := json.Marshal(Amount{Value: "0.10", Currency: "EUR"})
	if string(b) != `{"value":"0.10","currency":"EUR"}` {
		t.Fatalf("marshal %s", b)
	}
}

func TestDecodeError(t *testing.T) {
	t.Parallel()
	e := decodeError(403, []byte(`{"Error":[{"error_description":"Insufficient authorisation.","error_description_translated":"Onvoldoende"}],"x":1}`))
	if e.Kind != KindForbidden || !e.InsufficientAuth() || e.Translated[0] != "Onvoldoende" {
		t.Fatalf("%+v", e)
	}
	var err error = e
	if !errors.Is(err, ErrForbidden) || !errors.Is(err, ErrSessionExpired) || errors.Is(err, ErrNotFound) {
		t.Fatal("errors.Is on APIError")
	}
	for status, want := range map[int]error{400: ErrBadRequest, 401: ErrUnauthorized, 404: ErrNotFound,
		429: ErrRateLimited, 466: ErrSignatureRequired, 491: ErrMaintenance, 500: ErrServer, 503: ErrServer} {
		if err := error(decodeError(status, []byte("<html>"))); !errors.Is(err, want) {
			t.Errorf("status %d: %v is not %v", status, err, want)
		}
	}
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestMemoryBudgetSlidingWindow(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	b := NewMemoryBudget(clk)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if w := b.admit("k", 3, 3*time.Second); w != 0 {
			t.Fatalf("call %d waited %v", i, w)
		}
		clk.Advance(time.Second)
	}
	// t=3s: the first call (t=0) just left the window (> 3 s ago is not required: exactly 3 s is out).
	if w := b.admit("k", 3, 3*time.Second); w != 0 {
		t.Fatalf("4th call at 3s waited %v", w)
	}
	if w := b.admit("k", 3, 3*time.Second); w != time.Second {
		t.Fatalf("5th call waits %v, want 1s", w)
	}
	// Another key is independent.
	if w := b.admit("other", 1, time.Minute); w != 0 {
		t.Fatal("independent key waited")
	}
	// Cancellation while waiting.
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := b.Wait(cctx, "other", 1, time.Minute); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait over limit = %v, want deadline exceeded", err)
	}
	// Waiting ends when the clock moves on.
	done := make(chan error, 1)
	go func() { done <- b.Wait(ctx, "k", 3, 3*time.Second) }()
	time.Sleep(10 * time.Millisecond)
	clk.Advance(2 * time.Second)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Wait did not return after the window moved")
	}
	// Idle keys are swept: bounded memory.
	clk.Advance(2 * time.Minute)
	b.admit("fresh", 1, time.Second)
	if n := b.Len(); n != 1 {
		t.Fatalf("budget tracks %d keys after sweep, want 1", n)
	}
}

func TestMemoryBudgetConcurrentNeverOver(t *testing.T) {
	t.Parallel()
	b := NewMemoryBudget(nil)
	const limit, window = 4, 150 * time.Millisecond
	var mu sync.Mutex
	var admitted []time.Time
	var wg sync.WaitGroup
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.Wait(context.Background(), "k", limit, window); err != nil {
				t.Error(err)
			}
			mu.Lock()
			admitted = append(admitted, time.Now())
			mu.Unlock()
		}()
	}
	wg.Wait()
	for i := range admitted {
		n := 0
		for j := range admitted {
			if d := admitted[j].Sub(admitted[i]); d >= 0 && d < window-10*time.Millisecond {
				n++
			}
		}
		if n > limit {
			t.Fatalf("%d calls admitted within one window, limit %d", n, limit)
		}
	}
}

func testContext(t *testing.T) *Context {
	k, server := keys(t)
	pub, _ := publicKeyPEM(&k.PublicKey)
	spub, _ := publicKeyPEM(&server.PublicKey)
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	c := &Context{kind: KindOAuth, installationID: 11, deviceID: 12, permittedIPs: []string{"*"}, serverKey: &server.PublicKey,
		budgetID: budgetID(pub),
		sec: &contextSecrets{clientKeyDER: der, clientPublicPEM: pub, serverPublicPEM: spub,
			installationToken: "insttoken-SECRET", secret: "accesstoken-SECRET"},
	}
	c.sec.clientKey.Store(k)
	c.setSession(session{id: 13, token: "sesstoken-SECRET", userID: 14, userType: UserTypeAPIKey,
		expiry: time.Date(2026, 2, 3, 4, 5, 6, 7000, time.UTC)})
	return c
}

func TestContextJSONRoundTrip(t *testing.T) {
	t.Parallel()
	c := testContext(t)
	b1, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var back Context
	if err := json.Unmarshal(b1, &back); err != nil {
		t.Fatal(err)
	}
	b2, err := json.Marshal(&back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1, b2) {
		t.Fatalf("round trip differs:\n%s\n%s", b1, b2)
	}
	if back.sec.clientKey.Load() != nil {
		t.Fatal("restored context parsed its key before signing")
	}
	backKey, err := back.sec.signingKey()
	if err != nil {
		t.Fatal(err)
	}
	if !backKey.Equal(c.sec.clientKey.Load()) || !back.serverKey.Equal(c.serverKey) ||
		back.sessionSnapshot() != c.sessionSnapshot() || back.sec.secret != c.sec.secret || back.budgetID != c.budgetID ||
		back.kind != c.kind || back.installationID != 11 || back.deviceID != 12 {
		t.Fatal("round trip lost a field")
	}
	if err := json.Unmarshal([]byte(`{"version":2}`), new(Context)); err == nil {
		t.Fatal("unknown version accepted")
	}
}

func TestContextNeverPrintsSecrets(t *testing.T) {
	t.Parallel()
	c := testContext(t)
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("ctx", "bunq", c)
	priv, _ := privateKeyPEM(c.sec.clientKey.Load())
	keyText := strings.Split(priv, "\n")[1]
	outs := []string{c.String(), fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c),
		fmt.Sprintf("%+v", reflect.ValueOf(c).Elem().Interface()), fmt.Sprintf("%#v", reflect.ValueOf(c).Elem().Interface()), logs.String(), fmt.Sprint(c.sec.clientKey.Load().D) /* sanity below */}
	for i, s := range outs[:len(outs)-1] {
		for _, secret := range []string{"SECRET", keyText, outs[len(outs)-1]} {
			if strings.Contains(s, secret) {
				t.Errorf("output %d leaks a secret: %s", i, s)
			}
		}
	}
	if !strings.Contains(logs.String(), `"user_id":14`) {
		t.Errorf("LogValue lacks the ids: %s", logs.String())
	}
}

type xorSealer struct{}

func (xorSealer) Seal(pt, ad []byte) ([]byte, error) {
	out := append([]byte(string(ad)+"|"), pt...)
	for i := len(ad) + 1; i < len(out); i++ {
		out[i] ^= 0x5a
	}
	return out, nil
}

func (xorSealer) Open(ct, ad []byte) ([]byte, error) {
	if !bytes.HasPrefix(ct, append(append([]byte{}, ad...), '|')) {
		return nil, errors.New("wrong ad")
	}
	out := append([]byte{}, ct[len(ad)+1:]...)
	for i := range out {
		out[i] ^= 0x5a
	}
	return out, nil
}

func TestContextSealBoundToAD(t *testing.T) {
	t.Parallel()
	c := testContext(t)
	sealed, err := c.Seal(xorSealer{}, []byte("consent:1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("SECRET")) {
		t.Fatal("sealed form holds plaintext")
	}
	back, err := OpenContext(xorSealer{}, sealed, []byte("consent:1"))
	if err != nil {
		t.Fatal(err)
	}
	if back.sessionSnapshot() != c.sessionSnapshot() {
		t.Fatal("session lost")
	}
	if _, err := OpenContext(xorSealer{}, sealed, []byte("consent:2")); err == nil {
		t.Fatal("opened with another owner's ad")
	}
}

func TestLenientPolymorphicDecoding(t *testing.T) {
	t.Parallel()
	env, err := decodeEnvelope([]byte(`{"Response":[
		{"MonetaryAccountBank":{"id":1,"balance":{"value":"1.00","currency":"EUR"},"alias":[{"type":"IBAN","value":"NL1","name":"A"}]}},
		{"MonetaryAccountCard":{"id":2,"status":"ACTIVE","future_field":{"x":[1,2]}}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	accs, err := decodeAccounts(env)
	if err != nil {
		t.Fatal(err)
	}
	if len(accs) != 2 || accs[1].Type != "MonetaryAccountCard" || accs[1].ID != 2 || !strings.Contains(string(accs[1].Raw), "future_field") {
		t.Fatalf("accounts %+v", accs)
	}
	if iban, name := accs[0].IBAN(); iban != "NL1" || name != "A" {
		t.Fatalf("IBAN %q %q", iban, name)
	}
	// UserApiKey takes its session timeout from the requesting user.
	u, err := decodeUser(UserTypeAPIKey, []byte(`{"id":77,"requested_by_user":{"UserPaymentServiceProvider":{"id":5,"session_timeout":3600}},
		"granted_by_user":{"UserPerson":{"id":9,"display_name":"Ann","session_timeout":60}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != 77 || u.RequestedBy.ID != 5 || u.GrantedBy.DisplayName != "Ann" || u.sessionTimeout() != time.Hour {
		t.Fatalf("UserApiKey %+v timeout %v", u, u.sessionTimeout())
	}
	var tm Time
	if err := json.Unmarshal([]byte(`"2017-01-13 13:19:16.215235"`), &tm); err != nil || tm.Year() != 2017 || tm.Nanosecond() != 215235000 {
		t.Fatalf("time %v %v", tm, err)
	}
	if err := json.Unmarshal([]byte(`"garbage"`), &tm); err != nil || !tm.IsZero() || tm.Raw != "garbage" {
		t.Fatalf("lenient time %v %v", tm, err)
	}
}

// Contexts stored before the client public key was left out, or with a
// PKCS#1 private key, still read, sign with the same key and keep their
// rate-limit id.
func TestContextOlderFormsRead(t *testing.T) {
	t.Parallel()
	c := testContext(t)
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	key := c.sec.clientKey.Load()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	inst := m["installation"].(map[string]any)
	if _, ok := inst["client_public_key"]; ok {
		t.Fatal("client public key still written")
	}
	inst["client_public_key"] = c.sec.clientPublicPEM
	inst["client_private_key"] = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	old, _ := json.Marshal(m)
	var back Context
	if err := json.Unmarshal(old, &back); err != nil {
		t.Fatal(err)
	}
	k, err := back.sec.signingKey()
	if err != nil || !k.Equal(key) || back.budgetID != c.budgetID {
		t.Fatalf("older form read wrong: %v", err)
	}
	again, _ := json.Marshal(&back)
	if !strings.Contains(string(again), "BEGIN RSA PRIVATE KEY") {
		t.Fatal("PKCS#1 key not written back as it came")
	}
	if err := json.Unmarshal([]byte(strings.Replace(string(old), "MII", "XXX", 1)), new(Context)); err == nil {
		t.Fatal("a broken private key was accepted")
	}
}
