package main

// Operability end-to-end tests: the whole service, started through run()
// on the same data as an operator would, stopped as SIGTERM stops it,
// with its Redis taken away, scraped by Prometheus and misconfigured.
//
// They use the whole-service harness of harness_test.go without its
// automatic start (opsHarness below): these tests pass their own flags
// (--poll-interval, --metrics-listen), may protect Redis with a password,
// and stop and restart the server on the same database, Redis, bank and
// public URL.

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/bankctx"
	"github.com/bunqtpp/tpp/internal/banktest"
	"github.com/bunqtpp/tpp/internal/testenv"
	"github.com/bunqtpp/tpp/psd2"
	"github.com/bunqtpp/tpp/redis"
	"github.com/bunqtpp/tpp/webhook"
)

// Bank routes as the emulator's Stats names them.
const (
	opsDraftCreate = "POST /v1/user/{id}/monetary-account/{id}/draft-payment"
	opsDraftPath   = "/v1/user/*/monetary-account/*/draft-payment"
	opsPSPPath     = "/v1/user/*/payment-service-provider-draft-payment"
)

// opsOptions change what newOpsHarness sets up (harness_test.go).
type opsOptions = harnessOptions

// opsHarness is the shared harness, prepared but not started: the tests
// start, stop and restart the server (serve) on the same data.
type opsHarness struct{ *harness }

// newOpsHarness prepares a TPP with newHarness. Its servers get a 6 s
// shutdown grace: a stop under load must be done within it, and it is just
// above net/http's 5 s for a connection accepted at the last moment that
// has sent nothing yet (Shutdown waits that long before closing it; payment
// C's racing connection can be one).
func newOpsHarness(t *testing.T, o opsOptions) *opsHarness {
	t.Helper()
	o.serveFlags = append([]string{"--shutdown-grace", "6s"}, o.serveFlags...)
	return &opsHarness{newHarness(t, o)}
}

// waitUntil polls cond every 25 ms until it holds or fails t after d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// attended marks account reads as made with the user present (no PSD2
// 4-a-day limit).
var attended = http.Header{"Psu-Ip-Address": {"192.0.2.10"}}

// firstAccount reads the consent's accounts and returns the first one's id.
func (o *opsHarness) firstAccount(t *testing.T, consentID string) string {
	t.Helper()
	r := o.apiAs(o.APIKey, http.MethodGet, "/v1/consents/"+consentID+"/accounts", nil, attended)
	ids := accountIDs(r)
	if r.Status != http.StatusOK || ids == "" {
		t.Fatalf("account read: %d %v", r.Status, r.Body)
	}
	id, _, _ := strings.Cut(ids, ",")
	return id
}

// payee returns an account of someone other than the consenting person.
func (o *opsHarness) payee(t *testing.T) banktest.Account {
	t.Helper()
	me := o.person()
	for _, u := range o.Env.Users(t) {
		if u.ID != me.ID && len(u.Accounts) > 0 {
			return u.Accounts[0]
		}
	}
	t.Fatal("the emulated bank has no second user with an account")
	return banktest.Account{}
}

// paymentBody is a draft payment request; amounts are decimal strings.
func paymentBody(accountID, iban, amount, description string) map[string]any {
	return map[string]any{
		"account_id":   accountID,
		"amount":       map[string]string{"amount": amount, "currency": "EUR"},
		"counterparty": map[string]string{"iban": iban, "name": "Bakkerij de Korenschoof"},
		"description":  description,
	}
}

// createPayment posts a draft payment with an Idempotency-Key, validated
// against the OpenAPI document.
func (o *opsHarness) createPayment(consentID, key string, body map[string]any) apiResponse {
	o.t.Helper()
	return o.apiAs(o.APIKey, http.MethodPost, "/v1/consents/"+consentID+"/payments", body, http.Header{"Idempotency-Key": {key}})
}

// rawResult is the outcome of a request that may meet a server going away.
type rawResult struct {
	status int
	body   jsonObject
	err    error
}

