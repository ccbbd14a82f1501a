package sandbox_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bunqtpp/tpp/internal/banktest"
)

func TestSandboxUserContext(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	c := newClient(t, env)
	r := c.call("POST", "/v1/sandbox-user-person", nil, "", "").must(t, 200)
	es := r.elems(t)
	if len(es) != 1 || es[0].typ != "ApiKey" {
		t.Fatalf("sandbox-user-person: %s", r.raw)
	}
	key := es[0].obj["api_key"].(string)
	if !regexp.MustCompile(`^sandbox_[0-9a-f]{56}$`).MatchString(key) {
		t.Fatalf("api key %q", key)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if r := c.call("POST", "/v1/installation", map[string]string{"client_public_key": pubPEM(t, &small.PublicKey)}, "", ""); r.status != 400 {
		t.Fatalf("1024-bit installation key: %d", r.status)
	}
	c.install()
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(c.instToken) {
		t.Fatalf("installation token %q", c.instToken)
	}
	// Unknown secret on device-server.
	bad := c.call("POST", "/v1/device-server", map[string]string{"description": "x", "secret": "sandbox_nope"}, c.instToken, "").must(t, 400)
	if got := bad.errText(t); got != "User credentials are incorrect. Incorrect API key or IP address." {
		t.Fatalf("error %q", got)
	}
	c.call("POST", "/v1/device-server", map[string]any{"description": "test", "secret": key}, c.instToken, "").must(t, 200)

	// Session-server: unsigned → 466, wrong signature → 400, session token → wrong kind.
	body := []byte(`{"secret": "` + key + `"}`)
	if r := c.call("POST", "/v1/session-server", body, c.instToken, ""); r.status != 466 ||
		r.errText(t) != "For this operation a request signature is required. Check the urls for more information." {
		t.Fatalf("unsigned session-server: %d %s", r.status, r.raw)
	}
	other := genKey(t)
	if r := c.call("POST", "/v1/session-server", body, c.instToken, sign(t, other, body)); r.status != 400 || r.errText(t) != "The request signature is invalid." {
		t.Fatalf("badly signed session-server: %d %s", r.status, r.raw)
	}
	// Signature over the exact raw bytes, pretty-printed like the Python SDK, with a space inside the base64.
	pretty := []byte("{\n    \"secret\": \"" + key + "\"\n}")
	sig := sign(t, c.key, pretty)
	r = c.call("POST", "/v1/session-server", pretty, c.instToken, sig[:40]+" "+sig[40:]).must(t, 200)
	es = r.elems(t)
	if es[2].typ != "UserPerson" || num(es[2].obj["session_timeout"]) != 604800 {
		t.Fatalf("session user: %s", r.raw)
	}
	c.sessToken = es[1].obj["token"].(string)
	c.userID = num(es[2].obj["id"])

	// Wrong token kinds.
	if r := c.call("GET", "/v1/user", nil, c.instToken, ""); r.status != 403 || !strings.Contains(r.errText(t), "session token") {
		t.Fatalf("installation token on /user: %d %s", r.status, r.raw)
	}
	if r := c.call("POST", "/v1/session-server", body, c.sessToken, "auto"); r.status != 403 || !strings.Contains(r.errText(t), "installation token") {
		t.Fatalf("session token on session-server: %d %s", r.status, r.raw)
	}
	if r := c.call("GET", "/v1/user", nil, "deadbeef", ""); r.status != 403 || r.errText(t) != "Insufficient authorisation." {
		t.Fatalf("unknown token: %d %s", r.status, r.raw)
	}

	// The user, its single zero-balance account, a stale signature ignored,
	// a JSON body on a GET tolerated, a trailing slash accepted.
	users := c.call("GET", "/v1/user/", `{"status":"ACTIVE"}`, c.sessToken, "garbage==").must(t, 200)
	if es := users.elems(t); len(es) != 1 || es[0].typ != "UserPerson" {
		t.Fatalf("GET /user: %s", users.raw)
	}
	if _, ok := users.json(t)["Pagination"]; !ok {
		t.Fatalf("no Pagination on list: %s", users.raw)
	}
	c.get(userPath(c.userID)).must(t, 200)
	c.get("/v1/user-person/"+itoa(c.userID)).must(t, 200)
	c.get(userPath(c.userID+1)).must(t, 404)
	accts := c.get(userPath(c.userID, "/monetary-account")).must(t, 200).elems(t)
	if len(accts) != 1 || accts[0].typ != "MonetaryAccountBank" {
		t.Fatalf("accounts: %v", accts)
	}
	bal := accts[0].obj["balance"].(map[string]any)
	if bal["value"] != "0.00" || bal["currency"] != "EUR" {
		t.Fatalf("balance %v", bal)
	}
	if ts := accts[0].obj["created"].(string); !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$`).MatchString(ts) {
		t.Fatalf("timestamp %q", ts)
	}
	alias := accts[0].obj["alias"].([]any)[0].(map[string]any)
	if alias["type"] != "IBAN" || !strings.HasPrefix(alias["value"].(string), "NL") || !strings.Contains(alias["value"].(string), "BUNQ") {
		t.Fatalf("IBAN alias %v", alias)
	}

	// DELETE /session/0 ends the session.
	c.call("DELETE", "/v1/session/0", nil, c.sessToken, "").must(t, 200)
	if r := c.get("/v1/user"); r.status != 403 {
		t.Fatalf("after delete: %d", r.status)
	}
}

func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	u := seeded(t, env, 0)
	c := newClient(t, env)
	c.context(u.APIKey)
	c.get(userPath(c.userID, "/monetary-account")).must(t, 200)
	// Used more than 30 minutes before expiry: not extended.
	env.AdvanceClock(t, 604800*time.Second-31*time.Minute)
	c.get(userPath(c.userID, "/monetary-account")).must(t, 200)
	// Used within 30 minutes of expiry: extended by session_timeout
	// (bunq/doc §Authentication).
	env.AdvanceClock(t, 2*time.Minute)
	c.get(userPath(c.userID, "/monetary-account")).must(t, 200)
	env.AdvanceClock(t, time.Hour) // past the original expiry
	c.get(userPath(c.userID, "/monetary-account")).must(t, 200)
	// Unused for a whole timeout: expired.
	env.AdvanceClock(t, 604800*time.Second)
	if r := c.get(userPath(c.userID, "/monetary-account")); r.status != 403 || r.errText(t) != "Insufficient authorisation." {
		t.Fatalf("expired session: %d %s", r.status, r.raw)
	}
	// A re-session with the installation token works.
	c.session(u.APIKey)
	c.get(userPath(c.userID, "/monetary-account")).must(t, 200)
}

// testCert makes a self-signed certificate with the given CN.
func testCert(t testing.TB, cn string) (*rsa.PrivateKey, string) {
	t.Helper()
	k := genKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn, Country: []string{"NL"}, Organization: []string{"Test TPP B.V."}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return k, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// registerPSP runs the PSD2 flow and returns a client with a PSP session.
func registerPSP(t testing.TB, env *banktest.Env, cn string) *tclient {
	t.Helper()
	certKey, certPEM := testCert(t, cn)
	c := newClient(t, env)
	c.install()
	data := strings.TrimRight(c.pubPEM, "\n") + "\n" + c.instToken
	r := c.call("POST", "/v1/payment-service-provider-credential", map[string]string{
		"client_payment_service_provider_certificate":       certPEM,
		"client_payment_service_provider_certificate_chain": certPEM,
		"client_public_key_signature":                       sign(t, certKey, []byte(data)),
	}, c.instToken, "").must(t, 200)
	es := r.elems(t)
	if len(es) != 1 || es[0].typ != "CredentialPasswordIp" || es[0].obj["status"] != "PENDING_FIRST_USE" {
		t.Fatalf("credential: %s", r.raw)
	}
	c.context(es[0].obj["token_value"].(string))
	if c.userType != "UserPaymentServiceProvider" {
		t.Fatalf("PSP session user %s", c.userType)
	}
	return c
}

func TestPSD2Registration(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	c := registerPSP(t, env, "Test TPP AISP PISP")
	if dn := c.user["certificate_distinguished_name"].(string); !strings.Contains(dn, "CN=Test TPP AISP PISP") {
		t.Fatalf("DN %q", dn)
	}
	if c.user["display_name"] != "Test TPP B.V." || num(c.user["session_timeout"]) != 3600 {
		t.Fatalf("PSP user %v", c.user)
	}
	// The first PSD2 session lasts an hour.
	env.AdvanceClock(t, 3601*time.Second)
	if r := c.get(userPath(c.userID)); r.status != 403 {
		t.Fatalf("first PSD2 session after 1h: %d", r.status)
	}

	post := func(cn string, signWith func(certKey *rsa.PrivateKey, c *tclient) string) tresp {
		certKey, certPEM := testCert(t, cn)
		c := newClient(t, env)
		c.install()
		return c.call("POST", "/v1/payment-service-provider-credential", map[string]string{
			"client_payment_service_provider_certificate":       certPEM,
			"client_payment_service_provider_certificate_chain": certPEM,
			"client_public_key_signature":                       signWith(certKey, c),
		}, c.instToken, "")
	}
	// Signed with the installation key instead of the certificate's key.
	r := post("Other AISP", func(_ *rsa.PrivateKey, c *tclient) string {
		return sign(t, c.key, []byte(strings.TrimRight(c.pubPEM, "\n")+"\n"+c.instToken))
	})
	if r.status != 400 || !strings.Contains(r.errText(t), "signature") {
		t.Fatalf("wrong signing key: %d %s", r.status, r.raw)
	}
	// Signed without the token.
	r = post("Other AISP", func(k *rsa.PrivateKey, c *tclient) string { return sign(t, k, []byte(c.pubPEM)) })
	if r.status != 400 {
		t.Fatalf("signature without token: %d %s", r.status, r.raw)
	}
	// A CN without roles.
	r = post("My Fintech App", func(k *rsa.PrivateKey, c *tclient) string {
		return sign(t, k, []byte(strings.TrimRight(c.pubPEM, "\n")+"\n"+c.instToken))
	})
	if r.status != 400 || !strings.Contains(r.errText(t), "roles") {
		t.Fatalf("CN without roles: %d %s", r.status, r.raw)
	}
	// Names are at most 64 characters.
	r = post(strings.Repeat("x", 60)+" AISP", func(k *rsa.PrivateKey, c *tclient) string {
		return sign(t, k, []byte(strings.TrimRight(c.pubPEM, "\n")+"\n"+c.instToken))
	})
	if r.status != 400 || !strings.Contains(r.errText(t), "64") {
		t.Fatalf("long CN: %d %s", r.status, r.raw)
	}
	// CBPII alone is a role too.
	r = post("Funds Checker CBPII", func(k *rsa.PrivateKey, c *tclient) string {
		return sign(t, k, []byte(strings.TrimRight(c.pubPEM, "\n")+"\n"+c.instToken))
	})
	r.must(t, 200)
}

// The PSP user shows its certificate's subject as
// certificate_distinguished_name and as its one alias, spelt as the
// DNFormat switch says; its display name is the certificate's organisation.
func TestPSPDistinguishedNameFormats(t *testing.T) {
	t.Parallel()
	for format, want := range map[string]string{
		"rfc2253": "CN=Test TPP AISP,O=Test TPP B.V.,C=NL",
		"openssl": "/C=NL/O=Test TPP B.V./CN=Test TPP AISP",
	} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			c := registerPSP(t, banktest.Start(t, banktest.WithDNFormat(format)), "Test TPP AISP")
			if dn := c.user["certificate_distinguished_name"]; dn != want {
				t.Fatalf("certificate_distinguished_name %q, want %q", dn, want)
			}
			aliases, _ := c.user["alias"].([]any)
			if len(aliases) != 1 {
				t.Fatalf("PSP aliases %v, want one", c.user["alias"])
			}
			a := aliases[0].(map[string]any)
			if a["type"] != "CERTIFICATE_DISTINGUISHED_NAME" || a["value"] != want || a["name"] != "Test TPP B.V." {
				t.Fatalf("PSP alias %v", a)
			}
			if c.user["display_name"] != "Test TPP B.V." {
				t.Fatalf("display_name %v", c.user["display_name"])
			}
		})
	}
}
