// Package loadtest drives a closed-loop load (a fixed number of workers, each
// sending its next request when the last one answered) for a bounded time,
// and summarizes it: request and error counts, throughput and latency
// percentiles (Run, which knows nothing about what the requests are).
//
// On top of it, Bench and Measure are what 'tpp bench' measures against a
// TPP and the emulated bank the caller started: consents authorized
// through the consent flow (internal/flowdriver), the fintech API's reads
// next to direct signed bank calls, with bank calls, CPU and heap per
// request.
package loadtest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Options shape one run.
type Options struct {
	// Concurrency is the number of workers (at least 1).
	Concurrency int
	// Warmup runs the load without recording it, so connection set-up,
	// cold caches and lazily built state do not count.
	Warmup time.Duration
	// Duration is how long the load is measured after the warmup (> 0).
	Duration time.Duration
	// OnMeasure, when set, is called when the measured window opens and
	// again when it closes (start = true, then false), e.g. to read the
	// bank's request counters or start a profile.
	OnMeasure func(start bool)
	// Now tells the time; time.Now when nil.
	Now func() time.Time
}

// Op is one request. worker is in [0, Concurrency) and n counts the
// worker's requests from 0, so workers can spread over targets
// deterministically. A non-nil error counts the request as failed.
type Op func(ctx context.Context, worker, n int) error

// Result summarizes the measured window of a run.
type Result struct {
	Requests int // requests that completed in the window, failed ones included
	Errors   int // failed requests
	// Cut counts requests that were under way when the window closed:
	// neither their latency nor their outcome is in the figures, so many
	// of them against few Requests mean the latencies are biased low.
	Cut     int
	Elapsed time.Duration // length of the measured window
	// Latencies of the successful requests, sorted ascending.
	Latencies []time.Duration
	// ErrorSamples holds the first few distinct error texts.
	ErrorSamples []string
}

// maxErrorSamples bounds Result.ErrorSamples.
const maxErrorSamples = 5

// Throughput is completed requests per second over the window.
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Percentile returns the q-quantile (0 < q <= 1) of the successful
// requests' latencies by the nearest-rank method, or 0 without any.
func (r *Result) Percentile(q float64) time.Duration {
	n := len(r.Latencies)
	if n == 0 || q <= 0 {
		return 0
	}
	rank := int(q*float64(n)+0.999999999) - 1 // ceil(q·n) - 1, robust to float noise
	rank = max(0, min(rank, n-1))
	return r.Latencies[rank]
}

// worker's own record, merged at the end so the hot path takes no lock.
type record struct {
	lat     []time.Duration
	reqs    int
	errs    int
	cut     int
	samples []string
}

// Run drives op with opts.Concurrency workers for opts.Warmup plus
// opts.Duration and returns the measured part. It stops early, with what it
// measured so far and ctx's error, when ctx ends. A request counts when it
// completes inside the measured window; those still running when the window
// closes are cancelled and not counted.
func Run(ctx context.Context, opts Options, op Op) (*Result, error) {
	if opts.Concurrency < 1 {
		return nil, fmt.Errorf("loadtest: concurrency %d is below 1", opts.Concurrency)
	}
	if opts.Duration <= 0 || opts.Warmup < 0 {
		return nil, fmt.Errorf("loadtest: duration %s must be positive and warmup %s not negative", opts.Duration, opts.Warmup)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	w := &window{now: now}
	recs := make([]record, opts.Concurrency)
	var wg sync.WaitGroup
	for i := range opts.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.work(runCtx, op, i, &recs[i])
		}()
	}

	var runErr error
	sleep := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			runErr = ctx.Err()
			return false
		case <-t.C:
			return true
		}
	}
	measuring := false
	if sleep(opts.Warmup) {
		w.open()
		measuring = true
		if opts.OnMeasure != nil {
			opts.OnMeasure(true)
		}
		sleep(opts.Duration)
	}
	w.close()
	if measuring && opts.OnMeasure != nil {
		opts.OnMeasure(false)
	}
	cancel()
	wg.Wait()

	parts := make([]*Result, len(recs))
	for i, r := range recs {
		parts[i] = &Result{Requests: r.reqs, Errors: r.errs, Cut: r.cut, Latencies: r.lat, ErrorSamples: r.samples}
	}
	res := Merge(parts...) // the workers' windows are one: set it once
	if measuring {
		ws, we := w.bounds()
		res.Elapsed = we.Sub(ws)
	}
	return res, runErr
}

// window is the measured window's bounds, published under mu; workers
// read them once per request, which is cheap next to any real request.
type window struct {
	now        func() time.Time
	mu         sync.Mutex
	start, end time.Time
}

func (w *window) bounds() (time.Time, time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.start, w.end
}

func (w *window) open() {
	w.mu.Lock()
	w.start = w.now()
	w.mu.Unlock()
}

func (w *window) close() {
	w.mu.Lock()
	w.end = w.now()
	w.mu.Unlock()
}

// work is one worker: it sends requests until ctx ends and records those
// that completed inside the window.
func (w *window) work(ctx context.Context, op Op, worker int, rec *record) {
	for n := 0; ctx.Err() == nil; n++ {
		t0 := w.now()
		err := op(ctx, worker, n)
		t1 := w.now()
		ws, we := w.bounds()
		if ctx.Err() != nil {
			// The run is over (its end or the caller's context):
			// whatever this request saw is not the system's answer.
			if !ws.IsZero() {
				rec.cut++
			}
			continue
		}
		if !ws.IsZero() && !we.IsZero() && t1.After(we) {
			if t0.Before(we) {
				rec.cut++
			}
			continue
		}
		// Count requests that completed inside the window: in a
		// steady state that neither loses nor double-counts any.
		if ws.IsZero() || t1.Before(ws) {
			continue
		}
		rec.reqs++
		if err != nil {
			rec.errs++
			if len(rec.samples) < maxErrorSamples {
				rec.samples = append(rec.samples, err.Error())
			}
			continue
		}
		rec.lat = append(rec.lat, t1.Sub(t0))
	}
}

// Merge sums results of runs of the same load (rounds of one phase) into
// one: counts and windows add up, latencies pool.
func Merge(rs ...*Result) *Result {
	out := &Result{}
	seen := map[string]bool{}
	for _, r := range rs {
		if r == nil {
			continue
		}
		out.Requests += r.Requests
		out.Errors += r.Errors
		out.Cut += r.Cut
		out.Elapsed += r.Elapsed
		out.Latencies = append(out.Latencies, r.Latencies...)
		for _, s := range r.ErrorSamples {
			if !seen[s] && len(out.ErrorSamples) < maxErrorSamples {
				seen[s] = true
				out.ErrorSamples = append(out.ErrorSamples, s)
			}
		}
	}
	slices.Sort(out.Latencies)
	return out
}
