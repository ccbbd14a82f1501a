package health_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/api"
	"github.com/bunqtpp/tpp/health"
	"github.com/bunqtpp/tpp/internal/apitest"
	"github.com/bunqtpp/tpp/internal/redistest"
	"github.com/bunqtpp/tpp/redis"
	"github.com/bunqtpp/tpp/seal"
	"github.com/bunqtpp/tpp/sqlite"
)

const bankBase = "https://public-api.sandbox.bunq.com"

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a full set of real dependencies that all pass.
type env struct {
	db    *sqlite.DB
	regs  *sqlite.RegistrationStore
	redis *redistest.Server
	bank  *httptest.Server
	clock *fakeClock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{clock: &fakeClock{t: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)}}
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "tpp.db"), nil)
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	kr, err := seal.NewKeyring(seal.Key{ID: "k1", Key: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	e.db, e.regs = db, sqlite.NewRegistrationStore(db, kr)
	e.redis = redistest.Start(t)
	// The bank answers unauthenticated calls with an error; that still
	// proves it is reachable.
	e.bank = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"Error":[{"error_description":"Missing header"}]}`)
	}))
	t.Cleanup(e.bank.Close)
	return e
}

func (e *env) register(t *testing.T, notAfter time.Time) {
	t.Helper()
	err := e.regs.SaveRegistration(context.Background(), &tpp.Registration{
		APIBaseURL: bankBase, Context: []byte(`{"k":"ctx-SECRET"}`), UserID: 1, OAuthClientID: 2,
		ClientID: "cid", ClientSecret: "oauth-SECRET", CertSubject: "CN=Test TPP", CertFingerprint: "ab",
		CertNotAfter: notAfter,
	})
	if err != nil {
		t.Fatalf("SaveRegistration: %v", err)
	}
}

func (e *env) checks(t *testing.T) []health.Check {
	return []health.Check{
		health.SQLite(e.db),
		health.SQLiteWrite(e.db),
		health.Redis(redis.Health{Client: e.redis.Client(t)}),
		health.Bank(e.bank.Client(), e.bank.URL+"/v1"),
		health.Registration(health.RegistrationValid(e.regs, bankBase, e.clock)),
	}
}

// serve mounts the checker on the API's engine, as cmd/tpp does, and
// returns a client whose every exchange is validated against the OpenAPI
// document.
func serve(t *testing.T, c *health.Checker) (string, *http.Client) {
	t.Helper()
	eng := api.NewEngine(api.Options{})
	c.Register(eng)
	srv := httptest.NewServer(eng)
	t.Cleanup(srv.Close)
	return srv.URL, &http.Client{Transport: apitest.NewValidator(t).Transport(t, nil), Timeout: 10 * time.Second}
}

type body struct {
	Status string                   `json:"status"`
	Checks map[string]health.Result `json:"checks"`
	raw    string
}

func get(t *testing.T, client *http.Client, url string) (int, body) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var b body
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatalf("GET %s: body %s: %v", url, raw, err)
	}
	b.raw = string(raw)
	return resp.StatusCode, b
}

func TestLiveness(t *testing.T) {
	t.Parallel()
	// Liveness checks nothing: a failing readiness check does not matter.
	c := health.New(health.Check{Name: "broken", Fn: func(context.Context) error { return errors.New("down") }})
	url, client := serve(t, c)
	code, b := get(t, client, url+"/healthz")
	if code != http.StatusOK || b.raw != "{\"status\":\"ok\"}\n" {
		t.Errorf("/healthz = %d %s", code, b.raw)
	}
}

func TestLivenessShowsTheVersion(t *testing.T) {
	t.Parallel()
	url, client := serve(t, health.NewWithOptions(health.Options{Version: "v1.2.3 abc"}))
	code, b := get(t, client, url+"/healthz")
	if code != http.StatusOK || b.raw != "{\"status\":\"ok\",\"version\":\"v1.2.3 abc\"}\n" {
		t.Errorf("/healthz = %d %s", code, b.raw)
	}
}

func TestReadyWhenEverythingWorks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.register(t, e.clock.Now().Add(365*24*time.Hour))
	url, client := serve(t, health.New(e.checks(t)...))
	code, b := get(t, client, url+"/readyz")
	if code != http.StatusOK || b.Status != health.StatusReady {
		t.Fatalf("/readyz = %d %s", code, b.raw)
	}
	for _, name := range []string{"sqlite", "sqlite_write", "redis", "bank", "registration"} {
		r, ok := b.Checks[name]
		if !ok || r.Status != health.StatusOK || r.Error != "" || r.DurationMS < 0 {
			t.Errorf("check %s = %+v (present %v)", name, r, ok)
		}
	}
	if !strings.Contains(b.raw, `"duration_ms":`) {
		t.Errorf("no duration_ms in %s", b.raw)
	}
}

func TestRedisDownAndBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.register(t, e.clock.Now().Add(365*24*time.Hour))
	// MaxAge < 0: no reuse, so each probe sees the current state.
	c := health.NewWithOptions(health.Options{MaxAge: -1}, e.checks(t)...)
	url, client := serve(t, c)

	e.redis.Stop(t)
	code, b := get(t, client, url+"/readyz")
	if code != http.StatusServiceUnavailable || b.Status != health.StatusUnready {
		t.Fatalf("/readyz with Redis down = %d %s", code, b.raw)
	}
	r := b.Checks["redis"]
	if r.Status != health.StatusError || !strings.Contains(r.Error, "connection refused") {
		t.Errorf("redis check = %+v, want an error saying connection refused", r)
	}
	for _, name := range []string{"sqlite", "bank", "registration"} {
		if b.Checks[name].Status != health.StatusOK {
			t.Errorf("%s check = %+v while only Redis is down", name, b.Checks[name])
		}
	}

	e.redis.Restart(t)
	// The client's pool may hold a dead connection for one more try.
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, b = get(t, client, url+"/readyz")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz after Redis restart = %d %s", code, b.raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if b.Checks["redis"].Status != health.StatusOK {
		t.Errorf("redis check after restart = %+v", b.Checks["redis"])
	}
}

func TestBankRefusingConnections(t *testing.T) {
	t.Parallel()
	closed := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(closed.URL, "http://")
	closed.Close()
	// Credentials in the URL must not reach the public body.
	base := "http://operator:hunter2@" + addr + "/v1?token=s3cr3t-token&x=1"
	url, client := serve(t, health.New(health.Bank(nil, base)))
	code, b := get(t, client, url+"/readyz")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d %s", code, b.raw)
	}
	r := b.Checks["bank"]
	if r.Status != health.StatusError || !strings.Contains(r.Error, "connection refused") || !strings.Contains(r.Error, addr) {
		t.Errorf("bank check = %+v, want connection refused at %s", r, addr)
	}
	for _, secret := range []string{"hunter2", "s3cr3t-token"} {
		if strings.Contains(b.raw, secret) {
			t.Errorf("body leaks %q: %s", secret, b.raw)
		}
	}
}

func TestBankTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	c := health.NewWithOptions(health.Options{Timeout: 150 * time.Millisecond}, health.Bank(slow.Client(), slow.URL))
	start := time.Now()
	rep := c.Check(context.Background())
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("check took %v with a 150ms timeout", d)
	}
	if rep.Ready() || rep.Checks["bank"].Status != health.StatusError {
		t.Errorf("report = %+v, want the bank unreachable", rep)
	}
}

func TestClosedSQLite(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.register(t, e.clock.Now().Add(time.Hour))
	url, client := serve(t, health.New(health.SQLite(e.db)))
	if code, b := get(t, client, url+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz with an open DB = %d %s", code, b.raw)
	}
	e.db.Close()
	// A new checker: the first one would answer from its last second.
	url, client = serve(t, health.New(health.SQLite(e.db)))
	code, b := get(t, client, url+"/readyz")
	if code != http.StatusServiceUnavailable || b.Checks["sqlite"].Status != health.StatusError ||
		!strings.Contains(b.Checks["sqlite"].Error, "closed") {
		t.Errorf("/readyz with a closed DB = %d %s", code, b.raw)
	}
}

func TestRegistration(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	check := health.RegistrationValid(e.regs, bankBase, e.clock)
	ctx := context.Background()

	err := check(ctx)
	if !errors.Is(err, health.ErrNotRegistered) || !strings.Contains(err.Error(), "tpp register") {
		t.Errorf("missing registration: %v", err)
	}
	url, client := serve(t, health.NewWithOptions(health.Options{MaxAge: -1}, health.Registration(check)))
	code, b := get(t, client, url+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(b.Checks["registration"].Error, "not registered") {
		t.Errorf("/readyz unregistered = %d %s", code, b.raw)
	}

	e.register(t, e.clock.Now().Add(24*time.Hour))
	if err := check(ctx); err != nil {
		t.Errorf("valid registration: %v", err)
	}
	if code, b := get(t, client, url+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz registered = %d %s", code, b.raw)
	}
	if strings.Contains(b.raw, "SECRET") {
		t.Errorf("body leaks a registration secret: %s", b.raw)
	}

	e.clock.Add(25 * time.Hour)
	if err := check(ctx); !errors.Is(err, health.ErrCertificateExpired) || !strings.Contains(err.Error(), "CN=Test TPP") {
		t.Errorf("expired certificate: %v", err)
	}
	code, b = get(t, client, url+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(b.Checks["registration"].Error, "expired") {
		t.Errorf("/readyz expired = %d %s", code, b.raw)
	}
}

func TestChecksRunConcurrentlyUnderOneTimeout(t *testing.T) {
	t.Parallel()
	sleep := func(d time.Duration) func(context.Context) error {
		return func(ctx context.Context) error {
			select {
			case <-time.After(d):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	hang := make(chan struct{})
	defer close(hang)
	c := health.NewWithOptions(health.Options{Timeout: 300 * time.Millisecond},
		health.Check{Name: "a", Fn: sleep(100 * time.Millisecond)},
		health.Check{Name: "b", Fn: sleep(100 * time.Millisecond)},
		health.Check{Name: "c", Fn: sleep(100 * time.Millisecond)},
		// Ignores its context: abandoned at the timeout.
		health.Check{Name: "stuck", Fn: func(context.Context) error { <-hang; return nil }},
		health.Check{Name: "panics", Fn: func(context.Context) error { panic("boom") }},
	)
	start := time.Now()
	rep := c.Check(context.Background())
	d := time.Since(start)
	if d < 300*time.Millisecond || d > 2*time.Second {
		t.Errorf("run took %v, want about the 300ms timeout", d)
	}
	for _, n := range []string{"a", "b", "c"} {
		if rep.Checks[n].Status != health.StatusOK {
			t.Errorf("%s = %+v; three 100ms checks fit in 300ms only when run together", n, rep.Checks[n])
		}
	}
	if r := rep.Checks["stuck"]; r.Status != health.StatusError || !strings.Contains(r.Error, "no answer within 300ms") {
		t.Errorf("stuck = %+v", r)
	}
	if r := rep.Checks["panics"]; r.Status != health.StatusError || !strings.Contains(r.Error, "boom") {
		t.Errorf("panics = %+v", r)
	}
	if rep.Ready() {
		t.Error("ready with failing checks")
	}
}

func TestProbesShareOneRunAndReuseItBriefly(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)}
	var calls atomic.Int32
	gate := make(chan struct{})
	c := health.NewWithOptions(health.Options{Clock: clock}, health.Check{Name: "dep", Fn: func(ctx context.Context) error {
		calls.Add(1)
		<-gate
		return nil
	}})
	url, client := serve(t, c)

	const probes = 50
	var wg sync.WaitGroup
	codes := make(chan int, probes)
	for range probes {
		wg.Go(func() {
			resp, err := client.Get(url + "/readyz")
			if err != nil {
				t.Errorf("probe: %v", err)
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	// Let the run finish once at least one probe is waiting on it.
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(gate)
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != http.StatusOK {
			t.Errorf("probe = %d", code)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d concurrent probes ran the check %d times, want 1", probes, n)
	}

	// Within a second the result is reused; after it, checked again.
	clock.Add(900 * time.Millisecond)
	c.Check(context.Background())
	if n := calls.Load(); n != 1 {
		t.Errorf("probe 0.9s later ran the check (calls %d)", n)
	}
	clock.Add(200 * time.Millisecond)
	c.Check(context.Background())
	if n := calls.Load(); n != 2 {
		t.Errorf("probe 1.1s later: calls = %d, want 2", n)
	}
}

func TestCallerGivingUpDoesNotCancelTheRun(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	var sawCancel atomic.Bool
	c := health.New(health.Check{Name: "dep", Fn: func(ctx context.Context) error {
		select {
		case <-gate:
		case <-ctx.Done():
			sawCancel.Store(true)
		}
		return ctx.Err()
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan health.Report)
	go func() { done <- c.Check(ctx) }()
	cancel()
	if rep := <-done; rep.Ready() {
		t.Error("a cancelled probe reported ready")
	}
	close(gate)
	if rep := c.Check(context.Background()); !rep.Ready() || sawCancel.Load() {
		t.Errorf("run after a caller gave up: %+v (cancel seen %v)", rep, sawCancel.Load())
	}
}

func TestOptionalCheckDoesNotMakeUnready(t *testing.T) {
	t.Parallel()
	c := health.New(
		health.Check{Name: "db", Fn: func(context.Context) error { return nil }},
		health.Check{Name: "bank", Fn: func(context.Context) error { return errors.New("bank down") }, Optional: true},
	)
	url, client := serve(t, c)
	code, b := get(t, client, url+"/readyz")
	if code != http.StatusOK || b.Status != health.StatusReady || b.Checks["bank"].Status != health.StatusError ||
		b.Checks["bank"].Error != "bank down" {
		t.Errorf("/readyz with a failing optional check = %d %s", code, b.raw)
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	in := `Get "https://admin:pw123@bank.example/v1/token?client_secret=abc&grant_type=x": dial tcp 10.0.0.1:443: i/o timeout` + "\nline2"
	got := health.Redact(in)
	for _, s := range []string{"pw123", "abc&", "\n"} {
		if strings.Contains(got, s) {
			t.Errorf("Redact kept %q: %s", s, got)
		}
	}
	if !strings.Contains(got, "bank.example/v1/token") || !strings.Contains(got, "i/o timeout") || !strings.Contains(got, "grant_type=x") {
		t.Errorf("Redact lost the useful part: %s", got)
	}
	long := health.Redact(strings.Repeat("é", 400))
	if len(long) > 310 || !strings.HasSuffix(long, "…") || !strings.HasPrefix(long, "éé") {
		t.Errorf("long text not capped cleanly: %d bytes", len(long))
	}
}

func TestNewRejectsBadChecks(t *testing.T) {
	t.Parallel()
	ok := func(context.Context) error { return nil }
	for name, checks := range map[string][]health.Check{
		"empty name": {{Name: "", Fn: ok}},
		"nil fn":     {{Name: "x"}},
		"duplicate":  {{Name: "x", Fn: ok}, {Name: "x", Fn: ok}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: New did not panic", name)
				}
			}()
			health.New(checks...)
		}()
	}
}

// Another process holds the database's write lock: reads pass, but every
// write would fail, so /readyz answers 503 naming sqlite_write within the
// probe's short wait. Released, the service is ready again. The validating
// client holds both answers to the document's Readiness schema.
func TestUnreadyWhileWriteLockIsHeld(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.register(t, e.clock.Now().Add(365*24*time.Hour))
	url, client := serve(t, health.NewWithOptions(health.Options{MaxAge: -1}, e.checks(t)...))

	other, err := sql.Open("sqlite3", e.db.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	code, b := get(t, client, url+"/readyz")
	if code != http.StatusServiceUnavailable || b.Status != health.StatusUnready ||
		b.Checks["sqlite_write"].Status != health.StatusError || b.Checks["sqlite"].Status != health.StatusOK ||
		!strings.Contains(b.Checks["sqlite_write"].Error, "lock") {
		t.Fatalf("/readyz with the write lock held = %d %s", code, b.raw)
	}
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if code, b := get(t, client, url+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz after release = %d %s", code, b.raw)
	}
}
