package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	t.Parallel()
	r := &Result{}
	for i := 1; i <= 100; i++ {
		r.Latencies = append(r.Latencies, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.9, 90 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}, {0.001, time.Millisecond}} {
		if got := r.Percentile(c.q); got != c.want {
			t.Errorf("Percentile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if got := (&Result{}).Percentile(0.5); got != 0 {
		t.Errorf("empty Percentile = %v", got)
	}
	one := &Result{Latencies: []time.Duration{7}}
	if one.Percentile(0.99) != 7 || one.Percentile(0.01) != 7 {
		t.Error("a single latency is every percentile")
	}
}

func TestThroughput(t *testing.T) {
	t.Parallel()
	r := &Result{Requests: 300, Elapsed: 2 * time.Second}
	if got := r.Throughput(); got != 150 {
		t.Fatalf("Throughput = %v", got)
	}
	if (&Result{Requests: 3}).Throughput() != 0 {
		t.Fatal("no window, no throughput")
	}
}

// TestRun drives a real HTTP server that fails every 10th request and
// checks counts, error samples, the measure hooks and the window.
func TestRun(t *testing.T) {
	t.Parallel()
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if served.Add(1)%10 == 0 {
			http.Error(w, "nope", http.StatusServiceUnavailable)
			return
		}
		time.Sleep(time.Millisecond)
	}))
	defer srv.Close()

	var hooks []bool
	var atStart, atEnd int64
	res, err := Run(context.Background(), Options{
		Concurrency: 4, Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond,
		OnMeasure: func(start bool) {
			hooks = append(hooks, start)
			if start {
				atStart = served.Load()
			} else {
				atEnd = served.Load()
			}
		},
	}, func(ctx context.Context, worker, n int) error {
		if worker < 0 || worker >= 4 || n < 0 {
			return fmt.Errorf("worker %d request %d", worker, n)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		if err != nil {
			return err
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(hooks, []bool{true, false}) {
		t.Fatalf("OnMeasure calls %v, want start then end", hooks)
	}
	if res.Elapsed < 300*time.Millisecond || res.Elapsed > 2*time.Second {
		t.Fatalf("window %v", res.Elapsed)
	}
	// Warmup requests are not counted: the window saw about what the
	// server served between the hooks (give or take those in flight).
	inWindow := int(atEnd - atStart)
	if res.Requests < 20 || res.Requests > inWindow+4 || res.Requests < inWindow-4-res.Cut {
		t.Fatalf("requests %d, served in the window %d, cut %d", res.Requests, inWindow, res.Cut)
	}
	if res.Errors == 0 || res.Errors > res.Requests/5 {
		t.Fatalf("errors %d of %d, want about a tenth", res.Errors, res.Requests)
	}
	if len(res.Latencies) != res.Requests-res.Errors || !slices.IsSorted(res.Latencies) {
		t.Fatalf("%d latencies (sorted %v) for %d successes", len(res.Latencies), slices.IsSorted(res.Latencies), res.Requests-res.Errors)
	}
	if res.Percentile(0.5) < time.Millisecond {
		t.Fatalf("p50 %v is below the server's 1 ms", res.Percentile(0.5))
	}
	if len(res.ErrorSamples) != 1 || res.ErrorSamples[0] != "status 503" {
		t.Fatalf("error samples %q, want one distinct", res.ErrorSamples)
	}
}

func TestRunStopsWithContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := Run(ctx, Options{Concurrency: 2, Warmup: 10 * time.Millisecond, Duration: time.Minute},
		func(ctx context.Context, _, _ int) error {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Millisecond):
				return nil
			}
		})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the context's", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("did not stop with its context")
	}
	if res == nil || res.Requests == 0 || res.Errors != 0 {
		t.Fatalf("partial result %+v", res)
	}
}

func TestRunRejectsBadOptions(t *testing.T) {
	t.Parallel()
	op := func(context.Context, int, int) error { return nil }
	for _, o := range []Options{{Concurrency: 0, Duration: time.Second}, {Concurrency: 1}, {Concurrency: 1, Duration: time.Second, Warmup: -1}} {
		if _, err := Run(context.Background(), o, op); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
}

func TestProcessCPU(t *testing.T) {
	before, ok := ProcessCPU()
	if !ok {
		t.Skip("no CPU accounting on this platform")
	}
	// Burn CPU until the counter moves: on a busy machine this thread may
	// get little of it, so only a counter that never moves fails.
	start := time.Now()
	x := 0
	for time.Since(start) < 10*time.Second {
		for i := range 100000 {
			x += i
		}
		if after, _ := ProcessCPU(); after-before >= 20*time.Millisecond {
			return
		}
	}
	after, _ := ProcessCPU()
	t.Fatalf("CPU counter grew by only %v in 10 s of spinning (%d)", after-before, x)
}

func TestMerge(t *testing.T) {
	t.Parallel()
	a := &Result{Requests: 3, Errors: 1, Cut: 2, Elapsed: time.Second, Latencies: []time.Duration{1, 5}, ErrorSamples: []string{"x"}}
	b := &Result{Requests: 5, Cut: 1, Elapsed: 3 * time.Second, Latencies: []time.Duration{2, 3, 4, 9, 10}, ErrorSamples: []string{"x", "y"}}
	m := Merge(a, nil, b)
	if m.Requests != 8 || m.Errors != 1 || m.Cut != 3 || m.Elapsed != 4*time.Second {
		t.Fatalf("merged counts %+v", m)
	}
	if !slices.Equal(m.Latencies, []time.Duration{1, 2, 3, 4, 5, 9, 10}) {
		t.Fatalf("merged latencies %v, want both pooled and sorted", m.Latencies)
	}
	if !slices.Equal(m.ErrorSamples, []string{"x", "y"}) {
		t.Fatalf("merged samples %v", m.ErrorSamples)
	}
	if m.Throughput() != 2 {
		t.Fatalf("merged throughput %v, want 8 requests over 4 s", m.Throughput())
	}
	// The inputs are left alone.
	if !slices.Equal(a.Latencies, []time.Duration{1, 5}) || len(b.Latencies) != 5 {
		t.Fatal("Merge changed its inputs")
	}
}
