package loadtest

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strconv"
	"time"
)

// The phases of a run, by the names the report shows.
const (
	phaseUncached   = "TPP uncached"
	phaseCoalesced  = "TPP coalesced"
	phaseCached     = "TPP cached"
	phaseDirect     = "direct"
	phaseBudgeted   = "direct budgeted"
	benchPhaseCount = 5
)

// Bench authorizes o.Consents consents at target through the consent
// flow, then drives the fintech API (uncached, coalesced, cached) and, for
// comparison, direct signed calls to the bank (without and with a rate
// budget) with the same concurrency and duration, and prints a table of
// throughput, latency, bank calls, CPU and memory per request to out,
// judged against the goals. It fails when a request failed.
func Bench(ctx context.Context, o BenchOptions, target Target, out io.Writer) error {
	b := newBench(ctx, o, target, out)
	defer b.close()
	if err := b.prepare(ctx); err != nil {
		return err
	}
	rows, err := b.phases(ctx)
	if err != nil {
		return err
	}
	// The idle baseline is taken last: right after set-up the TPP's key
	// pool is still generating keys.
	b.idleCPU = b.cpu.Idle(ctx, 500*time.Millisecond, time.Second)
	for i := range rows {
		rows[i].cpu = max(0, rows[i].cpu-time.Duration(b.idleCPU*float64(rows[i].res.Elapsed)))
	}
	b.report(rows)
	for _, r := range rows {
		if r.res.Errors > 0 {
			return fmt.Errorf("%d of %d requests of %s failed", r.res.Errors, r.res.Requests, r.name)
		}
	}
	return nil
}

type benchPhase struct {
	name, profile string
	op            Op
}

// phases measures every phase and returns their rows in report order.
func (b *bench) phases(ctx context.Context) ([]benchRow, error) {
	o := b.opt
	uncached := benchPhase{phaseUncached, "uncached", b.tppOp(true, b.consentFor)}
	direct := benchPhase{phaseDirect, "direct", b.directOp(b.direct)}
	others := []benchPhase{
		{phaseCoalesced, "coalesced", b.tppOp(true, b.sharedConsentFor)},
		{phaseCached, "cached", b.tppOp(false, b.consentFor)},
		{phaseBudgeted, "budgeted", b.directOp(b.budgeted)},
	}
	// The goal compares uncached and direct: they alternate in rounds, so
	// that drifting load on the machine (other processes, steal time)
	// weighs on both alike.
	byName := map[string]benchRow{}
	slice := o.Duration / time.Duration(o.Rounds)
	for r := range o.Rounds {
		warmup := o.Warmup
		if r > 0 {
			warmup = o.Warmup / time.Duration(o.Rounds)
		}
		for _, p := range []benchPhase{uncached, direct} {
			label, profile := b.roundNames(p, r)
			row, err := b.phase(ctx, label, p.op, profile, warmup, slice)
			if err != nil {
				return nil, err
			}
			byName[p.name] = byName[p.name].add(row)
		}
	}
	for _, p := range others {
		profile := ""
		if o.CPUProfile != "" {
			profile = o.CPUProfile + "-" + p.profile + ".pprof"
		}
		row, err := b.phase(ctx, p.name, p.op, profile, o.Warmup, o.Duration)
		if err != nil {
			return nil, err
		}
		byName[p.name] = row
	}
	var rows []benchRow
	for _, name := range []string{phaseUncached, phaseCoalesced, phaseCached, phaseDirect, phaseBudgeted} {
		r := byName[name]
		r.name = name
		rows = append(rows, r)
	}
	return rows, nil
}

// roundNames are the label and profile file of round r of a phase.
func (b *bench) roundNames(p benchPhase, r int) (label, profile string) {
	o := b.opt
	label = p.name
	if o.Rounds > 1 {
		label = fmt.Sprintf("%s %d/%d", p.name, r+1, o.Rounds)
	}
	if o.CPUProfile != "" {
		profile = o.CPUProfile + "-" + p.profile + ".pprof"
		if o.Rounds > 1 {
			profile = fmt.Sprintf("%s-%s.%d.pprof", o.CPUProfile, p.profile, r+1)
		}
	}
	return label, profile
}

// benchRow is one phase's figures.
type benchRow struct {
	name      string
	res       *Result
	bankCalls int
	peakHeap  uint64
	allocated uint64        // bytes the process allocated during the window
	cpu       time.Duration // process CPU during the window; 0 if unknown
}

