package psd2

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
)

// gatedBudget admits one caller per release, recording their shares.
type gatedBudget struct {
	gate  chan struct{}
	mu    sync.Mutex
	order []string
}

func (g *gatedBudget) Wait(ctx context.Context, _ string, _ int, _ time.Duration) error {
	g.mu.Lock()
	g.order = append(g.order, ctx.Value(shareKey{}).(string))
	g.mu.Unlock()
	select {
	case <-g.gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type shareKey struct{}

func withShare(ctx context.Context, s string) context.Context {
	return context.WithValue(ctx, shareKey{}, s)
}

func shareOf(ctx context.Context) string { s, _ := ctx.Value(shareKey{}).(string); return s }

// queued counts callers waiting for a turn on key.
func (b *FairBudget) queued(key string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	if l := b.lines[key]; l != nil {
		for _, q := range l.waiting {
			n += len(q)
		}
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5 s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A quiet share's call is admitted right after the one in progress and
// the noisy share's next, not after the noisy share's whole queue.
func TestFairBudgetRoundRobin(t *testing.T) {
	t.Parallel()
	g := &gatedBudget{gate: make(chan struct{})}
	b := NewFairBudget(g, shareOf)
	ctx := context.Background()
	var wg sync.WaitGroup
	call := func(share string) {
		wg.Go(func() {
			if err := b.Wait(withShare(ctx, share), "k", 5, time.Second); err != nil {
				t.Error(err)
			}
		})
	}
	call("noisy")
	waitFor(t, "the first call waits on the budget", func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.order) == 1 })
	for i := range 9 {
		call("noisy")
		waitFor(t, "noisy calls queue", func() bool { return b.queued("k") == i+1 })
	}
	call("quiet")
	waitFor(t, "the quiet call queues", func() bool { return b.queued("k") == 10 })
	for range 11 {
		g.gate <- struct{}{}
	}
	wg.Wait()
	if len(g.order) != 11 {
		t.Fatalf("%d admissions, want 11", len(g.order))
	}
	// The first noisy call was admitted outside the line; the line then
	// serves its shares in turn: noisy, quiet, noisy, ...
	pos := -1
	for i, s := range g.order {
		if s == "quiet" {
			pos = i
		}
	}
	if pos != 2 {
		t.Fatalf("quiet admitted as number %d of %v, want 3rd", pos+1, g.order)
	}
	if b.queued("k") != 0 || len(b.lines) != 0 {
		t.Fatal("the line was not freed")
	}
}

// A caller whose deadline comes before its turn gets bank_busy at once
// with the estimated wait; a cancelled caller leaves the line.
func TestFairBudgetBankBusyAndCancel(t *testing.T) {
	t.Parallel()
	g := &gatedBudget{gate: make(chan struct{})}
	b := NewFairBudget(g, shareOf)
	ctx := context.Background()
	done := make(chan error, 1)
	go func() { done <- b.Wait(withShare(ctx, "a"), "k", 1, time.Hour) }()
	waitFor(t, "the first call waits on the budget", func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.order) == 1 })

	short, cancel := context.WithTimeout(withShare(ctx, "b"), time.Minute)
	defer cancel()
	start := time.Now()
	err := b.Wait(short, "k", 1, time.Hour)
	var te *tpp.Error
	if !errors.As(err, &te) || te.Code != tpp.EBankBusy || te.RetryAfter != time.Hour {
		t.Fatalf("Wait with a deadline before its turn = %v, want bank_busy with RetryAfter 1h", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("bank_busy was not answered at once")
	}

	cctx, ccancel := context.WithCancel(withShare(ctx, "c"))
	cdone := make(chan error, 1)
	go func() { cdone <- b.Wait(cctx, "k", 1, time.Hour) }()
	waitFor(t, "c queues", func() bool { return b.queued("k") == 1 })
	ccancel()
	if err := <-cdone; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Wait = %v", err)
	}
	if b.queued("k") != 0 {
		t.Fatal("a cancelled caller stayed in line")
	}
	g.gate <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(b.lines) != 0 {
		t.Fatal("the line was not freed")
	}
}

// BenchmarkFairShare is the load test of the shared bank budget: a quiet
// share's calls while a noisy share keeps 30 calls waiting on one key (as
// 30 parallel single payments on the TPP's installation), under bunq's
// POST limit scaled to 5 per 50 ms. It reports the quiet share's p99 wait
// alone, with the noisy share on the plain budget, and with FairBudget:
//
//	go test -run '^$' -bench FairShare ./psd2/
//
// It checks only that every call is admitted; the figures are for people.
func BenchmarkFairShare(b *testing.B) {
	const limit, window, noisyCallers = 5, 50 * time.Millisecond, 30
	for _, sc := range []struct {
		name  string
		noisy bool
		fair  bool
	}{{"alone", false, false}, {"noisy", true, false}, {"noisy-fair", true, true}} {
		b.Run(sc.name, func(b *testing.B) {
			var budget Budget = NewMemoryBudget(nil)
			if sc.fair {
				budget = NewFairBudget(budget, shareOf)
			}
			ctx, stop := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			if sc.noisy {
				for range noisyCallers {
					wg.Go(func() {
						for ctx.Err() == nil {
							if err := budget.Wait(withShare(ctx, "noisy"), "tpp POST /payment", limit, window); err != nil && ctx.Err() == nil {
								b.Error(err)
							}
						}
					})
				}
				time.Sleep(2 * window) // let the noisy queue build up
			}
			waits := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				if err := budget.Wait(withShare(context.Background(), "quiet"), "tpp POST /payment", limit, window); err != nil {
					b.Fatal(err)
				}
				waits = append(waits, time.Since(start))
			}
			b.StopTimer()
			stop()
			wg.Wait()
			slices.Sort(waits)
			p99 := waits[min(len(waits)-1, len(waits)*99/100)]
			b.ReportMetric(float64(p99)/float64(time.Millisecond), "quiet-p99-ms")
		})
	}
}

// WithBudgetShare wins over shareOf: the caller queues under its share.
func TestFairBudgetExplicitShare(t *testing.T) {
	t.Parallel()
	g := &gatedBudget{gate: make(chan struct{})}
	b := NewFairBudget(g, shareOf)
	ctx := context.Background()
	done := make(chan error, 2)
	go func() { done <- b.Wait(withShare(ctx, "first"), "k", 1, time.Second) }()
	waitFor(t, "the first call waits on the budget", func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.order) == 1 })
	go func() { done <- b.Wait(WithBudgetShare(withShare(ctx, "from-request"), "cli_1"), "k", 1, time.Second) }()
	waitFor(t, "the second call queues", func() bool { return b.queued("k") == 1 })
	b.mu.Lock()
	_, named := b.lines["k"].waiting["cli_1"]
	b.mu.Unlock()
	if !named {
		t.Error("the call did not queue under the share its context names")
	}
	for range 2 {
		g.gate <- struct{}{}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