// rawCreatePayment posts a draft payment without failing the test on a
// transport error (it may race the shutdown). Safe from any goroutine.
func (o *opsHarness) rawCreatePayment(consentID, key string, body map[string]any) rawResult {
	b, err := json.Marshal(body)
	if err != nil {
		return rawResult{err: err}
	}
	req, err := http.NewRequest(http.MethodPost, o.URL+"/v1/consents/"+consentID+"/payments", bytes.NewReader(b))
	if err != nil {
		return rawResult{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+o.APIKey)
	req.Header.Set("Idempotency-Key", key)
	res, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		return rawResult{err: err}
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	out := rawResult{status: res.StatusCode, err: err}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if derr := dec.Decode(&out.body); derr != nil && out.err == nil {
		out.err = fmt.Errorf("body %q: %w", raw, derr)
	}
	return out
}

// bankDraftID is a payment's bank_draft_id (0 when absent).
func bankDraftID(p jsonObject) int64 {
	n, ok := p["bank_draft_id"].(json.Number)
	if !ok {
		return 0
	}
	id, _ := n.Int64()
	return id
}

// listPayments lists a consent's draft payments by id. The list is read
// from the TPP's database only: unlike GET of one payment, it does not ask
// the bank, so a status seen here was not refreshed by the test.
func (o *opsHarness) listPayments(t *testing.T, consentID string) map[string]jsonObject {
	t.Helper()
	r := o.apiAs(o.APIKey, http.MethodGet, "/v1/consents/"+consentID+"/payments", nil, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("list payments: %d %v", r.Status, r.Body)
	}
	out := map[string]jsonObject{}
	data, _ := r.Body["data"].([]any)
	for _, d := range data {
		if m, ok := d.(map[string]any); ok {
			out[jsonObject(m).str("id")] = m
		}
	}
	return out
}

// bankDrafts lists the drafts at the bank on accountID, read with the
// consent's own bunq context from Redis, and counts them by
// merchant_reference (the TPP's payment id).
func (o *opsHarness) bankDrafts(t *testing.T, consentID string, accountID int64) map[string]int {
	t.Helper()
	ctx := context.Background()
	store, err := redis.NewContextStore(o.RDB, redis.NewKeys("tpp:"), o.keyring, 0)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := store.Get(ctx, consentID)
	if err != nil {
		t.Fatalf("the consent's bunq context: %v", err)
	}
	bc := new(psd2.Context)
	if err := json.Unmarshal(blob, bc); err != nil {
		t.Fatalf("decode the consent's bunq context: %v", err)
	}
	cl, err := psd2.New(psd2.Options{BaseURL: o.Env.APIURL})
	if err != nil {
		t.Fatal(err)
	}
	l, err := cl.ListDraftPayments(ctx, bc, accountID, psd2.Page{Count: 200})
	if err != nil {
		t.Fatalf("list the bank's drafts: %v", err)
	}
	out := map[string]int{}
	for _, d := range l.Items {
		for _, e := range d.Entries {
			out[e.MerchantReference]++
		}
	}
	return out
}

// TestE2EOpsShutdownDuringPayment stops the server (SIGTERM) while payment
// requests are in flight and while the bank's callback for an accepted
// draft is being lost, restarts it on the same data, and checks that
// nothing was lost, half-written or duplicated.
func TestE2EOpsShutdownDuringPayment(t *testing.T) {
	testenv.Heavy(t)
	t.Parallel()
	o := newOpsHarness(t, opsOptions{})
	first := o.serve(t, "--poll-interval", "1s")
	consent := o.activeConsent(t, "accounts", "payments")
	account := o.firstAccount(t, consent)
	accountNum, err := tpp.ParseAccountID(account)
	if err != nil {
		t.Fatalf("account id %q: %v", account, err)
	}
	to := o.payee(t)
	bodyA := paymentBody(account, to.IBAN, "12.50", "Order A")
	bodyB := paymentBody(account, to.IBAN, "7.25", "Order B")
	bodyC := paymentBody(account, to.IBAN, "3.10", "Order C")
	o.Env.ResetStats(t)

	// A: made before the shutdown; its acceptance happens while we are down.
	a := o.createPayment(consent, "ops-shutdown-a", bodyA)
	if a.Status != http.StatusCreated || a.Body.str("status") != "pending" || bankDraftID(a.Body) == 0 {
		t.Fatalf("payment A: %d %v", a.Status, a.Body)
	}
	idA, draftA := a.Body.str("id"), bankDraftID(a.Body)

	// B: at the bank (held there 800 ms) when the shutdown begins. The
	// graceful shutdown must let it finish.
	o.Env.Fault(t, banktest.Fault{Method: http.MethodPost, Path: opsDraftPath, Kind: banktest.FaultLatency, LatencyMS: 800, Count: 1})
	resB := make(chan rawResult, 1)
	go func() { resB <- o.rawCreatePayment(consent, "ops-shutdown-b", bodyB) }()
	waitUntil(t, 10*time.Second, "payment B to reach the bank", func() bool { return o.Env.Stats(t)[opsDraftCreate] == 2 })

	// C: sent as the shutdown starts; it may be served or refused.
	resC := make(chan rawResult, 1)
	go func() { resC <- o.rawCreatePayment(consent, "ops-shutdown-c", bodyC) }()
	if err := first.stop(30 * time.Second); err != nil {
		t.Fatalf("SIGTERM with requests in flight: run() = %v, want nil (graceful)\nlogs:\n%s", err, tail(o.logs.String(), 3000))
	}
	b, c := <-resB, <-resC
	if b.err != nil || b.status != http.StatusCreated || b.body.str("status") != "pending" || bankDraftID(b.body) == 0 {
		t.Fatalf("payment B, in flight during the shutdown: %d %v %v", b.status, b.err, b.body)
	}
	idB, draftB := b.body.str("id"), bankDraftID(b.body)
	if !strings.Contains(o.logs.String(), `"msg":"stopped"`) {
		t.Errorf("the server did not log a graceful stop")
	}
	if _, err := http.Get(o.URL + "/healthz"); err == nil {
		t.Fatal("the server still answers after run() returned")
	}
	cServed := c.err == nil && c.status == http.StatusCreated
	if c.err == nil && !cServed {
		t.Fatalf("payment C, racing the shutdown, got an answer that is neither 201 nor a refused connection: %d %v", c.status, c.body)
	}
	t.Logf("payment C racing the shutdown: served=%v (err %v)", cServed, c.err)

	// While the TPP is down the user accepts A in the app: the bank's
	// DRAFT_PAYMENT callback fails every attempt (6, one minute apart on
	// the bank's clock, which the test moves) and is given up.
	o.Env.AcceptDraftPayment(t, draftA)
	lost := func() (attempts int, delivered bool) {
		for _, cb := range o.Env.Callbacks(t) {
			if id, status := callbackDraft(cb); cb.Category == "DRAFT_PAYMENT" && cb.URL == o.URL+"/bank/callbacks" && id == draftA && status == "ACCEPTED" {
				attempts++
				delivered = delivered || cb.Status/100 == 2
			}
		}
		return attempts, delivered
	}
	waitUntil(t, 15*time.Second, "the bank to give up the callback for draft A", func() bool {
		n, _ := lost()
		if n < 6 {
			o.Env.AdvanceClock(t, time.Minute)
		}
		return n >= 6
	})
	if _, delivered := lost(); delivered {
		t.Fatal("the callback for draft A was delivered although the TPP was down")
	}

	// Restart on the same database, Redis, bank and URL.
	o.serve(t, "--poll-interval", "1s")

	// The poller finds A executed. The list does not ask the bank and no
	// callback can arrive any more, so only the poller can have moved it.
	var listed map[string]jsonObject
	waitUntil(t, 15*time.Second, "payment A to become executed after the restart", func() bool {
		listed = o.listPayments(t, consent)
		return listed[idA].str("status") == "executed"
	})
	if hist, _ := listed[idA]["status_history"].([]any); len(hist) != 2 {
		t.Errorf("payment A history: %v", listed[idA]["status_history"])
	}
	if _, delivered := lost(); delivered {
		t.Error("a late callback delivered draft A: the poller was not the one that found it")
	}
	if st := listed[idB].str("status"); st != "pending" || bankDraftID(listed[idB]) != draftB {
		t.Errorf("payment B after the restart: %v", listed[idB])
	}

	// Idempotency survives the restart: replays answer the stored payment.
	for _, tc := range []struct {
		key, id string
		body    map[string]any
	}{{"ops-shutdown-a", idA, bodyA}, {"ops-shutdown-b", idB, bodyB}} {
		r := o.createPayment(consent, tc.key, tc.body)
		if r.Status != http.StatusCreated || r.Body.str("id") != tc.id || r.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("replay of %s: %d %v %v", tc.key, r.Status, r.Header, r.Body)
		}
	}
	// C was served (replay answers it) or left nothing (the retry creates
	// it, once).
	rc := o.createPayment(consent, "ops-shutdown-c", bodyC)
	idC := rc.Body.str("id")
	if rc.Status != http.StatusCreated || idC == "" {
		t.Fatalf("retry of C after the restart: %d %v", rc.Status, rc.Body)
	}
	if cServed {
		if idC != c.body.str("id") || rc.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("C was served before the shutdown as %s, its replay answers %s (replayed %q)", c.body.str("id"), idC, rc.Header.Get("Idempotent-Replayed"))
		}
	} else if again := o.createPayment(consent, "ops-shutdown-c", bodyC); again.Body.str("id") != idC || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("C created after the restart as %s, replayed as %d %v", idC, again.Status, again.Body)
	}

	// Exactly one draft per payment at the bank, and nothing else.
	want := map[string]bool{idA: true, idB: true, idC: true}
	if n := o.Env.Stats(t)[opsDraftCreate]; n != len(want) {
		t.Errorf("the bank saw %d draft creations, want %d (one per payment)", n, len(want))
	}
	drafts := o.bankDrafts(t, consent, accountNum)
	for id := range want {
		if drafts[id] != 1 {
			t.Errorf("the bank holds %d drafts for payment %s, want 1 (all: %v)", drafts[id], id, drafts)
		}
	}
	listed = o.listPayments(t, consent)
	if len(listed) != len(want) {
		t.Errorf("the TPP lists %d payments, want %d: %v", len(listed), len(want), listed)
	}
	for id := range listed {
		if !want[id] {
			t.Errorf("unexpected payment %s: %v", id, listed[id])
		}
	}
}