// phase runs one load phase and reads the bank's request count and the
// heap around its measured window; a profile file name records a CPU
// profile of that window.
func (b *bench) phase(ctx context.Context, name string, op Op, profile string, warmup, duration time.Duration) (benchRow, error) {
	row := benchRow{name: name}
	var before int
	var cpuBefore time.Duration
	var allocBefore uint64
	var measureErr error
	var prof *os.File
	heap := StartHeapSampler(100 * time.Millisecond)
	opts := Options{
		Concurrency: b.opt.Concurrency, Warmup: warmup, Duration: duration,
		OnMeasure: func(start bool) {
			n, err := b.bankCalls(ctx)
			if err != nil {
				measureErr = err
				return
			}
			cpu, _ := b.cpu.Now(ctx)
			alloc := AllocatedBytes()
			if start {
				before, cpuBefore, allocBefore = n, cpu, alloc
				heap.Reset()
				if profile != "" {
					prof, measureErr = startProfile(profile)
				}
				return
			}
			if prof != nil {
				pprof.StopCPUProfile()
				if err := prof.Close(); err != nil {
					measureErr = fmt.Errorf("--cpuprofile: %w", err)
				}
			}
			row.bankCalls = n - before
			row.cpu = cpu - cpuBefore
			row.allocated = alloc - allocBefore
		},
	}
	res, err := Run(ctx, opts, op)
	row.peakHeap = heap.Stop()
	if err != nil {
		return row, fmt.Errorf("%s: %w", name, err)
	}
	if measureErr != nil {
		return row, fmt.Errorf("%s: %w", name, measureErr)
	}
	row.res = res
	fmt.Fprintf(b.out, "phase %-20s %7d requests, %d errors, %d under way at the end (not counted)\n", name, res.Requests, res.Errors, res.Cut)
	for _, s := range res.ErrorSamples {
		fmt.Fprintf(b.out, "  error: %s\n", s)
	}
	return row, nil
}

