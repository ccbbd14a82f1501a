package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bunqtpp/tpp"
)

// UserAgent is sent with every delivery.
const UserAgent = "bunq-tpp-webhooks/1"

// DefaultBackoff returns the wait after the 1st, 2nd, ... failed attempt.
// It is the root package's schedule (tpp.WebhookRetryDelay: the Standard
// Webhooks reference, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, about 28 h
// in all), so the dispatcher agrees on when to give up with stores that
// schedule retries themselves.
func DefaultBackoff() []time.Duration {
	var out []time.Duration
	for n := 1; n <= 100; n++ {
		d, ok := tpp.WebhookRetryDelay(n)
		if !ok {
			break
		}
		out = append(out, d)
	}
	return out
}

// Defaults of Options.
const (
	DefaultTimeout       = 10 * time.Second
	DefaultPollInterval  = time.Second
	DefaultConcurrency   = 8
	DefaultShutdownGrace = 15 * time.Second
	// maxRetryAfter caps a receiver's Retry-After so a bad header cannot
	// park a delivery for years.
	maxRetryAfter = 24 * time.Hour
	// maxErrorLen caps the stored last error.
	maxErrorLen = 500
	// storeTimeout bounds recording an outcome, which must happen even
	// when Run's context has ended.
	storeTimeout = 10 * time.Second
)

// Options configure a Dispatcher. The zero value is usable.
type Options struct {
	// Clock stamps webhook-timestamp, leases and retry times. Nil: wall clock.
	Clock tpp.Clock
	// Timeout bounds one attempt: connect, send and response headers.
	Timeout time.Duration
	// PollInterval is how often the outbox is checked when Notify is not called.
	PollInterval time.Duration
	// Lease is how long a claimed delivery stays reserved for this worker.
	// It must exceed Timeout; default Timeout + 1 min. An attempt that has
	// not finished by then may be sent again by another worker (the
	// receiver deduplicates by webhook-id).
	Lease time.Duration
	// Concurrency is the most attempts in flight at once.
	Concurrency int
	// ShutdownGrace is how long Run waits for in-flight attempts after its
	// context ends before it aborts them.
	ShutdownGrace time.Duration
	// Backoff is the wait after each failed attempt (index 0 after the
	// first). Nil: DefaultBackoff().
	Backoff []time.Duration
	// MaxAttempts is when to give up; default len(Backoff)+1. Attempts past
	// the end of Backoff wait its last entry (the cap).
	MaxAttempts int
	// Jitter spreads a backoff delay so that receivers that failed together
	// are not retried together. Nil: ±10 % uniform. Called concurrently.
	Jitter func(time.Duration) time.Duration
	// DenyPrivateNetworks refuses to connect to loopback, private,
	// link-local and other non-public addresses (after DNS resolution), and
	// ignores proxy settings, which would bypass the check. It guards a
	// hosted TPP against fintechs pointing webhooks at internal services
	// (SSRF). Off by default because the demo and tests deliver to
	// localhost; turn it on in production.
	DenyPrivateNetworks bool
	// Transport, when set, is cloned for the dispatcher's HTTP client (for
	// custom TLS roots, say). Redirects are never followed regardless.
	Transport *http.Transport
	// OnResult, when set, is called after every attempt (not for attempts
	// aborted by shutdown), for metrics. Called concurrently.
	OnResult func(eventType string, ok bool, d time.Duration)
	// Logger receives one line per failed attempt and per delivery. Nil:
	// discard. URLs and secrets are never logged.
	Logger *slog.Logger
}

// Dispatcher delivers outbox events to fintech webhooks.
//
// Guarantees: at least once. A delivery is claimed under a lease, so two
// dispatchers (in one process or on several replicas sharing the store) do
// not send it at the same time; an event is sent again only when an
// attempt failed, or when an attempt outlived its lease or its worker died.
// In those rare cases the same webhook-id arrives twice, so receivers must
// deduplicate on webhook-id, as Standard Webhooks asks.
type Dispatcher struct {
	store   Store
	opts    Options
	clock   tpp.Clock
	client  *http.Client
	log     *slog.Logger
	notify  chan struct{}
	running atomic.Bool
}