// callbackDraft returns the id and status of the DraftPayment a callback
// carries (0 and "" for other callbacks).
func callbackDraft(cb banktest.Callback) (int64, string) {
	var v struct {
		NotificationURL struct {
			Object struct {
				DraftPayment *struct {
					ID     json.Number `json:"id"`
					Status string      `json:"status"`
				} `json:"DraftPayment"`
			} `json:"object"`
		} `json:"NotificationUrl"`
	}
	dec := json.NewDecoder(strings.NewReader(cb.Body))
	dec.UseNumber()
	if dec.Decode(&v) != nil || v.NotificationURL.Object.DraftPayment == nil {
		return 0, ""
	}
	d := v.NotificationURL.Object.DraftPayment
	id, _ := d.ID.Int64()
	return id, d.Status
}

// TestE2EOpsReadyzRedis takes the TPP's Redis away: /readyz reports it
// (and only it, and no secret), /healthz stays up, and readiness returns
// when Redis is back on the same address.
func TestE2EOpsReadyzRedis(t *testing.T) {
	testenv.Heavy(t)
	t.Parallel()
	pw := "redis-pw-" + hex.EncodeToString(randomBytes(t, 12))
	o := newOpsHarness(t, opsOptions{redisPassword: pw})
	o.serve(t)

	readyz := func() (int, string, readyReport) {
		res, err := http.Get(o.URL + "/readyz")
		if err != nil {
			t.Fatalf("GET /readyz: %v", err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		var rep readyReport
		if err := json.Unmarshal(raw, &rep); err != nil {
			t.Fatalf("/readyz body %q: %v", raw, err)
		}
		return res.StatusCode, string(raw), rep
	}
	var (
		st   int
		body string
		rep  readyReport
	)
	waitUntil(t, 10*time.Second, "/readyz 200 at start", func() bool { st, body, rep = readyz(); return st == http.StatusOK })
	if rep.Status != "ready" || rep.Checks["redis"].Status != "ok" || rep.Checks["sqlite"].Status != "ok" {
		t.Fatalf("/readyz at start: %s", body)
	}

	o.Redis.Stop(t)
	waitUntil(t, 10*time.Second, "/readyz 503 with Redis stopped", func() bool { st, body, rep = readyz(); return st == http.StatusServiceUnavailable })
	if rep.Status != "unready" || rep.Checks["redis"].Status != "error" || rep.Checks["redis"].Error == "" {
		t.Errorf("/readyz with Redis stopped: %s", body)
	}
	for _, name := range []string{"sqlite", "registration"} {
		if rep.Checks[name].Status != "ok" {
			t.Errorf("/readyz with Redis stopped blames %s too: %s", name, body)
		}
	}
	if hits := o.secrets.find(body); len(hits) > 0 || strings.Contains(body, pw) {
		t.Errorf("/readyz shows secrets %v: %s", hits, body)
	}
	if res, err := http.Get(o.URL + "/healthz"); err != nil || res.StatusCode != http.StatusOK {
		t.Errorf("/healthz with Redis stopped: %v %v (liveness must not depend on Redis)", res, err)
	} else {
		res.Body.Close()
	}

	start := time.Now()
	o.Redis.Restart(t)
	o.requirePass(t)
	waitUntil(t, 15*time.Second, "/readyz 200 after Redis is back", func() bool { st, body, rep = readyz(); return st == http.StatusOK })
	if rep.Checks["redis"].Status != "ok" {
		t.Errorf("/readyz after the restart: %s", body)
	}
	t.Logf("ready again %s after Redis restarted", time.Since(start).Round(time.Millisecond))
}

// readyReport is the /readyz body.
type readyReport struct {
	Status string `json:"status"`
	Checks map[string]struct {
		Status string `json:"status"`
		Error  string `json:"error"`
	} `json:"checks"`
}

// webhookReceiver is a fintech's webhook endpoint; it counts events by
// type. Once given the client's signing secret (verifyWith) it accepts
// only deliveries whose Standard Webhooks signature verifies.
type webhookReceiver struct {
	URL    string
	mu     sync.Mutex
	secret string
	types  map[string]int
	bad    int
}

func newWebhookReceiver(t *testing.T) *webhookReceiver {
	w := &webhookReceiver{types: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev struct {
			Type string `json:"type"`
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if json.Unmarshal(body, &ev) != nil || r.Header.Get("Webhook-Id") == "" ||
			(w.secret != "" && webhook.Verify(w.secret, r.Header, body, time.Now(), 0) != nil) {
			w.bad++
			http.Error(rw, "bad webhook", http.StatusBadRequest)
			return
		}
		w.types[ev.Type]++
		rw.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	w.URL = srv.URL + "/hooks"
	return w
}

// verifyWith makes the receiver check signatures with secret from now on.
func (w *webhookReceiver) verifyWith(secret string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.secret = secret
}

func (w *webhookReceiver) count(typ string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.types[typ]
}

// refused counts deliveries that were malformed or did not verify.
func (w *webhookReceiver) refused() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bad
}

// sample is one line of a Prometheus text exposition.
type sample struct {
	labels map[string]string
	value  float64
}

var (
	sampleRe = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$`)
	labelRe  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
)

// parseMetrics parses the text format into samples by metric name.
func parseMetrics(t *testing.T, text string) map[string][]sample {
	t.Helper()
	out := map[string][]sample{}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := sampleRe.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("unparsable metrics line %q", line)
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		s := sample{labels: map[string]string{}, value: v}
		for _, l := range labelRe.FindAllStringSubmatch(m[2], -1) {
			s.labels[l[1]] = l[2]
		}
		out[m[1]] = append(out[m[1]], s)
	}
	return out
}

// sumSeries adds the values of name's samples whose labels include want.
func sumSeries(ms map[string][]sample, name string, want map[string]string) (total float64, n int) {
	for _, s := range ms[name] {
		match := true
		for k, v := range want {
			if s.labels[k] != v {
				match = false
			}
		}
		if match {
			total += s.value
			n++
		}
	}
	return total, n
}

// TestE2EOpsMetrics runs a flow through every part of the service and
// checks that the metrics listener shows it.
func TestE2EOpsMetrics(t *testing.T) {
	testenv.Heavy(t)
	t.Parallel()
	hooks := newWebhookReceiver(t)
	o := newOpsHarness(t, opsOptions{webhookURL: hooks.URL})
	metricsAddr := "127.0.0.1:" + strconv.Itoa(freeTCPPort(t))
	o.serve(t, "--metrics-listen", metricsAddr)
	// The public listener may answer before the metrics line is written.
	waitUntil(t, 5*time.Second, "stdout to announce the metrics listener", func() bool {
		return strings.Contains(o.out.String(), "tpp: metrics on http://"+metricsAddr+"/metrics")
	})
	// The public listener does not serve the metrics.
	if res, err := http.Get(o.URL + "/metrics"); err == nil {
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			t.Error("/metrics is served on the public listener")
		}
	}

	// Consent flow, account read, payment, funds check.
	consent := o.activeConsent(t, "accounts", "payments", "funds")
	account := o.firstAccount(t, consent)
	to := o.payee(t)
	p := o.createPayment(consent, "ops-metrics-1", paymentBody(account, to.IBAN, "4.20", "Coffee beans"))
	if p.Status != http.StatusCreated {
		t.Fatalf("payment: %d %v", p.Status, p.Body)
	}
	pid := p.Body.str("id")
	f := o.apiAs(o.APIKey, http.MethodPost, "/v1/consents/"+consent+"/funds-confirmations",
		map[string]any{"account_id": account, "amount": map[string]string{"amount": "1.00", "currency": "EUR"}}, nil)
	if f.Status != http.StatusOK || f.Body["sufficient"] != true {
		t.Fatalf("funds check: %d %v", f.Status, f.Body)
	}

	// Rate budget: GET of a pending payment asks the bank each time, and
	// bunq allows 3 GETs per endpoint per 3 s, so the 4th waits.
	for i := range 4 {
		if r := o.apiAs(o.APIKey, http.MethodGet, "/v1/consents/"+consent+"/payments/"+pid, nil, nil); r.Status != http.StatusOK {
			t.Fatalf("GET payment #%d: %d %v", i+1, r.Status, r.Body)
		}
	}

	// A session renewal: the bank expires the TPP's own session under a
	// single payment's PSP draft (made as the user continues to bunq); the
	// client renews it and retries.
	o.Env.Fault(t, banktest.Fault{Method: http.MethodPost, Path: opsPSPPath, Kind: banktest.FaultExpireSession, Count: 1})
	sp := o.apiAs(o.APIKey, http.MethodPost, "/v1/single-payments", map[string]any{
		"debtor": map[string]string{"iban": o.person().Accounts[0].IBAN, "name": "Debtor"}, "creditor": map[string]string{"iban": to.IBAN, "name": "Creditor"},
		"amount": map[string]string{"amount": "2.00", "currency": "EUR"}, "description": "Single", "return_url": o.ReturnURL,
	}, http.Header{"Idempotency-Key": {"ops-metrics-single"}})
	if sp.Status != http.StatusCreated {
		t.Fatalf("single payment: %d %v\nlogs:\n%s", sp.Status, sp.Body, tail(o.logs.String(), 3000))
	}
	o.newJarBrowser().toBank(sp.Body.str("authorize_url"))

	// The user accepts: the callback makes the payment executed, which is
	// a payment.updated webhook (the consent's activation was a
	// consent.updated one).
	o.Env.AcceptDraftPayment(t, bankDraftID(p.Body))
	waitUntil(t, 15*time.Second, "consent.updated and payment.updated webhooks", func() bool {
		return hooks.count("consent.updated") > 0 && hooks.count("payment.updated") > 0
	})

	// A context rebuild: Redis loses everything, the next read after the
	// provider's recheck window rebuilds.
	o.Redis.FlushAll(t)
	time.Sleep(bankctx.DefaultRecheck)
	if r := o.apiAs(o.APIKey, http.MethodGet, "/v1/consents/"+consent+"/accounts", nil, attended); r.Status != http.StatusOK {
		t.Fatalf("account read after FLUSHALL: %d %v", r.Status, r.Body)
	}
	o.collectStoredSecrets(consent)

	scrape := func() (map[string][]sample, string) {
		res, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			t.Fatalf("scrape: %v", err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("scrape: %d %s", res.StatusCode, raw)
		}
		return parseMetrics(t, string(raw)), string(raw)
	}
	var ms map[string][]sample
	var text string
	// Webhook results are recorded just after the receiver answered.
	waitUntil(t, 5*time.Second, "webhook deliveries in the metrics", func() bool {
		ms, text = scrape()
		n, _ := sumSeries(ms, "tpp_webhook_deliveries_total", map[string]string{"type": "payment.updated", "result": "ok"})
		return n >= 1
	})
	if hits := o.secrets.find(text); len(hits) > 0 {
		t.Errorf("the metrics contain secrets: %v", hits)
	}
	if strings.Contains(text, consent) || strings.Contains(text, pid) {
		t.Error("the metrics contain consent or payment ids as labels")
	}

	check := func(name string, want map[string]string, min float64) {
		t.Helper()
		if v, n := sumSeries(ms, name, want); n == 0 || v < min {
			t.Errorf("%s%v = %v over %d series, want >= %v; have:\n%s", name, want, v, n, min, seriesOf(ms, name))
		}
	}
	// API latency by route pattern, method and status (ids never labels).
	check("tpp_http_request_duration_seconds_count", map[string]string{"route": "/v1/consents/:id/payments", "method": "POST", "status": "201"}, 1)
	check("tpp_http_request_duration_seconds_count", map[string]string{"route": "/v1/consents/:id/accounts", "method": "GET", "status": "200"}, 2)
	check("tpp_http_request_duration_seconds_count", map[string]string{"route": "/v1/consents/:id/funds-confirmations", "method": "POST", "status": "200"}, 1)
	check("tpp_http_request_duration_seconds_bucket", map[string]string{"route": "/v1/consents/:id/payments/:payment_id", "method": "GET", "status": "200", "le": "+Inf"}, 4)
	// Bank calls by endpoint pattern and status.
	check("tpp_bank_requests_total", map[string]string{"endpoint": "POST /user/{id}/monetary-account/{id}/draft-payment", "status": "200"}, 1)
	check("tpp_bank_requests_total", map[string]string{"endpoint": "POST /session-server", "status": "200"}, 1)
	check("tpp_bank_request_duration_seconds_count", map[string]string{"endpoint": "GET /user/{id}/monetary-account/{id}/draft-payment/{id}"}, 4)
	for _, s := range ms["tpp_bank_requests_total"] {
		if ep := s.labels["endpoint"]; strings.ContainsAny(strings.ReplaceAll(ep, "v1", ""), "0123456789") {
			t.Errorf("bank endpoint label holds an id: %q", ep)
		}
	}
	// The 4th GET of the payment waited for the rate budget.
	check("tpp_bank_budget_waits_total", map[string]string{"endpoint": "GET /user/{id}/monetary-account/{id}/draft-payment/{id}"}, 1)
	check("tpp_bank_budget_wait_seconds_count", map[string]string{"endpoint": "GET /user/{id}/monetary-account/{id}/draft-payment/{id}"}, 1)
	check("tpp_bank_session_renewals_total", nil, 1)
	check("tpp_bank_context_rebuilds_total", map[string]string{"result": "ok"}, 1)
	check("tpp_webhook_deliveries_total", map[string]string{"type": "consent.updated", "result": "ok"}, 1)
	check("tpp_webhook_deliveries_total", map[string]string{"type": "payment.updated", "result": "ok"}, 1)
	check("tpp_webhook_delivery_duration_seconds_count", map[string]string{"type": "payment.updated"}, 1)
	check("tpp_consents", map[string]string{"status": "active"}, 1)
	// The generated test certificate is valid for a while yet.
	check("tpp_certificate_expiry_days", nil, 1)
	if v, _ := sumSeries(ms, "tpp_certificate_expiry_days", nil); v > 3*366 {
		t.Errorf("tpp_certificate_expiry_days = %v: not days", v)
	}
	// Standard process and Go metrics are there for dashboards.
	check("go_goroutines", nil, 1)
	check("process_start_time_seconds", nil, 1)
}

// seriesOf lists name's samples, for failure messages.
func seriesOf(ms map[string][]sample, name string) string {
	var b strings.Builder
	for _, s := range ms[name] {
		fmt.Fprintf(&b, "  %v %v\n", s.labels, s.value)
	}
	return b.String()
}

// TestE2EOpsConfigErrors checks that bad settings stop 'tpp serve' at once
// with an error naming the setting, before it listens or touches data.
func TestE2EOpsConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"bank scheme", []string{"--bank", "ftp://x"}, []string{"--bank", "$TPP_BUNQ_ENV", `"ftp://x"`}},
		{"bank URL without OAuth URLs", []string{"--bank", "http://127.0.0.1:1"}, []string{"--bank-oauth-url", "--bank-token-url"}},
		{"poll interval", []string{"--poll-interval", "soon"}, []string{"--poll-interval", "$TPP_POLL_INTERVAL", "soon"}},
		{"log level", []string{"--log-level", "loud"}, []string{"--log-level", "loud"}},
		{"public URL", []string{"--public-url", "ftp://tpp.example"}, []string{"--public-url"}},
		{"two Redis modes", []string{"--redis-url", "redis://127.0.0.1:1/0", "--redis-cluster", "127.0.0.1:2"}, []string{"--redis-url", "--redis-cluster"}},
		{"two errors at once", []string{"--bank", "ftp://x", "--log-format", "xml"}, []string{"--bank", "--log-format"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			args := append([]string{"serve", "--listen", "127.0.0.1:0", "--metrics-listen", "", "--db", filepath.Join(dir, "tpp.db")}, tc.args...)
			var out, errOut bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			err := run(ctx, args, &out, &errOut)
			if err == nil {
				t.Fatalf("tpp %v started", args)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("the error took %s: not fast", d)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			if entries, _ := filepath.Glob(filepath.Join(dir, "*")); len(entries) > 0 {
				t.Errorf("a refused configuration left files behind: %v", entries)
			}
		})
	}

	// A configuration that passes validation prints itself (stderr) before
	// anything can fail, with the master key and the Redis password masked.
	t.Run("effective configuration masks secrets", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		key := hex.EncodeToString(randomBytes(t, 32))
		old := hex.EncodeToString(randomBytes(t, 32))
		pw := "pw-" + hex.EncodeToString(randomBytes(t, 8))
		closed := freeTCPPort(t) // nothing listens there: Redis is down
		var out, errOut bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		err := run(ctx, []string{"serve", "--bank", "http://127.0.0.1:1", "--bank-oauth-url", "http://127.0.0.1:1/auth",
			"--bank-token-url", "http://127.0.0.1:1/token", "--listen", "127.0.0.1:0", "--metrics-listen", "",
			"--db", filepath.Join(dir, "tpp.db"), "--master-key", "k2:" + key + ",k1:" + old,
			"--redis-url", "redis://:" + pw + "@127.0.0.1:" + strconv.Itoa(closed) + "/0"}, &out, &errOut)
		if err == nil {
			t.Fatal("tpp serve started without Redis and without a registration")
		}
		stderr := errOut.String()
		if !strings.Contains(stderr, "effective configuration:") || !regexp.MustCompile(`(?m)^\s+master-key\s+k2:\*\*\*\*,k1:\*\*\*\*$`).MatchString(stderr) {
			t.Errorf("stderr does not show the master key masked:\n%s", stderr)
		}
		if !strings.Contains(stderr, "redis://:****@127.0.0.1:"+strconv.Itoa(closed)+"/0") {
			t.Errorf("stderr does not show the Redis URL with its password masked:\n%s", stderr)
		}
		for _, secret := range []string{key, old, pw} {
			if strings.Contains(stderr, secret) || strings.Contains(out.String(), secret) || strings.Contains(err.Error(), secret) {
				t.Errorf("a secret is printed (stderr, stdout or the error %q)", err)
			}
		}
	})
}

// TestE2EOpsConfigFromEnv is the environment-variable form of a bad
// setting. It cannot run in parallel: the environment is the process's.
func TestE2EOpsConfigFromEnv(t *testing.T) {
	t.Setenv("TPP_BUNQ_ENV", "ftp://x")
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"serve", "--listen", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "tpp.db")}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "--bank ($TPP_BUNQ_ENV)") || !strings.Contains(err.Error(), "ftp://x") {
		t.Fatalf("TPP_BUNQ_ENV=ftp://x: run() = %v", err)
	}
	if errors.Is(err, errUsage) {
		t.Fatalf("a bad setting is reported as a usage error: %v", err)
	}
}
