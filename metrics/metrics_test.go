package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/metrics"
	"github.com/bunqtpp/tpp/psd2"
	"github.com/bunqtpp/tpp/seal"
	"github.com/bunqtpp/tpp/sqlite"
)

// fakeClock is a settable tpp.Clock.
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

type families map[string]*dto.MetricFamily

// scrape fetches h over real HTTP and parses the text exposition.
func scrape(t *testing.T, h http.Handler) families {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d: %s", resp.StatusCode, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse scrape: %v\n%s", err, body)
	}
	return fams
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func sameLabels(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// find returns the series of name with exactly labels, or nil.
func (f families) find(name string, labels map[string]string) *dto.Metric {
	fam := f[name]
	if fam == nil {
		return nil
	}
	for _, m := range fam.GetMetric() {
		if sameLabels(labelsOf(m), labels) {
			return m
		}
	}
	return nil
}

// must returns the series or fails, listing what is there.
func (f families) must(t *testing.T, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	m := f.find(name, labels)
	if m == nil {
		var have []string
		if fam := f[name]; fam != nil {
			for _, s := range fam.GetMetric() {
				have = append(have, fmt.Sprint(labelsOf(s)))
			}
		}
		t.Fatalf("no series %s%v; have %v", name, labels, have)
	}
	return m
}

func (f families) counter(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	return f.must(t, name, labels).GetCounter().GetValue()
}

func (f families) gauge(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	return f.must(t, name, labels).GetGauge().GetValue()
}

func (f families) histogram(t *testing.T, name string, labels map[string]string) (count uint64, sum float64) {
	t.Helper()
	h := f.must(t, name, labels).GetHistogram()
	return h.GetSampleCount(), h.GetSampleSum()
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestHooksAppearInScrape(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)}
	m := metrics.New(metrics.WithClock(clock))

	m.ObserveHTTP("/v1/consents/:id", http.MethodGet, 200, 150*time.Millisecond)
	m.ObserveHTTP("/v1/consents/:id", http.MethodGet, 200, 50*time.Millisecond)
	m.ObserveHTTP("/v1/consents/:id", "BREW", 405, time.Millisecond)
	obs := m.APIObserver()
	obs("/v1/consents", 201, 20*time.Millisecond)
	obs("POST /v1/single-payments", 202, 30*time.Millisecond)
	obs("", 404, time.Millisecond)

	m.ObserveBankCall(http.MethodGet, "/user/123/monetary-account/456/payment", 200, 30*time.Millisecond)
	m.ObserveBankCall(http.MethodGet, "/user/124/monetary-account/457/payment", 200, 10*time.Millisecond)
	m.ObserveBankCall(http.MethodPost, "/session-server", 0, 2*time.Second)
	m.ObserveBankCall(http.MethodPost, "/session-server", 429, time.Second)

	m.ObserveBudgetWait("a1b2c3 GET /user/{id}/monetary-account", 1500*time.Millisecond)
	m.ObserveBudgetWait("ffee99 GET /user/{id}/monetary-account", 500*time.Millisecond)

	m.SessionRenewed()
	m.SessionRenewed()
	m.ContextRebuilt(nil)
	m.ContextRebuilt(errors.New("bank down"))
	m.OnContextRebuild()("con_secretish")

	m.ObserveWebhook(tpp.EventConsentUpdated, true, 100*time.Millisecond)
	m.ObserveWebhook(tpp.EventPaymentUpdated, false, 5*time.Second)
	m.ObserveWebhook("made.up", true, time.Millisecond)

	f := scrape(t, m.Handler())

	if n, s := f.histogram(t, "tpp_http_request_duration_seconds", map[string]string{"route": "/v1/consents/:id", "method": "GET", "status": "200"}); n != 2 || !near(s, 0.2) {
		t.Errorf("http GET consent: count %d sum %v, want 2, 0.2", n, s)
	}
	if n, _ := f.histogram(t, "tpp_http_request_duration_seconds", map[string]string{"route": "/v1/consents/:id", "method": "other", "status": "405"}); n != 1 {
		t.Errorf("unknown method: count %d", n)
	}
	if n, _ := f.histogram(t, "tpp_http_request_duration_seconds", map[string]string{"route": "/v1/consents", "method": "any", "status": "201"}); n != 1 {
		t.Errorf("api observer: count %d", n)
	}
	if n, _ := f.histogram(t, "tpp_http_request_duration_seconds", map[string]string{"route": "/v1/single-payments", "method": "POST", "status": "202"}); n != 1 {
		t.Errorf("api observer with method in route: count %d", n)
	}
	f.must(t, "tpp_http_request_duration_seconds", map[string]string{"route": "unmatched", "method": "any", "status": "404"})

	ep := "GET /user/{id}/monetary-account/{id}/payment"
	if v := f.counter(t, "tpp_bank_requests_total", map[string]string{"endpoint": ep, "status": "200"}); v != 2 {
		t.Errorf("bank requests %s = %v, want 2", ep, v)
	}
	if n, s := f.histogram(t, "tpp_bank_request_duration_seconds", map[string]string{"endpoint": ep}); n != 2 || !near(s, 0.04) {
		t.Errorf("bank duration: %d %v", n, s)
	}
	if v := f.counter(t, "tpp_bank_requests_total", map[string]string{"endpoint": "POST /session-server", "status": "error"}); v != 1 {
		t.Errorf("bank no-answer = %v", v)
	}
	if v := f.counter(t, "tpp_bank_requests_total", map[string]string{"endpoint": "POST /session-server", "status": "429"}); v != 1 {
		t.Errorf("bank 429 = %v", v)
	}

	bep := map[string]string{"endpoint": "GET /user/{id}/monetary-account"}
	if n, s := f.histogram(t, "tpp_bank_budget_wait_seconds", bep); n != 2 || !near(s, 2) {
		t.Errorf("budget wait: %d %v, want 2, 2s", n, s)
	}
	if v := f.counter(t, "tpp_bank_budget_waits_total", bep); v != 2 {
		t.Errorf("budget waits = %v", v)
	}

	if v := f.counter(t, "tpp_bank_session_renewals_total", nil); v != 2 {
		t.Errorf("renewals = %v", v)
	}
	if v := f.counter(t, "tpp_bank_context_rebuilds_total", map[string]string{"result": "ok"}); v != 2 {
		t.Errorf("rebuilds ok = %v", v)
	}
	if v := f.counter(t, "tpp_bank_context_rebuilds_total", map[string]string{"result": "error"}); v != 1 {
		t.Errorf("rebuilds error = %v", v)
	}

	for _, c := range []struct {
		typ, result string
		want        float64
	}{
		{tpp.EventConsentUpdated, "ok", 1}, {tpp.EventConsentUpdated, "failed", 0},
		{tpp.EventPaymentUpdated, "ok", 0}, {tpp.EventPaymentUpdated, "failed", 1},
		{"other", "ok", 1},
	} {
		if v := f.counter(t, "tpp_webhook_deliveries_total", map[string]string{"type": c.typ, "result": c.result}); v != c.want {
			t.Errorf("webhook %s %s = %v, want %v", c.typ, c.result, v, c.want)
		}
	}
	if n, s := f.histogram(t, "tpp_webhook_delivery_duration_seconds", map[string]string{"type": tpp.EventPaymentUpdated}); n != 1 || !near(s, 5) {
		t.Errorf("webhook duration: %d %v", n, s)
	}

	// The runtime collectors are there; no id ever became a label.
	if f["go_goroutines"] == nil {
		t.Error("no go_goroutines: Go collector missing")
	}
	for name, fam := range f {
		for _, s := range fam.GetMetric() {
			for _, l := range s.GetLabel() {
				for _, id := range []string{"con_", "123", "456", "124", "457", "a1b2c3", "ffee99"} {
					if strings.Contains(l.GetValue(), id) {
						t.Errorf("%s has id %q in label %s=%q", name, id, l.GetName(), l.GetValue())
					}
				}
			}
		}
	}
	// Not set yet: absent, rather than a zero that would fire an alert.
	if f["tpp_certificate_expiry_days"] != nil {
		t.Error("certificate expiry reported before it was set")
	}
}

