package main

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bunqtpp/tpp/internal/pgtest"
	"github.com/bunqtpp/tpp/internal/redistest"
	"github.com/bunqtpp/tpp/internal/testenv"
)

// benchLine is one row of the bench's table.
type benchLine struct {
	requests      int
	rps           float64
	p50, p90, p99 float64 // ms
	errors        int
	callsPerReq   float64
	heapMiB       float64
}

var (
	benchRowRe  = regexp.MustCompile(`(?m)^(TPP uncached|TPP coalesced|TPP cached|direct budgeted|direct)\s+(\d+)\s+([\d.]+)\s+([\d.]+)ms\s+([\d.]+)ms\s+([\d.]+)ms\s+(\d+)\s+([\d.]+)\s+(?:[\d.]+ms|-)\s+(?:[\d.]+|-)\s+([\d.]+)MiB$`)
	benchTputRe = regexp.MustCompile(`(?m)^throughput ratio: TPP uncached / direct = ([\d.]+) at ([\d.]+) bank calls per request \(goal >= 0\.80\) (PASS|MISS)$`)
	benchP99Re  = regexp.MustCompile(`(?m)^added p99: TPP uncached p99 - direct p99 = (-?[\d.]+)ms vs direct p99 ([\d.]+)ms = (-?[\d.]+)x \(goal < 2\.00x\) (PASS|MISS)$`)
	benchHeapRe = regexp.MustCompile(`(?m)^peak heap: ([\d.]+)MiB`)
	benchCutRe  = regexp.MustCompile(`(?m)^phase (TPP uncached|TPP coalesced|TPP cached|direct budgeted|direct)(?: \d+/\d+)?\s+(\d+) requests, \d+ errors, (\d+) under way`)
)

func parseBench(t *testing.T, out string) map[string]benchLine {
	t.Helper()
	rows := map[string]benchLine{}
	f := func(s string) float64 {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("number %q: %v", s, err)
		}
		return v
	}
	for _, m := range benchRowRe.FindAllStringSubmatch(out, -1) {
		rows[m[1]] = benchLine{
			requests: int(f(m[2])), rps: f(m[3]), p50: f(m[4]), p90: f(m[5]), p99: f(m[6]),
			errors: int(f(m[7])), callsPerReq: f(m[8]), heapMiB: f(m[9]),
		}
	}
	return rows
}

// runBenchSmoke runs a tiny bench and checks that its figures are sane.
func runBenchSmoke(t *testing.T, extra ...string) string {
	t.Helper()
	args := append([]string{"bench", "--consents", "4", "--concurrency", "4", "--duration", "2s", "--warmup", "0s"}, extra...)
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	err := run(ctx, args, &out, &errOut)
	t.Logf("tpp %s: %s\n%s", strings.Join(args[1:], " "), time.Since(start).Round(time.Millisecond), out.String())
	if err != nil {
		t.Fatalf("bench: %v\nstderr:\n%s", err, errOut.String())
	}
	s := out.String()
	rows := parseBench(t, s)
	for _, name := range []string{"TPP uncached", "TPP coalesced", "TPP cached", "direct", "direct budgeted"} {
		r, ok := rows[name]
		if !ok {
			t.Fatalf("no %q row in the table", name)
		}
		if r.errors != 0 || r.requests == 0 {
			t.Errorf("%s: %d requests, %d errors", name, r.requests, r.errors)
		}
		if !(r.p50 > 0 && r.p50 <= r.p90 && r.p90 <= r.p99) {
			t.Errorf("%s: percentiles p50 %v p90 %v p99 %v out of order", name, r.p50, r.p90, r.p99)
		}
		// req/s is requests over the 2 s window.
		if want := float64(r.requests) / 2; r.rps < want*0.8 || r.rps > want*1.05 {
			t.Errorf("%s: %v req/s for %d requests in 2 s", name, r.rps, r.requests)
		}
		if r.heapMiB <= 0 {
			t.Errorf("%s: peak heap %v", name, r.heapMiB)
		}
	}
	// Every direct read is one bank call, and so is every uncached read
	// through the TPP: no two clients read one consent at once, so none
	// shares a bank call. Coalesced reads may share one; cached reads
	// hardly reach the bank. Requests under way when a window closes have
	// made their bank call but are not counted: that much more is allowed.
	counted, cut := map[string]float64{}, map[string]float64{}
	for _, m := range benchCutRe.FindAllStringSubmatch(s, -1) {
		n, _ := strconv.ParseFloat(m[2], 64)
		u, _ := strconv.ParseFloat(m[3], 64)
		counted[m[1]] += n
		cut[m[1]] += u
	}
	for _, name := range []string{"direct", "TPP uncached"} {
		if counted[name] == 0 {
			t.Fatalf("no phase lines for %s", name)
		}
		most := 1.05 + cut[name]/counted[name]
		if c := rows[name].callsPerReq; c < 0.95 || c > most {
			t.Errorf("%s: %v bank calls per request, want 1 (at most %.2f with %v requests under way)", name, c, most, cut[name])
		}
	}
	if c := rows["TPP coalesced"].callsPerReq; c <= 0 || c > 1.2 {
		t.Errorf("TPP coalesced: %v bank calls per request", c)
	}
	if c := rows["TPP cached"].callsPerReq; c > 0.2 {
		t.Errorf("TPP cached: %v bank calls per request", c)
	}

	m := benchTputRe.FindStringSubmatch(s)
	if m == nil {
		t.Fatal("no throughput ratio line")
	}
	ratio, _ := strconv.ParseFloat(m[1], 64)
	if want := rows["TPP uncached"].rps / rows["direct"].rps; ratio < want-0.011 || ratio > want+0.011 {
		t.Errorf("throughput ratio %v, table says %v", ratio, want)
	}
	if calls, _ := strconv.ParseFloat(m[2], 64); calls != rows["TPP uncached"].callsPerReq {
		t.Errorf("throughput ratio at %v bank calls per request, table says %v", calls, rows["TPP uncached"].callsPerReq)
	}
	if (m[3] == "PASS") != (ratio >= 0.8) {
		t.Errorf("throughput ratio %v marked %s", ratio, m[3])
	}
	m = benchP99Re.FindStringSubmatch(s)
	if m == nil {
		t.Fatal("no added p99 line")
	}
	x, _ := strconv.ParseFloat(m[3], 64)
	if (m[4] == "PASS") != (x < 2) {
		t.Errorf("added p99 %vx marked %s", x, m[4])
	}
	if m := benchHeapRe.FindStringSubmatch(s); m == nil || m[1] == "0.0" {
		t.Errorf("peak heap line: %v", m)
	}
	return s
}

