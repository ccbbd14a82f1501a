// Package health answers liveness (/healthz) and readiness (/readyz)
// probes.
//
// /healthz says only that the process serves HTTP. /readyz runs every check
// (SQLite, Redis, the bank, the TPP's registration) concurrently under one
// timeout and answers 200 when all pass, 503 otherwise, with a result per
// check. Probes from many load balancers at once share one run and reuse
// its result for up to a second, so a probe storm never becomes a storm on
// the dependencies.
//
// Error texts in the body are redacted (URLs through logging.RedactURL,
// capped in length): the endpoints are public and errors from dependencies
// may carry URLs with credentials.
package health

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/logging"
)

// Defaults for Options.
const (
	DefaultTimeout = 2 * time.Second
	DefaultMaxAge  = time.Second
)

// Body status values.
const (
	StatusOK      = "ok"      // /healthz, and a check that passed
	StatusError   = "error"   // a check that failed
	StatusReady   = "ready"   // /readyz: every check passed
	StatusUnready = "unready" // /readyz: a check failed
)

// maxErrorLen caps an error text in the body.
const maxErrorLen = 300

// Check is one readiness check. Fn returns nil when the dependency works;
// it should honour ctx, but a check that does not is abandoned at the
// timeout all the same.
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
	// Optional checks are reported but do not make the service unready:
	// for a dependency whose outage should not take every replica out of
	// rotation at once (the bank, say), while the failure stays visible.
	Optional bool
}

// Options configure a Checker. The zero value gives the defaults.
type Options struct {
	// Timeout bounds one run of all checks (DefaultTimeout when <= 0).
	Timeout time.Duration
	// MaxAge is how long a run's result answers later probes
	// (DefaultMaxAge when 0; negative: never reused, only shared by
	// probes that arrive while it runs).
	MaxAge time.Duration
	// Clock tells the age of a result (tpp.SystemClock when nil).
	Clock tpp.Clock
	// Version is the build's version, shown by /healthz (omitted when empty).
	Version string
}

// Result is one check's outcome.
type Result struct {
	Status     string  `json:"status"`
	DurationMS float64 `json:"duration_ms"`
	Error      string  `json:"error,omitempty"`
}

// Report is the readiness body. Reports are shared between probes: treat
// them as read-only.
type Report struct {
	Status string            `json:"status"`
	Checks map[string]Result `json:"checks"`
}

// Ready reports whether every check passed.
func (r Report) Ready() bool { return r.Status == StatusReady }

// Checker runs the readiness checks. It is safe for concurrent use.
type Checker struct {
	checks  []Check
	timeout time.Duration
	maxAge  time.Duration
	clock   tpp.Clock
	version string

	mu     sync.Mutex
	last   *Report
	lastAt time.Time
	flight *flight // the run in progress, if any
}

type flight struct {
	done chan struct{}
	rep  Report
}

// New returns a Checker with default options.
func New(checks ...Check) *Checker { return NewWithOptions(Options{}, checks...) }