func TestCertificateExpiryFollowsClock(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)}
	m := metrics.New(metrics.WithClock(clock))
	m.SetCertificateExpiry(clock.Now().Add(10 * 24 * time.Hour))
	if v := scrape(t, m.Handler()).gauge(t, "tpp_certificate_expiry_days", nil); !near(v, 10) {
		t.Errorf("expiry days = %v, want 10", v)
	}
	clock.Add(36 * time.Hour)
	if v := scrape(t, m.Handler()).gauge(t, "tpp_certificate_expiry_days", nil); !near(v, 8.5) {
		t.Errorf("expiry days after 1.5 days = %v, want 8.5", v)
	}
	clock.Add(10 * 24 * time.Hour)
	if v := scrape(t, m.Handler()).gauge(t, "tpp_certificate_expiry_days", nil); !near(v, -1.5) {
		t.Errorf("expiry days once expired = %v, want -1.5", v)
	}
}

func TestInstancesAreIndependent(t *testing.T) {
	t.Parallel()
	a, b := metrics.New(), metrics.New()
	a.SessionRenewed()
	if v := scrape(t, b.Handler()).counter(t, "tpp_bank_session_renewals_total", nil); v != 0 {
		t.Errorf("b saw a's renewal: %v", v)
	}
	if v := scrape(t, a.Handler()).counter(t, "tpp_bank_session_renewals_total", nil); v != 1 {
		t.Errorf("a renewals = %v", v)
	}
}