func startProfile(path string) (*os.File, error) {
	f, err := os.Create(path)
	if err == nil {
		if err = pprof.StartCPUProfile(f); err != nil {
			f.Close()
			f = nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return f, nil
}

// report prints the table and the goals.
func (b *bench) report(rows []benchRow) {
	fmt.Fprintln(b.out)
	const row = "%-16s %9s %9s %10s %10s %10s %7s %15s %12s %13s %10s\n"
	fmt.Fprintf(b.out, row, "path", "requests", "req/s", "p50", "p90", "p99", "errors", "bank calls/req", "CPU ms/req", "alloc KiB/req", "peak heap")
	var peak uint64
	byName := map[string]benchRow{}
	for _, r := range rows {
		byName[r.name] = r
		peak = max(peak, r.peakHeap)
		fmt.Fprintf(b.out, row, r.name, strconv.Itoa(r.res.Requests), strconv.FormatFloat(r.res.Throughput(), 'f', 1, 64),
			Ms(r.res.Percentile(0.50)), Ms(r.res.Percentile(0.90)), Ms(r.res.Percentile(0.99)),
			strconv.Itoa(r.res.Errors), strconv.FormatFloat(r.callsPerRequest(), 'f', 2, 64), cpuPerReq(r), allocPerReq(r), mib(r.peakHeap))
	}
	fmt.Fprintln(b.out)
	fmt.Fprintln(b.out, "TPP uncached: Cache-Control: no-cache, each client reading its own consents (one bank call per request);")
	fmt.Fprintf(b.out, "TPP coalesced: the same with %d clients per consent (%d consents), identical concurrent reads sharing a bank call;\n",
		min(coalesceWorkers, b.opt.Concurrency), b.sharedConsents())
	fmt.Fprintln(b.out, "direct: signed psd2 client calls, one API-key context per consent; \"direct\" without a client-side")
	fmt.Fprintln(b.out, "rate budget, like the TPP here (the bank's limits are off, so is the TPP's budget: --bank-rate-budget off);")
	fmt.Fprintln(b.out, "\"direct budgeted\" with the psd2 client's own budget, as a TPP against the real bunq has.")
	uncached, direct := byName[phaseUncached], byName[phaseDirect]
	b.goals(uncached, direct, true)
	b.goals(byName[phaseCoalesced], direct, false)
	b.goals(uncached, byName[phaseBudgeted], false)
	b.ownCPU(uncached, direct)
	fmt.Fprintf(b.out, "CPU ms/req: process CPU over the window per request, less the idle baseline of %.1f%% of a core\n", 100*b.idleCPU)
	switch {
	case b.cpu.WithRedis():
		fmt.Fprintln(b.out, "            plus the redis-server's CPU (INFO cpu: all it served meanwhile, it runs on this machine)")
	case b.opt.RedisURL != "":
		fmt.Fprintln(b.out, "            (this process only: the redis-server's CPU is not in it)")
	}
	fmt.Fprintln(b.out, "alloc KiB/req: heap allocations of the whole process over the window per request")
	fmt.Fprintf(b.out, "peak heap: %s (whole process: bank, TPP, Redis if embedded, and load generators)\n", mib(peak))
}

// ownCPU prints the TPP's own CPU per request. The budget hides what the
// TPP's own work costs; CPU does not. The TPP's own share of a request is
// its CPU less its bank calls at what a direct call costs (bank and
// client); at one bank call per request and with the CPU as the limit,
// throughput scales with the inverse. Below a few hundred requests
// background work (key pool refills, pollers) would dominate the figure.
func (b *bench) ownCPU(uncached, direct benchRow) {
	if direct.cpu > 0 && uncached.cpu > 0 && uncached.res.Requests >= 500 && direct.res.Requests >= 500 {
		d := float64(direct.cpu) / float64(direct.res.Requests)
		own := (float64(uncached.cpu) - float64(uncached.bankCalls)*d) / float64(uncached.res.Requests)
		if own > 0 {
			fmt.Fprintf(b.out, "TPP's own CPU per uncached request: %s (direct call: %s); CPU-bound at one bank call per request, TPP uncached / direct would be about %.2f\n",
				Ms(time.Duration(own)), Ms(time.Duration(d)), d/(d+own))
		}
	}
}

// add sums two measurements of one phase (rounds of it).
func (r benchRow) add(o benchRow) benchRow {
	if r.res == nil {
		return o
	}
	return benchRow{
		name:      r.name,
		res:       Merge(r.res, o.res),
		bankCalls: r.bankCalls + o.bankCalls,
		peakHeap:  max(r.peakHeap, o.peakHeap),
		allocated: r.allocated + o.allocated,
		cpu:       r.cpu + o.cpu,
	}
}

// callsPerRequest is the bank calls of a phase per request.
func (r benchRow) callsPerRequest() float64 {
	if r.res == nil || r.res.Requests == 0 {
		return 0
	}
	return float64(r.bankCalls) / float64(r.res.Requests)
}

// goals prints the throughput ratio, with the bank calls per request it
// was measured at, and the added p99 of a TPP phase against a direct
// baseline, judged against the goals (marked PASS or MISS) or for
// reference.
func (b *bench) goals(tppRow, directRow benchRow, judge bool) {
	tppRes, direct := tppRow.res, directRow.res
	ratio := 0.0
	if direct.Throughput() > 0 {
		ratio = tppRes.Throughput() / direct.Throughput()
	}
	dp99 := direct.Percentile(0.99)
	added := tppRes.Percentile(0.99) - dp99
	addedRatio := 0.0
	if dp99 > 0 {
		addedRatio = float64(added) / float64(dp99)
	}
	mark := func(ok bool) string {
		if !judge {
			return "(reference)"
		}
		if ok {
			return "PASS"
		}
		return "MISS"
	}
	fmt.Fprintf(b.out, "throughput ratio: %s / %s = %.2f at %.2f bank calls per request (goal >= 0.80) %s\n",
		tppRow.name, directRow.name, ratio, tppRow.callsPerRequest(), mark(ratio >= 0.8))
	fmt.Fprintf(b.out, "added p99: %s p99 - %s p99 = %s vs %s p99 %s = %.2fx (goal < 2.00x) %s\n",
		tppRow.name, directRow.name, Ms(added), directRow.name, Ms(dp99), addedRatio, mark(dp99 > 0 && addedRatio < 2))
}

// cpuPerReq is the process CPU per request of a phase, or "-".
func cpuPerReq(r benchRow) string {
	if r.cpu <= 0 || r.res.Requests == 0 {
		return "-"
	}
	return Ms(r.cpu / time.Duration(r.res.Requests))
}

// allocPerReq is the bytes allocated per request of a phase, in KiB.
func allocPerReq(r benchRow) string {
	if r.res.Requests == 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(r.allocated)/float64(r.res.Requests)/1024, 'f', 1, 64)
}