func TestBenchSmoke(t *testing.T) {
	testenv.Heavy(t) // a bench run takes ~15 s
	t.Parallel()
	// Fixed ports, as an operator would give them.
	bankPort, tppPort := demoPorts(t, 3), demoPorts(t, 1)
	out := runBenchSmoke(t, "--emulated-addr", "127.0.0.1:"+strconv.Itoa(bankPort), "--listen", "127.0.0.1:"+strconv.Itoa(tppPort))
	if !strings.Contains(out, "redis: embedded") {
		t.Error("the output does not say the embedded Redis was used")
	}
	if !strings.Contains(out, "127.0.0.1:"+strconv.Itoa(bankPort)) {
		t.Errorf("the bank is not on --emulated-addr %d:\n%s", bankPort, out)
	}
}

// TestBenchSmokeRealRedis reads accounts and transactions through a real
// redis-server.
func TestBenchSmokeRealRedis(t *testing.T) {
	testenv.Heavy(t) // a bench run takes ~15 s
	t.Parallel()
	rs := redistest.Start(t)
	out := runBenchSmoke(t, "--redis-url", rs.URL, "--op", "mixed")
	if !strings.Contains(out, "redis: redis-server at "+rs.URL) {
		t.Error("the output does not say which Redis was used")
	}
	if !strings.Contains(out, "plus the redis-server's CPU") {
		t.Error("the output does not count the local redis-server's CPU")
	}
}

func TestBenchFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--consents", "0"},
		{"--consents", "1025"},
		{"--consents", "8", "--concurrency", "9"},
		{"--concurrency", "0"},
		{"--duration", "0s"},
		{"--duration", "11m"},
		{"--warmup", "-1s"},
		{"--rounds", "0"},
		{"--rounds", "21"},
		{"--duration", "1s", "--rounds", "20"},
		{"--op", "payments"},
		{"--redis-url", "http://127.0.0.1:6379"},
		{"--listen", "nowhere"},
		{"--emulated-addr", "127.0.0.1"},
		{"--emulated-addr", "127.0.0.1:65534"},
		{"--bogus"},
		{"extra"},
		{"--replicas", "2"},
		{"--replicas", "2", "--redis-url", "redis://127.0.0.1:6379"},
		{"--replicas", "2", "--db-url", "data/tpp.db", "--redis-url", "redis://127.0.0.1:6379"},
		{"--replicas", "2", "--db-url", "postgres://127.0.0.1/x"},
		{"--replicas", "9", "--db-url", "postgres://127.0.0.1/x", "--redis-url", "redis://127.0.0.1:6379"},
		{"--replicas", "-1"},
		{"--db-url", "postgres://127.0.0.1/x"},
	} {
		var errOut bytes.Buffer
		if err := run(context.Background(), append([]string{"bench"}, args...), io.Discard, &errOut); err == nil {
			t.Errorf("bench %v: accepted", args)
		}
	}
	var errOut bytes.Buffer
	if err := run(context.Background(), []string{"bench", "-h"}, io.Discard, &errOut); err != nil || !strings.Contains(errOut.String(), "-consents") ||
		!strings.Contains(errOut.String(), "-listen") || !strings.Contains(errOut.String(), "-emulated-addr") || !strings.Contains(errOut.String(), "-replicas") {
		t.Errorf("bench -h: %v\n%s", err, errOut.String())
	}
}

// TestBenchReplicas runs the replica comparison on one PostgreSQL and one
// redis-server: a SQLite row, then one and two replicas, none failing.
func TestBenchReplicas(t *testing.T) {
	testenv.Heavy(t) // three deployments take ~30 s
	t.Parallel()
	pgURL := pgtest.URL(t)
	rs := redistest.Start(t)
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	args := []string{"bench", "--replicas", "2", "--db-url", pgURL, "--redis-url", rs.URL,
		"--consents", "4", "--concurrency", "4", "--duration", "2s", "--warmup", "0s"}
	if err := run(ctx, args, &out, &errOut); err != nil {
		t.Fatalf("bench --replicas: %v\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	t.Log(out.String())
	row := regexp.MustCompile(`(?m)^(SQLite|PostgreSQL)\s+(\d)\s+(\d+)\s+([\d.]+)\s+[\d.]+ms\s+[\d.]+ms\s+([\d.]+)ms\s+0\s+[\d.]+x$`)
	var got []string
	for _, m := range row.FindAllStringSubmatch(out.String(), -1) {
		if m[3] == "0" {
			t.Errorf("%s with %s replicas: no requests", m[1], m[2])
		}
		got = append(got, m[1]+" "+m[2])
	}
	if strings.Join(got, ", ") != "SQLite 1, PostgreSQL 1, PostgreSQL 2" {
		t.Errorf("rows %v, want SQLite 1, PostgreSQL 1, PostgreSQL 2:\n%s", got, out.String())
	}
}
