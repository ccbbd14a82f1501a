package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/loadtest"
)

// runBench load-tests the TPP against the emulated bank, in this process and
// on loopback only, and prints throughput, latency and bank calls per request
// for the fintech API (uncached and cached) next to direct signed bank calls.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tpp bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := loadtest.Setup{Serve: serveForBench}
	o := &f.Load
	fs.IntVar(&o.Consents, "consents", 50, "consents to authorize, each with its own bank context (1-1024, at least --concurrency: each client reads its own)")
	fs.IntVar(&o.Concurrency, "concurrency", 32, "concurrent clients per phase (1-1024)")
	fs.DurationVar(&o.Duration, "duration", 20*time.Second, "measured time per phase (at most 10m)")
	fs.IntVar(&o.Rounds, "rounds", 4, "rounds the uncached and direct phases alternate in, each measuring duration/rounds (1-20)")
	fs.DurationVar(&o.Warmup, "warmup", 3*time.Second, "unmeasured load before each phase (at most 1m)")
	fs.StringVar(&o.RedisURL, "redis-url", "", "a real Redis (redis://127.0.0.1:6379/15) for the TPP; empty uses the embedded one. The TPP writes under tpp:*")
	fs.StringVar(&o.Op, "op", "accounts", "what to read: accounts, transactions, or mixed (alternating)")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write CPU profiles of the whole process during each measured phase to PREFIX-{uncached,coalesced,cached,direct,budgeted}.pprof (uncached and direct: one PREFIX-{uncached,direct}.N.pprof per round with --rounds > 1; go tool pprof takes several)")
	fs.BoolVar(&f.Verbose, "v", false, "copy the TPP's and the bank's logs to stderr")
	fs.StringVar(&f.Listen, "listen", "127.0.0.1:0", "address of the TPP under test (port 0: a free port), as in 'tpp serve'")
	fs.StringVar(&f.EmulatedAddr, "emulated-addr", "127.0.0.1:0", "address of the emulated bank's API host; its OAuth and token hosts take the next two ports (port 0: three free ports), as in 'tpp serve'")
	fs.IntVar(&f.Replicas, "replicas", 0, "instead of the comparison: measure the uncached read on one SQLite process, then on 1 to N 'tpp serve' replicas on PostgreSQL (--db-url) behind a round-robin proxy (0: off, at most 8)")
	fs.StringVar(&f.DBURL, "db-url", "", "PostgreSQL for --replicas (postgres://...): each deployment gets a fresh schema, dropped afterwards")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: tpp bench [flags]

Starts the emulated bank (rate limits off), Redis, a temporary SQLite file and
the TPP in this process, authorizes consents through the real consent flow,
then drives the fintech API and, for comparison, direct signed calls to the
bank with the same concurrency and duration. Loopback traffic only; it stops
by itself.

With --replicas N and --db-url it compares one SQLite process with 1 to N
replicas sharing PostgreSQL and one Redis instead.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tpp bench: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	return loadtest.RunBench(ctx, f, stdout, stderr)
}

// serveForBench is 'tpp serve' as 'tpp bench' runs it, in this process.
func serveForBench(ctx context.Context, args []string, logs io.Writer, started func()) error {
	fs := flag.NewFlagSet("tpp serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	// The environment must not change what is measured.
	cfg, err := parseConfig(fs, args, func(string) string { return "" })
	if err != nil {
		return fmt.Errorf("TPP configuration: %w", err)
	}
	return serve(ctx, cfg, serveEnv{stdout: logs, stderr: logs, clock: tpp.SystemClock{}, started: func(string) { started() }})
}
