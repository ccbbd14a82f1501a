package loadtest

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync/atomic"
)

// Measure authorizes o.Consents consents at target through the consent
// flow and measures the uncached read through the fintech API (each client
// its own consents, Cache-Control: no-cache, so every read reaches the
// bank) for o.Duration after o.Warmup. 'tpp bench --replicas' compares it
// across deployments.
func Measure(ctx context.Context, o BenchOptions, target Target) (*Result, error) {
	b := newBench(ctx, o, target, io.Discard)
	defer b.close()
	if err := b.authorize(ctx); err != nil {
		return nil, err
	}
	return Run(ctx, Options{Concurrency: o.Concurrency, Warmup: o.Warmup, Duration: o.Duration}, b.tppOp(true, b.consentFor))
}

// RoundRobin is a reverse proxy that sends each request to the next of
// its targets in turn, keeping the public Host header as a load balancer
// does. Set changes the targets, so one public address can front several
// deployments one after the other.
type RoundRobin struct {
	proxy   *httputil.ReverseProxy
	next    atomic.Uint64
	targets atomic.Pointer[[]*url.URL]
}

// NewRoundRobin returns a proxy without targets that keeps conns idle
// connections per target.
func NewRoundRobin(conns int) *RoundRobin {
	rr := &RoundRobin{}
	rr.proxy = &httputil.ReverseProxy{
		ErrorLog:  log.New(io.Discard, "", 0),
		Transport: PooledTransport(conns),
		Rewrite: func(pr *httputil.ProxyRequest) {
			t := *rr.targets.Load()
			pr.SetURL(t[(rr.next.Add(1)-1)%uint64(len(t))])
			pr.Out.Host = pr.In.Host
		},
	}
	return rr
}

// Set replaces the targets.
func (rr *RoundRobin) Set(targets []*url.URL) { rr.targets.Store(&targets) }

func (rr *RoundRobin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if t := rr.targets.Load(); t == nil || len(*t) == 0 {
		http.Error(w, "no replica", http.StatusBadGateway)
		return
	}
	rr.proxy.ServeHTTP(w, r)
}

// ReplicaRow is one deployment's figures in a scale comparison.
type ReplicaRow struct {
	Store    string // "SQLite" or "PostgreSQL"
	Replicas int
	Res      *Result
}

// PrintReplicaTable prints the rows: throughput and latency per
// deployment, with the throughput relative to the first row.
func PrintReplicaTable(w io.Writer, rows []ReplicaRow) {
	const f = "%-11s %8s %9s %9s %10s %10s %10s %7s %9s\n"
	io.WriteString(w, "\n")
	fmtRow(w, f, "store", "replicas", "requests", "req/s", "p50", "p90", "p99", "errors", "vs first")
	for _, r := range rows {
		rel := 0.0
		if base := rows[0].Res.Throughput(); base > 0 {
			rel = r.Res.Throughput() / base
		}
		fmtRow(w, f, r.Store, itoa(r.Replicas), itoa(r.Res.Requests), ftoa(r.Res.Throughput(), 1),
			Ms(r.Res.Percentile(0.5)), Ms(r.Res.Percentile(0.9)), Ms(r.Res.Percentile(0.99)), itoa(r.Res.Errors), ftoa(rel, 2)+"x")
	}
}

func fmtRow(w io.Writer, f string, cols ...any) { fmt.Fprintf(w, f, cols...) }

func itoa(n int) string { return strconv.Itoa(n) }

func ftoa(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }
