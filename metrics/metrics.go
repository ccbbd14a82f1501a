// Package metrics exposes the service's Prometheus metrics: API request
// latency, bank calls, rate-budget waits, session renewals and context
// rebuilds, webhook deliveries, consents by status and certificate expiry.
//
// Each Metrics owns its registry (never the global default one), so tests
// and several instances in one process do not collide. Other packages do
// not import this one: they expose hook funcs (api.Observer, psd2.Options
// OnCall, redis.RateBudget OnWait, webhook.Options OnResult, bankctx.Config
// OnRebuild), and cmd/tpp connects them to the methods here.
//
// Label values are kept bounded: paths are folded to patterns, ids never
// become labels, and every free-form label has a cap beyond which values
// are reported as "other". A scrape therefore stays small whatever the
// number of users.
package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bunqtpp/tpp"
)

// Label values used when a value is unknown or over its cap.
const (
	Other   = "other"
	NoReply = "error" // status label of a bank call that got no HTTP answer
)

// maxEndpoints caps the distinct endpoint label values. bunq's API has a few
// dozen endpoints we call; the cap only bites if folding misses an id.
const maxEndpoints = 256

// Buckets for the histograms, in seconds.
var (
	httpBuckets   = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	bankBuckets   = []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	budgetBuckets = []float64{.01, .05, .1, .25, .5, 1, 2, 3, 5, 10, 30}
)

// httpMethods are the request methods reported as themselves; any other
// (a client can send anything) is reported as "other".
var httpMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

// webhookTypes are the event types that become label values.
var webhookTypes = map[string]bool{tpp.EventConsentUpdated: true, tpp.EventConsentExpiring: true, tpp.EventPaymentUpdated: true}

// Option configures New.
type Option func(*Metrics)

// WithClock sets the clock that certificate expiry is measured against
// (tpp.SystemClock by default).
func WithClock(c tpp.Clock) Option {
	return func(m *Metrics) {
		if c != nil {
			m.clock = c
		}
	}
}

// Metrics holds the service's collectors and their registry. All methods
// are safe for concurrent use.
type Metrics struct {
	reg   *prometheus.Registry
	clock tpp.Clock

	httpDuration  *prometheus.HistogramVec
	bankRequests  *prometheus.CounterVec
	bankDuration  *prometheus.HistogramVec
	budgetWait    *prometheus.HistogramVec
	budgetWaits   *prometheus.CounterVec
	renewals      prometheus.Counter
	unknownStatus *prometheus.CounterVec
	rebuilds      *prometheus.CounterVec
	webhookTotal  *prometheus.CounterVec
	webhookDur    *prometheus.HistogramVec
	endpoints     *boundedSet
	certificate   *expiryCollector
	refusals      prometheus.Counter
	pollRounds    prometheus.Counter
}

