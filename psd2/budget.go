package psd2

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/bunqtpp/tpp"
)

// Budget admits calls within bunq's rate limits. Wait blocks until one more call under key fits in
// limit calls per window, or returns ctx.Err(). It never fails for being over the limit: it waits.
type Budget interface {
	Wait(ctx context.Context, key string, limit int, window time.Duration) error
}

// MemoryBudget is a Budget for one process: a sliding window per key. Each
// key keeps at most limit timestamps, and keys idle for longer than their
// window are dropped, so memory stays bounded by the keys in recent use.
type MemoryBudget struct {
	clock tpp.Clock

	mu        sync.Mutex
	keys      map[string]*slidingWindow
	lastSweep time.Time
}

type slidingWindow struct {
	window time.Duration
	times  []time.Time // admission times, oldest first; len <= limit
}

// sweepEvery bounds how often idle keys are dropped.
const sweepEvery = time.Minute

// NewMemoryBudget returns an in-memory Budget that reads time from clock
// (tpp.SystemClock{} when nil). It sleeps on real timers for the time the
// clock says is missing, so a test clock must be advanced by the test.
func NewMemoryBudget(clock tpp.Clock) *MemoryBudget {
	if clock == nil {
		clock = tpp.SystemClock{}
	}
	return &MemoryBudget{clock: clock, keys: map[string]*slidingWindow{}}
}

// Wait implements Budget.
func (b *MemoryBudget) Wait(ctx context.Context, key string, limit int, window time.Duration) error {
	if limit <= 0 || window <= 0 {
		return ctx.Err()
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		wait := b.admit(key, limit, window)
		if wait <= 0 {
			return nil
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return &BudgetDelayError{Wait: wait} // waiting would be in vain
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// admit records a call and returns 0, or returns how long to wait before
// the oldest call in the window leaves it.
func (b *MemoryBudget) admit(key string, limit int, window time.Duration) time.Duration {
	now := b.clock.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.Sub(b.lastSweep) >= sweepEvery {
		b.sweep(now)
	}
	w := b.keys[key]
	if w == nil {
		w = &slidingWindow{window: window}
		b.keys[key] = w
	}
	w.window = window
	// Drop admissions that left the window.
	i := 0
	for i < len(w.times) && !w.times[i].After(now.Add(-window)) {
		i++
	}
	w.times = w.times[i:]
	if len(w.times) < limit {
		w.times = append(w.times, now)
		return 0
	}
	wait := w.times[len(w.times)-limit].Add(window).Sub(now)
	if wait <= 0 {
		wait = time.Millisecond
	}
	return wait
}

func (b *MemoryBudget) sweep(now time.Time) {
	b.lastSweep = now
	for k, w := range b.keys {
		if len(w.times) == 0 || !w.times[len(w.times)-1].After(now.Add(-w.window)) {
			delete(b.keys, k)
		}
	}
}

// Len reports how many keys the budget currently tracks (for tests and metrics).
func (b *MemoryBudget) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.keys)
}

// BudgetDelayError is a budget that would admit the call only after Wait,
// later than the caller's deadline: returned at once instead of waiting in
// vain. errors.Is(err, context.DeadlineExceeded) holds.
type BudgetDelayError struct{ Wait time.Duration }

func (e *BudgetDelayError) Error() string {
	return fmt.Sprintf("psd2: the rate budget admits the call in %v, after the deadline", e.Wait)
}

func (e *BudgetDelayError) Unwrap() error { return context.DeadlineExceeded }
