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
// targets in turn, keeping the public Host header as a load balancer does.
func RoundRobin(targets []*url.URL, conns int) http.Handler {
	var next atomic.Uint64
	return &httputil.ReverseProxy{
		ErrorLog:  log.New(io.Discard, "", 0),
		Transport: PooledTransport(conns),
		Rewrite: func(pr *httputil.ProxyRequest) {
			i := (next.Add(1) - 1) % uint64(len(targets))
			pr.SetURL(targets[i])
			pr.Out.Host = pr.In.Host
		},
		FlushInterval: -1,
	}
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