// New returns Metrics with a fresh registry holding the Go runtime and
// process collectors and the service's own metrics.
func New(opts ...Option) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), clock: tpp.SystemClock{}, endpoints: newBoundedSet(maxEndpoints)}
	for _, o := range opts {
		o(m)
	}
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tpp_http_request_duration_seconds",
		Help:    "Time to answer fintech API requests, by route pattern, method and status.",
		Buckets: httpBuckets,
	}, []string{"route", "method", "status"})
	m.bankRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tpp_bank_requests_total",
		Help: `HTTP attempts to the bank, by endpoint (method and path pattern) and status ("error" when no answer came).`,
	}, []string{"endpoint", "status"})
	m.bankDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tpp_bank_request_duration_seconds",
		Help:    "Latency of HTTP attempts to the bank, by endpoint.",
		Buckets: bankBuckets,
	}, []string{"endpoint"})
	m.budgetWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tpp_bank_budget_wait_seconds",
		Help:    "Time bank calls waited for the bank's rate limit, by endpoint, for calls that had to wait.",
		Buckets: budgetBuckets,
	}, []string{"endpoint"})
	m.budgetWaits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tpp_bank_budget_waits_total",
		Help: "Bank calls that had to wait for the bank's rate limit, by endpoint.",
	}, []string{"endpoint"})
	m.renewals = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tpp_bank_session_renewals_total",
		Help: "bunq sessions renewed.",
	})
	m.refusals = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tpp_bank_credentials_refused_total",
		Help: `Sessions bunq refused with "User credentials are incorrect. Incorrect API key or IP address.": the egress IP changed or is not permitted. Alert on any increase.`,
	})
	m.rebuilds = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tpp_bank_context_rebuilds_total",
		Help: "Per-consent bunq contexts rebuilt from the sealed access token, by result (ok, error).",
	}, []string{"result"})
	m.unknownStatus = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tpp_bank_unknown_status_total",
		Help: "Bank draft payment statuses the TPP does not know (the payment stays pending; alert on any), by payment kind.",
	}, []string{"kind"})
	m.pollRounds = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tpp_payment_poll_rounds_total",
		Help: "Payment poll rounds this replica ran. Across replicas the sum grows by one per poll interval (one replica polls each round); alert when it stops growing.",
	})
	m.webhookTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tpp_webhook_deliveries_total",
		Help: "Webhook delivery attempts, by event type and result (ok, failed).",
	}, []string{"type", "result"})
	m.webhookDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tpp_webhook_delivery_duration_seconds",
		Help:    "Duration of webhook delivery attempts, by event type.",
		Buckets: httpBuckets,
	}, []string{"type"})
	m.certificate = &expiryCollector{clock: m.clock, desc: prometheus.NewDesc(
		"tpp_certificate_expiry_days",
		"Days until the TPP's eIDAS certificate expires (negative once expired); absent until set.",
		nil, nil)}

	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.httpDuration, m.bankRequests, m.bankDuration, m.budgetWait, m.budgetWaits,
		m.renewals, m.refusals, m.rebuilds, m.webhookTotal, m.webhookDur, m.certificate, m.unknownStatus,
		m.pollRounds,
	)
	for _, k := range []string{"draft", "single"} {
		m.unknownStatus.WithLabelValues(k)
	}
	// Series known in advance start at zero, so rate() and alerts work
	// before the first event.
	for _, r := range []string{"ok", "error"} {
		m.rebuilds.WithLabelValues(r)
	}
	for typ := range webhookTypes {
		for _, r := range []string{"ok", "failed"} {
			m.webhookTotal.WithLabelValues(typ, r)
		}
	}
	return m
}

// Registry returns the registry, for adding collectors of other packages.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition format. Serve it
// on a private listener, not the public API. A failing collector (the
// consent count when SQLite is down) is left out of the scrape and counted
// in promhttp_metric_handler_errors_total; the rest is still served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:      m.reg,
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// ObserveHTTP records one finished API request. route is the router's
// pattern (gin's FullPath), never the raw path, so ids stay out of labels.
func (m *Metrics) ObserveHTTP(route, method string, status int, d time.Duration) {
	if !httpMethods[method] {
		method = Other
	}
	if route == "" {
		route = "unmatched"
	}
	m.httpDuration.WithLabelValues(route, method, strconv.Itoa(status)).Observe(d.Seconds())
}

// APIObserver returns a hook with the signature of api.Observer, to pass as
// api.Options.Observe. api.Observer carries no method: a route of the form
// "GET /v1/x" is split into method and route, any other route is recorded
// with method "any".
func (m *Metrics) APIObserver() func(route string, status int, d time.Duration) {
	return func(route string, status int, d time.Duration) {
		method := "any"
		if mth, rest, ok := strings.Cut(route, " "); ok && httpMethods[mth] {
			method, route = mth, rest
		}
		if route == "" {
			route = "unmatched"
		}
		m.httpDuration.WithLabelValues(route, method, strconv.Itoa(status)).Observe(d.Seconds())
	}
}

// ObserveBankCall records one HTTP attempt to the bank. path may hold ids
// (they are folded to {id}); status 0 means no answer came. Wire it as
//
//	psd2.Options{OnCall: func(ci psd2.CallInfo) { m.ObserveBankCall(ci.Method, ci.Path, ci.Status, ci.Duration) }}
func (m *Metrics) ObserveBankCall(method, path string, status int, d time.Duration) {
	ep := m.endpoint(method, path)
	st := NoReply
	if status > 0 {
		st = strconv.Itoa(status)
	}
	m.bankRequests.WithLabelValues(ep, st).Inc()
	m.bankDuration.WithLabelValues(ep).Observe(d.Seconds())
}

// ObserveBudgetWait records a bank call that waited d for the rate budget.
// key is the budget key; psd2 uses "<installation> <METHOD> <path pattern>",
// of which only the endpoint becomes a label. It has the signature of
// redis.RateBudget's OnWait.
func (m *Metrics) ObserveBudgetWait(key string, d time.Duration) {
	ep := m.budgetEndpoint(key)
	m.budgetWaits.WithLabelValues(ep).Inc()
	m.budgetWait.WithLabelValues(ep).Observe(d.Seconds())
}