// NewWithOptions returns a Checker. Check names must be non-empty and
// unique and every Fn set: New panics otherwise, since that is a wiring
// mistake to catch at start-up.
func NewWithOptions(o Options, checks ...Check) *Checker {
	seen := map[string]bool{}
	for _, c := range checks {
		if c.Name == "" || c.Fn == nil || seen[c.Name] {
			panic(fmt.Sprintf("health: check %q: names must be non-empty and unique, and Fn set", c.Name))
		}
		seen[c.Name] = true
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxAge == 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.Clock == nil {
		o.Clock = tpp.SystemClock{}
	}
	return &Checker{checks: append([]Check(nil), checks...), timeout: o.Timeout, maxAge: o.MaxAge, clock: o.Clock, version: o.Version}
}

// Check returns the readiness report: the last one if it is younger than
// MaxAge, else the one of the run in progress, else a new run's. The run
// does not depend on ctx (other probes share it); ctx only bounds how long
// this caller waits.
func (c *Checker) Check(ctx context.Context) Report {
	c.mu.Lock()
	if c.last != nil && c.clock.Now().Sub(c.lastAt) < c.maxAge {
		rep := *c.last
		c.mu.Unlock()
		return rep
	}
	f := c.flight
	if f == nil {
		f = &flight{done: make(chan struct{})}
		c.flight = f
		go c.run(f)
	}
	c.mu.Unlock()
	select {
	case <-f.done:
		return f.rep
	case <-ctx.Done():
		return Report{Status: StatusUnready, Checks: map[string]Result{}}
	}
}

func (c *Checker) run(f *flight) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	type outcome struct {
		i   int
		res Result
	}
	results := make(chan outcome, len(c.checks)) // buffered: abandoned checks do not block
	for i, chk := range c.checks {
		go func() {
			start := time.Now()
			err := safeRun(ctx, chk.Fn)
			results <- outcome{i, result(err, time.Since(start))}
		}()
	}
	rep := Report{Status: StatusReady, Checks: make(map[string]Result, len(c.checks))}
	start := time.Now()
	pending := len(c.checks)
	for pending > 0 {
		select {
		case o := <-results:
			rep.Checks[c.checks[o.i].Name] = o.res
			pending--
		case <-ctx.Done():
			// Whatever has not answered by now failed.
			for _, chk := range c.checks {
				if _, ok := rep.Checks[chk.Name]; !ok {
					rep.Checks[chk.Name] = Result{Status: StatusError, DurationMS: ms(time.Since(start)),
						Error: fmt.Sprintf("no answer within %s", c.timeout)}
				}
			}
			pending = 0
		}
	}
	for _, chk := range c.checks {
		if !chk.Optional && rep.Checks[chk.Name].Status != StatusOK {
			rep.Status = StatusUnready
		}
	}

	c.mu.Lock()
	c.last, c.lastAt, c.flight = &rep, c.clock.Now(), nil
	c.mu.Unlock()
	f.rep = rep
	close(f.done)
}

// safeRun turns a panicking check into a failed one: a probe must not take
// the process down.
func safeRun(ctx context.Context, fn func(context.Context) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("check panicked: %v", r)
		}
	}()
	return fn(ctx)
}

func result(err error, d time.Duration) Result {
	if err == nil {
		return Result{Status: StatusOK, DurationMS: ms(d)}
	}
	return Result{Status: StatusError, DurationMS: ms(d), Error: Redact(err.Error())}
}

// ms is d in milliseconds with microsecond precision.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// urlPattern finds URLs inside error texts (net/http quotes them).
var urlPattern = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.\-]*://[^\s"'<>]+`)

// Redact makes an error text safe for a public body: URLs lose their
// credentials and secret query values, control characters go, and the
// text is capped at 300 bytes.
func Redact(s string) string {
	s = urlPattern.ReplaceAllStringFunc(s, logging.RedactURL)
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > maxErrorLen {
		cut := maxErrorLen
		for cut > 0 && !utf8Start(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// Register adds GET /healthz and GET /readyz to r.
func (c *Checker) Register(r gin.IRoutes) {
	r.GET("/healthz", gin.WrapH(c.Liveness()))
	r.GET("/readyz", gin.WrapH(c.Readiness()))
}

// Liveness answers 200 {"status":"ok"} while the process serves requests.
func (c *Checker) Liveness() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, struct {
			Status  string `json:"status"`
			Version string `json:"version,omitempty"`
		}{StatusOK, c.version})
	})
}

// Readiness answers 200 with the report when every check passed, 503
// otherwise.
func (c *Checker) Readiness() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rep := c.Check(r.Context())
		status := http.StatusOK
		if !rep.Ready() {
			status = http.StatusServiceUnavailable
		}
		writeJSON(w, status, rep)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only plain strings and numbers are marshalled; unreachable.
		http.Error(w, `{"status":"error"}`, http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
