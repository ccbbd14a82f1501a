package metrics

import (
	"context"
	"net/http"
	"time"
)

// Budget is the rate budget of package psd2 (psd2.Budget).
type Budget interface {
	Wait(ctx context.Context, key string, limit int, window time.Duration) error
}

// minBudgetWait separates waiting from bookkeeping: psd2.MemoryBudget
// admits in microseconds and never waits less than a millisecond.
const minBudgetWait = time.Millisecond

// WrapBudget returns b recording waits like ObserveBudgetWait, for budgets
// without an OnWait hook (psd2.MemoryBudget). Calls that return within a
// millisecond count as not having waited. Do not wrap a redis.RateBudget
// whose OnWait is wired too: its waits would count twice.
func (m *Metrics) WrapBudget(b Budget) Budget { return &budget{m: m, b: b} }

type budget struct {
	m *Metrics
	b Budget
}

func (w *budget) Wait(ctx context.Context, key string, limit int, window time.Duration) error {
	start := time.Now()
	err := w.b.Wait(ctx, key, limit, window)
	if d := time.Since(start); d >= minBudgetWait {
		w.m.ObserveBudgetWait(key, d)
	}
	return err
}

// BankTransport returns an http.RoundTripper that records each request
// through base (http.DefaultTransport when nil) like ObserveBankCall. Use
// it for bank calls made outside package psd2 (the OAuth token exchange);
// psd2's own calls are already reported through its OnCall hook.
func (m *Metrics) BankTransport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{m: m, base: base}
}

type transport struct {
	m    *Metrics
	base http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(req)
	status := 0
	if err == nil {
		status = resp.StatusCode
	}
	t.m.ObserveBankCall(req.Method, req.URL.Path, status, time.Since(start))
	return resp, err
}