// UnknownBankStatus counts a draft status the TPP does not know, for a
// payment of kind (draft or single). It has the signature of
// pisp.Config's OnUnknownStatus.
func (m *Metrics) UnknownBankStatus(kind string) {
	if kind != "draft" && kind != "single" {
		kind = Other
	}
	m.unknownStatus.WithLabelValues(kind).Inc()
}

// PollRound counts one payment poll round this replica ran. It has the
// signature of pisp.Config's OnPollRound.
func (m *Metrics) PollRound() { m.pollRounds.Inc() }

// SessionRenewed counts one renewed bunq session (call it from
// psd2.Options.OnRenew, next to persisting the session).
func (m *Metrics) SessionRenewed() { m.renewals.Inc() }

// CredentialsRefused counts a session bunq refused for the device's
// credentials (bankctx.ErrCredentialsRefused).
func (m *Metrics) CredentialsRefused() { m.refusals.Inc() }

// ContextRebuilt counts one context rebuild, failed when err is not nil.
func (m *Metrics) ContextRebuilt(err error) {
	r := "ok"
	if err != nil {
		r = "error"
	}
	m.rebuilds.WithLabelValues(r).Inc()
}

// OnContextRebuild returns a hook with the signature of bankctx.Config's
// OnRebuild (called after each successful rebuild). The consent id is
// ignored: ids never become labels.
func (m *Metrics) OnContextRebuild() func(consentID string) {
	return func(string) { m.ContextRebuilt(nil) }
}

// ObserveWebhook records one webhook delivery attempt. It has the
// signature of webhook.Options' OnResult.
func (m *Metrics) ObserveWebhook(eventType string, ok bool, d time.Duration) {
	if !webhookTypes[eventType] {
		eventType = Other
	}
	r := "failed"
	if ok {
		r = "ok"
	}
	m.webhookTotal.WithLabelValues(eventType, r).Inc()
	m.webhookDur.WithLabelValues(eventType).Observe(d.Seconds())
}

// SetCertificateExpiry sets the certificate's NotAfter; the gauge
// tpp_certificate_expiry_days is computed from it at each scrape.
func (m *Metrics) SetCertificateExpiry(notAfter time.Time) { m.certificate.set(notAfter) }

// endpoint names a bank endpoint as "METHOD /path/{id}/pattern", bounded.
func (m *Metrics) endpoint(method, path string) string {
	if !httpMethods[method] {
		method = Other
	}
	return m.endpoints.admit(method + " " + PathPattern(path))
}

// budgetEndpoint drops the installation part of a psd2 budget key and folds
// what is left like a path.
func (m *Metrics) budgetEndpoint(key string) string {
	if _, rest, ok := strings.Cut(key, " "); ok {
		if method, path, ok := strings.Cut(rest, " "); ok {
			return m.endpoint(method, path)
		}
	}
	return m.endpoints.admit(PathPattern(key))
}

// PathPattern folds the id-like segments of a URL path to {id}: segments
// holding a digit (numeric ids, UUIDs, hex fingerprints) except versions
// like "v1", and segments longer than 40 bytes.
// A query or fragment is dropped.
func PathPattern(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if s == "" || s == "{id}" {
			continue
		}
		if len(s) > 40 || strings.ContainsAny(s, "0123456789") && !isVersion(s) {
			segs[i] = "{id}"
		}
	}
	return strings.Join(segs, "/")
}

// isVersion reports whether s is an API version segment such as "v1".
func isVersion(s string) bool {
	return len(s) > 1 && s[0] == 'v' && strings.Trim(s[1:], "0123456789") == ""
}

// boundedSet hands out label values, up to max distinct ones; later new
// values become Other. It bounds series even if folding misses an id.
type boundedSet struct {
	max  int
	mu   sync.Mutex
	seen map[string]struct{}
}

func newBoundedSet(max int) *boundedSet {
	return &boundedSet{max: max, seen: map[string]struct{}{}}
}

func (b *boundedSet) admit(v string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.seen[v]; ok {
		return v
	}
	if len(b.seen) >= b.max {
		return Other
	}
	b.seen[v] = struct{}{}
	return v
}

// expiryCollector reports days until notAfter, computed at scrape time so
// the value moves without anyone updating it.
type expiryCollector struct {
	clock tpp.Clock
	desc  *prometheus.Desc

	mu       sync.Mutex
	notAfter time.Time
}

func (c *expiryCollector) set(t time.Time) {
	c.mu.Lock()
	c.notAfter = t
	c.mu.Unlock()
}

func (c *expiryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *expiryCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	na := c.notAfter
	c.mu.Unlock()
	if na.IsZero() {
		return
	}
	days := na.Sub(c.clock.Now()).Hours() / 24
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, days)
}