// NewDispatcher checks opts, fills in defaults and returns a dispatcher.
// Nothing runs until Run.
func NewDispatcher(store Store, opts Options) (*Dispatcher, error) {
	if store == nil {
		return nil, errors.New("webhook: nil store")
	}
	if opts.Clock == nil {
		opts.Clock = tpp.SystemClock{}
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.Lease == 0 {
		opts.Lease = opts.Timeout + time.Minute
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.ShutdownGrace == 0 {
		opts.ShutdownGrace = DefaultShutdownGrace
	}
	if opts.Backoff == nil {
		opts.Backoff = DefaultBackoff()
	}
	opts.Backoff = slices.Clone(opts.Backoff) // the caller's slice may change later
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = len(opts.Backoff) + 1
	}
	if opts.Jitter == nil {
		opts.Jitter = defaultJitter
	}
	switch {
	case opts.Timeout < 0 || opts.PollInterval < 0 || opts.ShutdownGrace < 0:
		return nil, errors.New("webhook: negative Timeout, PollInterval or ShutdownGrace")
	case opts.Lease <= opts.Timeout:
		return nil, fmt.Errorf("webhook: Lease %v must exceed Timeout %v", opts.Lease, opts.Timeout)
	case opts.Concurrency < 0:
		return nil, errors.New("webhook: negative Concurrency")
	case len(opts.Backoff) == 0:
		return nil, errors.New("webhook: empty Backoff schedule")
	case opts.MaxAttempts < 1:
		return nil, errors.New("webhook: MaxAttempts must be at least 1")
	}
	for _, b := range opts.Backoff {
		if b <= 0 {
			return nil, errors.New("webhook: Backoff entries must be positive")
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Dispatcher{
		store:  store,
		opts:   opts,
		clock:  opts.Clock,
		client: newHTTPClient(opts),
		log:    log,
		notify: make(chan struct{}, 1),
	}, nil
}

func newHTTPClient(opts Options) *http.Client {
	var tr *http.Transport
	if opts.Transport != nil {
		tr = opts.Transport.Clone()
	} else {
		tr = http.DefaultTransport.(*http.Transport).Clone()
	}
	if opts.DenyPrivateNetworks {
		tr.Proxy = nil
		tr.DialContext = guardedDialer(&net.Dialer{Timeout: opts.Timeout, KeepAlive: 30 * time.Second})
	}
	return &http.Client{
		Transport: tr,
		// A 3xx is a failure: following it would let a receiver bounce
		// our signed POST to an address of its choosing.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// defaultJitter returns d moved uniformly by up to ±10 %.
func defaultJitter(d time.Duration) time.Duration {
	spread := int64(d) / 10
	if spread <= 0 {
		return d
	}
	return d + time.Duration(rand.Int64N(2*spread+1)-spread)
}

// Notify wakes Run to look for due deliveries now rather than at the next
// poll. Call it after committing new events. It never blocks.
func (d *Dispatcher) Notify() {
	select {
	case d.notify <- struct{}{}:
	default: // a wake-up is already pending; one is enough
	}
}

// Run delivers until ctx ends, then stops claiming, waits up to
// ShutdownGrace for attempts in flight, aborts the rest, and returns nil.
// An aborted attempt is not recorded; its lease expires and it is claimed
// again, by this process after a restart or by another replica. Store
// errors are logged and retried at the next poll, never returned.
func (d *Dispatcher) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return errors.New("webhook: dispatcher is already running")
	}
	defer d.running.Store(false)

	// In-flight attempts run under their own context so that the end of
	// ctx does not cut them off before the grace period.
	sendCtx, abort := context.WithCancel(context.WithoutCancel(ctx))
	defer abort()
	slots := make(chan struct{}, d.opts.Concurrency)
	freed := make(chan struct{}, 1)
	var wg sync.WaitGroup
	// Go 1.23+ timers: Reset and Stop leave no stale tick behind.
	poll := time.NewTimer(d.opts.PollInterval)
	defer poll.Stop()

	for {
		more := false
		if free := cap(slots) - len(slots); free > 0 && ctx.Err() == nil {
			now := d.clock.Now()
			batch, err := d.store.ClaimDue(ctx, now, now.Add(d.opts.Lease), free)
			if err != nil && ctx.Err() == nil {
				d.log.Error("webhook: claim due deliveries", "err", err)
			}
			for _, del := range batch {
				slots <- struct{}{}
				wg.Go(func() {
					defer func() {
						<-slots
						select {
						case freed <- struct{}{}:
						default:
						}
					}()
					d.deliver(sendCtx, del)
				})
			}
			// A full batch means more may be due: claim again as soon
			// as a slot frees instead of waiting for the poll.
			more = err == nil && len(batch) == free
		}
		if more && len(slots) < cap(slots) {
			continue
		}
		poll.Reset(d.opts.PollInterval)
		var wake <-chan struct{}
		if more {
			wake = freed
		}
		select {
		case <-ctx.Done():
			d.drain(&wg, abort)
			return nil
		case <-d.notify:
		case <-poll.C:
		case <-wake:
		}
		poll.Stop()
	}
}

// drain waits for in-flight attempts, aborting them after the grace period.
func (d *Dispatcher) drain(wg *sync.WaitGroup, abort context.CancelFunc) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	grace := time.NewTimer(d.opts.ShutdownGrace)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
		d.log.Warn("webhook: shutdown grace elapsed; aborting deliveries in flight")
		abort()
		<-done
	}
}

// deliver makes one attempt and records its outcome.
func (d *Dispatcher) deliver(ctx context.Context, del Delivery) {
	start := time.Now()
	res := d.attempt(ctx, del)
	if !res.ok && ctx.Err() != nil {
		// Aborted by shutdown: leave it to the lease.
		d.log.Info("webhook: attempt aborted by shutdown", "event_id", del.EventID, "attempt", del.Attempt)
		return
	}
	if d.opts.OnResult != nil {
		d.opts.OnResult(del.Type, res.ok, time.Since(start))
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	now := d.clock.Now()
	if res.ok {
		if err := d.store.MarkDelivered(sctx, del, now); err != nil {
			// The receiver has it; at worst it gets it again after the lease.
			d.log.Error("webhook: record delivery", "event_id", del.EventID, "err", err)
			return
		}
		d.log.Debug("webhook: delivered", "event_id", del.EventID, "type", del.Type, "attempt", del.Attempt)
		return
	}
	f := Failure{At: now, Error: truncate(res.err)}
	if del.Attempt < d.opts.MaxAttempts {
		wait := d.opts.Jitter(d.backoff(del.Attempt))
		if res.retryAfter > wait {
			wait = res.retryAfter
		}
		f.NextAttempt = now.Add(wait)
	}
	if err := d.store.MarkFailed(sctx, del, f); err != nil {
		if errors.Is(err, ErrLeaseLost) {
			d.log.Warn("webhook: lease lost before recording failure", "event_id", del.EventID, "attempt", del.Attempt)
			return
		}
		d.log.Error("webhook: record failure", "event_id", del.EventID, "err", err)
		return
	}
	if f.NextAttempt.IsZero() {
		d.log.Error("webhook: giving up", "event_id", del.EventID, "client_id", del.ClientID,
			"type", del.Type, "attempts", del.Attempt, "last_error", f.Error)
		return
	}
	d.log.Warn("webhook: attempt failed", "event_id", del.EventID, "client_id", del.ClientID,
		"attempt", del.Attempt, "error", f.Error, "next_attempt", f.NextAttempt)
}

// backoff is the wait after failed attempt number attempt (1-based),
// capped at the schedule's last entry.
func (d *Dispatcher) backoff(attempt int) time.Duration {
	i := min(max(attempt-1, 0), len(d.opts.Backoff)-1)
	return d.opts.Backoff[i]
}

type result struct {
	ok         bool
	err        string
	retryAfter time.Duration
}

func (d *Dispatcher) attempt(ctx context.Context, del Delivery) result {
	if del.URL == "" {
		return result{err: "client has no webhook URL"}
	}
	u, err := url.Parse(del.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return result{err: "webhook URL is not an absolute http(s) URL without user info"}
	}
	secrets, err := d.store.Secrets(ctx, del.ClientID)
	if err != nil {
		return result{err: "load signing secret: " + err.Error()}
	}
	ts := d.clock.Now()
	sig, err := SignatureHeader(secrets, del.EventID, ts, del.Payload)
	if err != nil {
		return result{err: "sign: " + err.Error()}
	}
	actx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, u.String(), bytes.NewReader(del.Payload))
	if err != nil {
		return result{err: "build request failed"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(HeaderID, del.EventID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)
	resp, err := d.client.Do(req)
	if err != nil {
		if actx.Err() != nil && ctx.Err() == nil {
			return result{err: fmt.Sprintf("timeout after %v", d.opts.Timeout)}
		}
		return result{err: describe(err)}
	}
	// Drain a little so the connection can be reused; the body is not
	// ours to keep.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return result{ok: true}
	}
	return result{
		err:        "HTTP " + resp.Status,
		retryAfter: retryAfter(resp.Header.Get("Retry-After"), d.clock.Now()),
	}
}

// describe turns a client error into text without the URL, whose query
// may carry a fintech's token.
func describe(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// retryAfter parses a Retry-After header (seconds or an HTTP date).
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

func truncate(s string) string {
	if len(s) <= maxErrorLen {
		return s
	}
	return s[:maxErrorLen] + "…"
}