func TestPathPattern(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/user/123/monetary-account/456/payment":        "/user/{id}/monetary-account/{id}/payment",
		"/session-server":                               "/session-server",
		"/installation/7/server-public-key?x=1":         "/installation/{id}/server-public-key",
		"/v1/user/{id}/oauth-client/9f86d081884c":       "/v1/user/{id}/oauth-client/{id}",
		"/attachment-public/" + strings.Repeat("a", 41): "/attachment-public/{id}",
		"/user/123/": "/user/{id}/",
		"":           "",
	} {
		if got := metrics.PathPattern(in); got != want {
			t.Errorf("PathPattern(%q) = %q, want %q", in, got, want)
		}
	}
}

// openDB opens a real SQLite file with the service's schema.
func openDB(t *testing.T) (*sqlite.DB, *sqlite.ClientService, *sqlite.ConsentService) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "tpp.db"), nil)
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	kr, err := seal.NewKeyring(seal.Key{ID: "k1", Key: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	return db, sqlite.NewClientService(db, kr), sqlite.NewConsentService(db, kr)
}

func TestConsentsGaugeFromSQLite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, clients, consents := openDB(t)
	cl, _, err := clients.CreateClient(ctx, tpp.NewClient{Name: "Acme", ReturnURLs: []string{"https://acme.example/return"}})
	if err != nil {
		t.Fatalf("CreateClient: %v", err)
	}
	var ids []string
	for i := range 4 {
		con, err := consents.CreateConsent(ctx, tpp.NewConsent{
			ClientID: cl.ID, UserRef: fmt.Sprintf("user-%d", i), Scopes: []tpp.Scope{tpp.ScopeAccounts},
			ReturnURL: cl.ReturnURLs[0], Actor: tpp.ActorClient(cl.ID),
		})
		if err != nil {
			t.Fatalf("CreateConsent: %v", err)
		}
		ids = append(ids, con.ID)
	}
	transition := func(tr tpp.ConsentTransition) {
		t.Helper()
		if _, err := consents.TransitionConsent(ctx, tr); err != nil {
			t.Fatalf("TransitionConsent %+v: %v", tr.To, err)
		}
	}
	transition(tpp.ConsentTransition{ID: ids[0], To: tpp.ConsentActive, BunqUserID: 7, BunqUserName: "Jane",
		AccessToken: "tok-0", Actor: tpp.ActorPSU})
	transition(tpp.ConsentTransition{ID: ids[1], To: tpp.ConsentActive, BunqUserID: 8, BunqUserName: "John",
		AccessToken: "tok-1", Actor: tpp.ActorPSU})
	transition(tpp.ConsentTransition{ID: ids[2], To: tpp.ConsentRejected, ErrorCode: "access_denied", Actor: tpp.ActorPSU})

	m := metrics.New()
	if err := m.WatchConsents(metrics.SQLConsents{DB: db.DB}, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := m.WatchConsents(metrics.SQLConsents{DB: db.DB}, time.Second); err == nil {
		t.Error("watching consents twice did not fail")
	}

	f := scrape(t, m.Handler())
	want := map[string]float64{"pending": 1, "active": 2, "rejected": 1, "expired": 0, "revoked": 0, "reauth_required": 0}
	for status, n := range want {
		if v := f.gauge(t, "tpp_consents", map[string]string{"status": status}); v != n {
			t.Errorf("tpp_consents{status=%q} = %v, want %v", status, v, n)
		}
	}
	if got := len(f["tpp_consents"].GetMetric()); got != len(want) {
		t.Errorf("%d consent series, want %d", got, len(want))
	}

	// Computed at scrape time: a revocation shows at the next scrape.
	transition(tpp.ConsentTransition{ID: ids[0], To: tpp.ConsentRevoked, Actor: tpp.ActorPSU})
	f = scrape(t, m.Handler())
	if v := f.gauge(t, "tpp_consents", map[string]string{"status": "active"}); v != 1 {
		t.Errorf("active after revoke = %v", v)
	}
	if v := f.gauge(t, "tpp_consents", map[string]string{"status": "revoked"}); v != 1 {
		t.Errorf("revoked after revoke = %v", v)
	}

	// A broken database drops the gauge, not the scrape.
	db.Close()
	scrape(t, m.Handler()) // the handler counts the error after serving
	f = scrape(t, m.Handler())
	if f["tpp_consents"] != nil {
		t.Error("tpp_consents reported from a closed database")
	}
	if f["go_goroutines"] == nil {
		t.Error("the rest of the scrape is gone with the consent count")
	}
	if v := f.counter(t, "promhttp_metric_handler_errors_total", map[string]string{"cause": "gathering"}); v < 1 {
		t.Errorf("gathering errors = %v, want >= 1", v)
	}
}

// slowCounter blocks until its context ends.
type slowCounter struct{}

func (slowCounter) CountConsentsByStatus(ctx context.Context) (map[string]int, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestConsentCountTimesOut(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	if err := m.WatchConsents(slowCounter{}, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	f := scrape(t, m.Handler())
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("scrape took %v with a 50ms consent timeout", d)
	}
	if f["tpp_consents"] != nil {
		t.Error("tpp_consents present after a timeout")
	}
}

func TestLabelCardinalityStaysBounded(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	const users = 1000
	for i := range users {
		uid := 1_000_000 + i
		m.ObserveBankCall(http.MethodGet, fmt.Sprintf("/user/%d/monetary-account/%d/payment/%d", uid, uid*3, uid*7), 200, time.Millisecond)
		m.ObserveBankCall(http.MethodPost, fmt.Sprintf("/user/%d/payment-service-provider-draft-payment", uid), 201, time.Millisecond)
		m.ObserveBudgetWait(fmt.Sprintf("inst%x GET /user/{id}/monetary-account", uid), time.Millisecond)
		m.ObserveHTTP("/v1/consents/:id", http.MethodGet, 200, time.Millisecond)
		m.OnContextRebuild()(fmt.Sprintf("con_%d", uid))
		m.ObserveWebhook(fmt.Sprintf("custom.%d", uid), true, time.Millisecond)
	}
	f := scrape(t, m.Handler())
	for name, want := range map[string]int{
		"tpp_bank_requests_total":           2,
		"tpp_bank_request_duration_seconds": 2,
		"tpp_bank_budget_wait_seconds":      1,
		"tpp_bank_budget_waits_total":       1,
		"tpp_http_request_duration_seconds": 1,
		"tpp_bank_context_rebuilds_total":   2, // ok, error
		"tpp_webhook_deliveries_total":      7, // 3 known types × 2 results, plus other/ok
	} {
		if got := len(f[name].GetMetric()); got != want {
			t.Errorf("%s has %d series after %d users, want %d", name, got, users, want)
		}
	}
	if v := f.counter(t, "tpp_bank_requests_total", map[string]string{"endpoint": "GET /user/{id}/monetary-account/{id}/payment/{id}", "status": "200"}); v != users {
		t.Errorf("folded endpoint count = %v, want %d", v, users)
	}

	// Paths whose ids have no digits (letters only) are not folded; the
	// cap still bounds them.
	for i := range users {
		m.ObserveBankCall(http.MethodGet, "/alias/"+letters(i), 200, time.Millisecond)
	}
	f = scrape(t, m.Handler())
	if got := len(f["tpp_bank_requests_total"].GetMetric()); got > 256+1 {
		t.Errorf("%d bank series with unfoldable ids; the cap is 256 plus %q", got, metrics.Other)
	}
	if v := f.counter(t, "tpp_bank_requests_total", map[string]string{"endpoint": metrics.Other, "status": "200"}); v < users-256 {
		t.Errorf("other = %v, want >= %d", v, users-256)
	}
}

func letters(i int) string {
	var b []byte
	for {
		b = append(b, byte('a'+i%26))
		i /= 26
		if i == 0 {
			return string(b) + "x"
		}
	}
}

func TestWrapBudgetRecordsRealWaits(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	b := m.WrapBudget(psd2.NewMemoryBudget(nil))
	ctx := context.Background()
	key := "inst1 GET /user/{id}/monetary-account"
	start := time.Now()
	for range 3 {
		if err := b.Wait(ctx, key, 1, 30*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	f := scrape(t, m.Handler())
	ep := map[string]string{"endpoint": "GET /user/{id}/monetary-account"}
	// The first call is admitted at once; the other two wait a window each.
	if v := f.counter(t, "tpp_bank_budget_waits_total", ep); v != 2 {
		t.Errorf("waits = %v, want 2", v)
	}
	n, s := f.histogram(t, "tpp_bank_budget_wait_seconds", ep)
	if n != 2 || s < 0.05 || s > elapsed.Seconds() {
		t.Errorf("wait histogram: count %d sum %vs (elapsed %v), want 2 and 50ms..elapsed", n, s, elapsed)
	}
}

func TestBankTransport(t *testing.T) {
	t.Parallel()
	bank := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/token" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer bank.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()

	m := metrics.New()
	client := &http.Client{Transport: m.BankTransport(nil)}
	for _, u := range []string{bank.URL + "/v1/user/42/x", bank.URL + "/v1/user/43/x", bank.URL + "/v1/token?code=secret"} {
		resp, err := client.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if _, err := client.Get(downURL + "/v1/user/1/x"); err == nil {
		t.Fatal("request to a closed server succeeded")
	}
	f := scrape(t, m.Handler())
	for _, c := range []struct {
		ep, status string
		want       float64
	}{
		{"GET /v1/user/{id}/x", "200", 2},
		{"GET /v1/token", "400", 1},
		{"GET /v1/user/{id}/x", "error", 1},
	} {
		if v := f.counter(t, "tpp_bank_requests_total", map[string]string{"endpoint": c.ep, "status": c.status}); v != c.want {
			t.Errorf("%s %s = %v, want %v", c.ep, c.status, v, c.want)
		}
	}
}

func TestMetricNamesAreStable(t *testing.T) {
	t.Parallel()
	// Dashboards and alerts use these names; changing one is a breaking change.
	m := metrics.New()
	m.SetCertificateExpiry(time.Now().Add(time.Hour))
	m.ObserveHTTP("/x", "GET", 200, 0)
	m.ObserveBankCall("GET", "/x", 200, 0)
	m.ObserveBudgetWait("k GET /x", time.Second)
	m.ObserveWebhook(tpp.EventConsentUpdated, true, time.Second)
	m.UnknownBankStatus("single")
	m.UnknownBankStatus("anything")
	if v := scrape(t, m.Handler()).counter(t, "tpp_bank_unknown_status_total", map[string]string{"kind": "single"}); v != 1 {
		t.Errorf("unknown statuses of single payments: %v", v)
	}
	var names []string
	for n := range scrape(t, m.Handler()) {
		if strings.HasPrefix(n, "tpp_") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	want := []string{
		"tpp_bank_budget_wait_seconds", "tpp_bank_budget_waits_total", "tpp_bank_context_rebuilds_total", "tpp_bank_credentials_refused_total",
		"tpp_bank_request_duration_seconds", "tpp_bank_requests_total", "tpp_bank_session_renewals_total",
		"tpp_bank_unknown_status_total", "tpp_certificate_expiry_days", "tpp_http_request_duration_seconds",
		"tpp_payment_poll_rounds_total", "tpp_webhook_deliveries_total", "tpp_webhook_delivery_duration_seconds",
	}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("metric names:\n got %v\nwant %v", names, want)
	}
}
