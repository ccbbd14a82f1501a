package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/certs"
	"github.com/bunqtpp/tpp/psd2"
	"github.com/bunqtpp/tpp/sandbox"
	"github.com/bunqtpp/tpp/sqlite"
	"github.com/bunqtpp/tpp/storage"
)

const regMasterKey = "k1:0101010101010101010101010101010101010101010101010101010101010101"

// regClock is a settable clock for the registration command.
type regClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *regClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *regClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type registerEnv struct {
	bank             *sandbox.Server
	cert, key, chain string
	db               string
	vars             map[string]string
	clock            *regClock
}

func newRegisterEnv(t *testing.T, days int) *registerEnv {
	t.Helper()
	return newRegisterEnvWith(t, days, sandbox.Config{})
}

func newRegisterEnvWith(t *testing.T, days int, cfg sandbox.Config) *registerEnv {
	t.Helper()
	ctx := context.Background()
	bank, err := sandbox.Start(ctx, cfg, "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bank.Shutdown(context.Background()) })
	dir := t.TempDir()
	g, err := certs.Generate(nil, time.Now(), certs.Options{Days: days, CommonName: "Test TPP AISP PISP"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := g.WriteFiles(filepath.Join(dir, "certs"), certs.FileNames{}, false)
	if err != nil {
		t.Fatal(err)
	}
	e := &registerEnv{bank: bank, cert: w.Cert, key: w.Key, chain: w.Chain, db: filepath.Join(dir, "tpp.db"),
		clock: &regClock{t: time.Now()}}
	// Settings come from the environment, as in production.
	e.vars = map[string]string{"TPP_BUNQ_ENV": bank.APIURL, "TPP_CERT_FILE": w.Cert, "TPP_KEY_FILE": w.Key,
		"TPP_CHAIN_FILE": w.Chain, "TPP_DB_PATH": e.db, "TPP_MASTER_KEY": regMasterKey,
		"TPP_PUBLIC_URL": "https://tpp.example/", "TPP_PERMITTED_IPS": "*"}
	return e
}

func (e *registerEnv) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := registerMain(context.Background(), args, &out, &errOut, func(k string) string { return e.vars[k] }, e.clock)
	return out.String() + errOut.String(), err
}

func (e *registerEnv) stats(t *testing.T) map[string]int {
	t.Helper()
	resp, err := http.Get(e.bank.APIURL + "/_sandbox/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s struct {
		Requests map[string]int `json:"requests"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s.Requests
}

func (e *registerEnv) registration(t *testing.T) *tpp.Registration {
	t.Helper()
	kr, err := storage.OpenKeyring(regMasterKey)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(context.Background(), e.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reg, err := sqlite.NewRegistrationStore(db, kr).Registration(context.Background(), e.bank.APIURL)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestRegisterEndToEnd(t *testing.T) {
	t.Parallel()
	e := newRegisterEnv(t, 365)

	out, err := e.run(t)
	if err != nil {
		t.Fatalf("first run: %v\n%s", err, out)
	}
	for _, want := range []string{"installation", "PSD2 credential registered", "device", "OAuth client", "created",
		"callback URL https://tpp.example/oauth/callback added", "notification filters for OAUTH, DRAFT_PAYMENT added", "[5/5] registered"} {
		if !strings.Contains(out, want) {
			t.Errorf("first run output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("first run:\n%s", out)
	reg := e.registration(t)
	if reg.ClientID == "" || reg.ClientSecret == "" || reg.OAuthClientID == 0 || reg.UserID == 0 || len(reg.Context) == 0 ||
		reg.CallbackURL != "https://tpp.example/oauth/callback" || reg.NotificationURL != "https://tpp.example/bank/callbacks" ||
		!strings.Contains(reg.CertSubject, "Test TPP AISP PISP") {
		t.Fatalf("stored registration %+v", reg)
	}
	if strings.Contains(out, reg.ClientSecret) {
		t.Fatal("output shows the OAuth client secret")
	}

	// Second run: everything reused, nothing created twice.
	out, err = e.run(t)
	if err != nil {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	for _, want := range []string{"reused installation", "reused", "already registered", "already point to"} {
		if !strings.Contains(out, want) {
			t.Errorf("second run output lacks %q:\n%s", want, out)
		}
	}
	st := e.stats(t)
	for key, n := range map[string]int{
		"POST /v1/installation": 1, "POST /v1/payment-service-provider-credential": 1, "POST /v1/device-server": 1,
		"POST /v1/session-server": 1, "POST /v1/user/{id}/oauth-client": 1,
		"POST /v1/user/{id}/oauth-client/{id}/callback-url": 1, "POST /v1/user/{id}/notification-filter-url": 1,
	} {
		if st[key] != n {
			t.Errorf("%s called %d times over two runs, want %d (stats %v)", key, st[key], n, st)
		}
	}
	again := e.registration(t)
	if again.ClientID != reg.ClientID || again.OAuthClientID != reg.OAuthClientID || !again.CreatedAt.Equal(reg.CreatedAt) {
		t.Fatalf("second run changed the registration: %+v", again)
	}

	// The callback URL went missing at the bank: the rerun adds it back,
	// using the stored context (which must therefore work).
	var bc psd2.Context
	if err := json.Unmarshal(again.Context, &bc); err != nil {
		t.Fatal(err)
	}
	c, err := psd2.New(psd2.Options{BaseURL: e.bank.APIURL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cbs, err := c.ListCallbackURLs(ctx, &bc, again.OAuthClientID)
	if err != nil || len(cbs) != 1 {
		t.Fatalf("callback URLs %v, %v", cbs, err)
	}
	if err := c.DeleteCallbackURL(ctx, &bc, again.OAuthClientID, cbs[0].ID); err != nil {
		t.Fatal(err)
	}
	// And the session expired meanwhile.
	e.clock.Advance(bc.SessionExpiry().Sub(e.clock.Now()) + time.Minute)
	out, err = e.run(t)
	if err != nil {
		t.Fatalf("third run: %v\n%s", err, out)
	}
	t.Logf("third run:\n%s", out)
	if !strings.Contains(out, "renewed session") || !strings.Contains(out, "callback URL https://tpp.example/oauth/callback added") {
		t.Fatalf("third run did not renew and repair:\n%s", out)
	}
	if n := e.stats(t)["POST /v1/user/{id}/oauth-client"]; n != 1 {
		t.Fatalf("%d OAuth clients created", n)
	}

	// --status.
	out, err = e.run(t, "--status")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{e.bank.APIURL, reg.ClientID, "Session expires:", "Certificate until:", "days left", "https://tpp.example/oauth/callback"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "WARNING") || strings.Contains(out, reg.ClientSecret) {
		t.Errorf("status of a fresh 1-year certificate:\n%s", out)
	}
}

// bunq does not document how it spells the certificate subject it shows on
// the PSP user: registration reads either spelling as our certificate's and
// tells the operator the name bunq shows users.
func TestRegisterUnderBothDNFormats(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"rfc2253", "openssl"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			e := newRegisterEnvWith(t, 365, sandbox.Config{DNFormat: format})
			out, err := e.run(t)
			if err != nil {
				t.Fatalf("register: %v\n%s", err, out)
			}
			if !strings.Contains(out, "bunq shows users this TPP as \"") || strings.Contains(out, "WARNING") {
				t.Errorf("register output under %s:\n%s", format, out)
			}
		})
	}
}

func TestRegisterStatusWarnsAboutExpiringCertificate(t *testing.T) {
	t.Parallel()
	e := newRegisterEnv(t, 10)
	if out, err := e.run(t); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	e.vars["TPP_BUNQ_ENV"] = "" // --status without an environment lists all
	out, err := e.run(t, "--status")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "WARNING: expires within 30 days") {
		t.Fatalf("no expiry warning:\n%s", out)
	}
}

func TestRegisterErrors(t *testing.T) {
	t.Parallel()
	e := newRegisterEnv(t, 365)
	for name, tc := range map[string]struct {
		vars map[string]string
		args []string
		want string
	}{
		"no master key":  {map[string]string{"TPP_MASTER_KEY": ""}, nil, "TPP_MASTER_KEY"},
		"bad master key": {map[string]string{"TPP_MASTER_KEY": "k1:zz"}, nil, "TPP_MASTER_KEY"},
		"no env":         {map[string]string{"TPP_BUNQ_ENV": ""}, nil, "--env"},
		"emulated":       {map[string]string{"TPP_BUNQ_ENV": "emulated"}, nil, "tpp sandbox"},
		"bad env":        {map[string]string{"TPP_BUNQ_ENV": "ftp://x"}, nil, "--env"},
		"no public url":  {map[string]string{"TPP_PUBLIC_URL": ""}, nil, "--public-url"},
		"no chain":       {map[string]string{"TPP_CHAIN_FILE": ""}, nil, "--chain"},
		"missing cert":   {map[string]string{"TPP_CERT_FILE": "/nonexistent.pem"}, nil, "nonexistent"},
		"flag over env":  {nil, []string{"--public-url", "not a url"}, "--public-url"},
		"http sandbox":   {map[string]string{"TPP_BUNQ_ENV": "sandbox", "TPP_PUBLIC_URL": "http://tpp.example"}, nil, "https"},
	} {
		vars := map[string]string{}
		for k, v := range e.vars {
			vars[k] = v
		}
		for k, v := range tc.vars {
			vars[k] = v
		}
		var out bytes.Buffer
		err := registerMain(context.Background(), tc.args, &out, &out, func(k string) string { return vars[k] }, e.clock)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want mention of %q", name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "0101010101") {
			t.Errorf("%s: error echoes the master key", name)
		}
	}
	if n := e.stats(t)["POST /v1/installation"]; n != 0 {
		t.Fatalf("failed runs reached the bank %d times", n)
	}
}

// TestRegisterReplacesItsStaleNotificationTarget: after --public-url
// changes, the rerun replaces the TPP's own earlier callback target instead
// of adding a second one (bunq allows 2 per category and would keep calling
// the stale URL); other targets stay.
func TestRegisterReplacesItsStaleNotificationTarget(t *testing.T) {
	t.Parallel()
	e := newRegisterEnv(t, 365)
	if out, err := e.run(t); err != nil {
		t.Fatalf("first run: %v\n%s", err, out)
	}
	out, err := e.run(t, "--public-url", "https://new.tpp.example")
	if err != nil {
		t.Fatalf("rerun: %v\n%s", err, out)
	}
	reg := e.registration(t)
	var bc psd2.Context
	if err := json.Unmarshal(reg.Context, &bc); err != nil {
		t.Fatal(err)
	}
	c, err := psd2.New(psd2.Options{BaseURL: e.bank.APIURL})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := c.ListNotificationFilters(context.Background(), &bc)
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, f := range fs {
		targets = append(targets, f.Category+" "+f.NotificationTarget)
	}
	want := "OAUTH https://new.tpp.example/bank/callbacks,DRAFT_PAYMENT https://new.tpp.example/bank/callbacks"
	if strings.Join(targets, ",") != want {
		t.Fatalf("filters %v, want %s", targets, want)
	}
}
