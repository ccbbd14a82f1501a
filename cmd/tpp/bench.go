package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/loadtest"
	"github.com/bunqtpp/tpp/logging"
	"github.com/bunqtpp/tpp/registration"
	"github.com/bunqtpp/tpp/sandbox"
	"github.com/bunqtpp/tpp/settings"
	"github.com/bunqtpp/tpp/storage"
)

// runBench load-tests the TPP against the emulated bank, in this process and
// on loopback only, and prints throughput, latency and bank calls per request
// for the fintech API (uncached and cached) next to direct signed bank calls.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tpp bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f benchFlags
	o := &f.opt
	fs.IntVar(&o.Consents, "consents", 50, "consents to authorize, each with its own bank context (1-1024, at least --concurrency: each client reads its own)")
	fs.IntVar(&o.Concurrency, "concurrency", 32, "concurrent clients per phase (1-1024)")
	fs.DurationVar(&o.Duration, "duration", 20*time.Second, "measured time per phase (at most 10m)")
	fs.IntVar(&o.Rounds, "rounds", 4, "rounds the uncached and direct phases alternate in, each measuring duration/rounds (1-20)")
	fs.DurationVar(&o.Warmup, "warmup", 3*time.Second, "unmeasured load before each phase (at most 1m)")
	fs.StringVar(&o.RedisURL, "redis-url", "", "a real Redis (redis://127.0.0.1:6379/15) for the TPP; empty uses the embedded one. The TPP writes under tpp:*")
	fs.StringVar(&o.Op, "op", "accounts", "what to read: accounts, transactions, or mixed (alternating)")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write CPU profiles of the whole process during each measured phase to PREFIX-{uncached,coalesced,cached,direct,budgeted}.pprof (uncached and direct: one PREFIX-{uncached,direct}.N.pprof per round with --rounds > 1; go tool pprof takes several)")
	fs.BoolVar(&f.verbose, "v", false, "copy the TPP's and the bank's logs to stderr")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:0", "address of the TPP under test (port 0: a free port), as in 'tpp serve'")
	fs.StringVar(&f.emulatedAddr, "emulated-addr", "127.0.0.1:0", "address of the emulated bank's API host; its OAuth and token hosts take the next two ports (port 0: three free ports), as in 'tpp serve'")
	fs.IntVar(&f.replicas, "replicas", 0, "instead of the comparison: measure the uncached read on one SQLite process, then on 1 to N 'tpp serve' replicas on PostgreSQL (--db-url) behind a round-robin proxy (0: off, at most 8)")
	fs.StringVar(&f.dbURL, "db-url", "", "PostgreSQL for --replicas (postgres://...): each deployment gets a fresh schema, dropped afterwards")
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
	if err := f.validate(); err != nil {
		return err
	}
	// Bounded in time whatever happens: set-up, the phases, tear-down.
	ctx, cancel := context.WithTimeout(ctx, f.timeLimit())
	defer cancel()

	logs := &loadtest.TailBuffer{Max: 64 << 10}
	if f.verbose {
		logs.CopyTo = stderr
	}
	var err error
	if f.replicas > 0 {
		err = runReplicaBench(ctx, f, stdout, logs)
	} else {
		err = runComparisonBench(ctx, f, stdout, logs)
	}
	if err != nil && !f.verbose {
		if tail := logs.String(); tail != "" {
			fmt.Fprintf(stderr, "tpp bench: last log lines of the TPP and the bank:\n%s\n", tail)
		}
	}
	return err
}

type benchFlags struct {
	opt                  loadtest.BenchOptions
	verbose              bool
	listen, emulatedAddr string // loopback addresses; port 0 picks free ports
	replicas             int
	dbURL                string
}

func (f *benchFlags) timeLimit() time.Duration {
	return time.Duration(1+2*f.replicas) * f.opt.TimeLimit()
}

func (f *benchFlags) validate() error {
	errs := []error{f.opt.Validate()}
	if _, _, err := net.SplitHostPort(f.listen); err != nil {
		errs = append(errs, fmt.Errorf("--listen %q: use host:port, e.g. 127.0.0.1:8080 (port 0: a free port)", f.listen))
	}
	if host, port, err := net.SplitHostPort(f.emulatedAddr); err != nil || host == "" {
		errs = append(errs, fmt.Errorf("--emulated-addr %q: use host:port, e.g. 127.0.0.1:5480 (port 0: free ports)", f.emulatedAddr))
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65533 {
		errs = append(errs, fmt.Errorf("--emulated-addr %q: the port and the next two must be valid ports", f.emulatedAddr))
	}
	if f.opt.RedisURL != "" {
		u, err := url.Parse(f.opt.RedisURL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
			errs = append(errs, errors.New("--redis-url: use a redis:// or rediss:// URL"))
		}
	}
	errs = append(errs, f.validateReplicas())
	return errors.Join(errs...)
}

// bankAddrs are the emulated bank's API, OAuth and token addresses.
func (f *benchFlags) bankAddrs() [3]string {
	host, port, _ := net.SplitHostPort(f.emulatedAddr)
	p, _ := strconv.Atoi(port)
	if p == 0 {
		a := net.JoinHostPort(host, "0")
		return [3]string{a, a, a}
	}
	return [3]string{net.JoinHostPort(host, strconv.Itoa(p)), net.JoinHostPort(host, strconv.Itoa(p+1)), net.JoinHostPort(host, strconv.Itoa(p+2))}
}

// runComparisonBench compares the TPP with direct bank calls.
func runComparisonBench(ctx context.Context, f benchFlags, stdout io.Writer, logs io.Writer) error {
	fmt.Fprint(stdout, f.opt.Header())
	start := time.Now()
	bank, stopBank, err := startBenchBank(ctx, f, stdout, logs)
	if err != nil {
		return err
	}
	defer stopBank()
	dir, err := os.MkdirTemp("", "tpp-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	t, err := startBenchTPP(ctx, bank, benchTPP{
		dir: dir, listen: f.listen, db: filepath.Join(dir, "tpp.db"), redisURL: f.opt.RedisURL, logs: logs, out: stdout,
	})
	if err != nil {
		return err
	}
	defer t.stop(logs)
	return loadtest.Bench(ctx, f.opt, loadtest.Target{TPPURL: t.url, APIKey: t.apiKey, BankURL: bank.APIURL, Started: start}, stdout)
}

func startBenchBank(ctx context.Context, f benchFlags, out, logs io.Writer) (*sandbox.Server, func(), error) {
	addrs := f.bankAddrs()
	bank, err := sandbox.Start(ctx, sandbox.Config{Seed: 1, RateLimits: false, Logger: newBenchLogger(logs, "emulated-bank")},
		addrs[0], addrs[1], addrs[2])
	if err != nil {
		return nil, nil, fmt.Errorf("start the emulated bank: %w", err)
	}
	fmt.Fprintf(out, "bank:  emulated bunq sandbox at %s (rate limits off)\n", bank.APIURL)
	return bank, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = bank.Shutdown(ctx)
		cancel()
	}, nil
}

// benchTPP is one TPP process under test: where it listens and keeps its
// data.
type benchTPP struct {
	dir, listen, db, masterKey, redisURL string
	apiKey                               string // the fintech client's, when one exists
	// publicURL, when set, is the URL the bank and browsers use (a proxy
	// in front of replicas); else the TPP's own.
	publicURL string
	// skipRegister: replicas after the first share the registration.
	skipRegister bool
	logs, out    io.Writer
}

// runningTPP is a started TPP.
type runningTPP struct {
	url, apiKey string
	cancel      context.CancelFunc
	done        chan error
}

func (r *runningTPP) stop(logs io.Writer) {
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(15 * time.Second):
		fmt.Fprintln(logs, "tpp bench: the TPP did not stop within 15 s")
	}
}

// startBenchTPP registers a TPP with the bank (unless o.skipRegister) and
// serves it, as 'tpp register' and 'tpp serve' would; its fintech client
// is created unless apiKey is given (replicas share the first one's).
func startBenchTPP(ctx context.Context, bank *sandbox.Server, o benchTPP) (*runningTPP, error) {
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return nil, fmt.Errorf("--listen %s: %w", o.listen, err)
	}
	listen := ln.Addr().String()
	ln.Close() // serve listens again; the callback URL must be known first
	public := o.publicURL
	if public == "" {
		public = "http://" + listen
	}
	if o.masterKey == "" {
		o.masterKey = "bench:" + randomHex(32)
	}
	if !o.skipRegister {
		if err := registerBenchTPP(ctx, bank, o, public); err != nil {
			return nil, err
		}
	}
	fs := flag.NewFlagSet("tpp serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg, err := parseConfig(fs, []string{
		"--bank", bank.APIURL, "--bank-oauth-url", bank.OAuthURL + "/auth", "--bank-token-url", bank.TokenURL + "/v1/token",
		"--listen", listen, "--public-url", public, "--metrics-listen", "", "--db", o.db, "--master-key", o.masterKey,
		"--redis-url", o.redisURL, "--log-level", "warn", "--log-format", "text", "--shutdown-grace", "5s",
		// The emulated bank runs without rate limits here, so the TPP needs
		// no budget either: measure the TPP, not the waiting.
		"--bank-rate-budget", "off",
		// One load generator is one client: its own API limit would cap it.
		"--client-rate-limit", "off",
	}, func(string) string { return "" }) // the environment must not change what is measured
	if err != nil {
		return nil, fmt.Errorf("TPP configuration: %w", err)
	}
	if !o.skipRegister {
		if o.redisURL != "" {
			fmt.Fprintf(o.out, "redis: redis-server at %s (real, shared keys under tpp:*)\n", settings.URLPassword(o.redisURL))
		} else {
			fmt.Fprintln(o.out, "redis: embedded in-process Redis (miniredis); pass --redis-url for a real redis-server")
		}
	}
	return serveBenchTPP(ctx, cfg, o, listen)
}

// serveBenchTPP runs serve in the background until stop.
func serveBenchTPP(ctx context.Context, cfg *config, o benchTPP, listen string) (*runningTPP, error) {
	r := &runningTPP{url: "http://" + listen, apiKey: o.apiKey, done: make(chan error, 1)}
	ready := make(chan struct{}, 1)
	sctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = stop
	go func() {
		r.done <- serve(sctx, cfg, serveEnv{
			stdout: o.logs, stderr: o.logs, clock: tpp.SystemClock{},
			prepare: func(ctx context.Context, a *app) error {
				if r.apiKey != "" {
					return nil
				}
				_, sec, err := a.store.Clients.CreateClient(ctx, tpp.NewClient{
					Name: "tpp bench", ReturnURLs: []string{loadtest.BenchReturnURL},
				})
				if err != nil {
					return fmt.Errorf("create the fintech client: %w", err)
				}
				r.apiKey = sec.APIKey
				return nil
			},
			started: func(string) { ready <- struct{}{} },
		})
	}()
	select {
	case <-ready:
	case err := <-r.done:
		stop()
		return nil, fmt.Errorf("the TPP did not start: %w", err)
	case <-ctx.Done():
		stop()
		<-r.done
		return nil, ctx.Err()
	}
	if o.publicURL == "" {
		fmt.Fprintf(o.out, "tpp:   serving at %s (%s)\n", r.url, benchDBName(o.db))
	}
	return r, nil
}

func benchDBName(db string) string {
	if storage.IsPostgresURL(db) {
		return "PostgreSQL " + settings.URLPassword(db)
	}
	return "SQLite " + db
}

// registerBenchTPP does what 'tpp certs' and 'tpp register' do, into o.db.
func registerBenchTPP(ctx context.Context, bank *sandbox.Server, o benchTPP, public string) error {
	kr, err := storage.OpenKeyring(o.masterKey)
	if err != nil {
		return err
	}
	st, err := storage.OpenCLI(ctx, o.db, tpp.SystemClock{}, kr)
	if err != nil {
		return err
	}
	defer st.Close()
	req, _, err := registration.TestCertificate(filepath.Join(o.dir, "certs"), "Bench TPP B.V.", time.Now())
	if err != nil {
		return err
	}
	req.APIBase, req.PublicURL = bank.APIURL, public
	err = registration.Register(ctx, st.Registrations, tpp.SystemClock{}, registration.PrefixWriter{W: o.logs, Prefix: "register: "}, req)
	if err != nil {
		return fmt.Errorf("register the TPP with the emulated bank: %w", err)
	}
	return nil
}

// newBenchLogger logs warnings and errors of an in-process component.
func newBenchLogger(w io.Writer, component string) *slog.Logger {
	return logging.New(w, logging.Options{Level: slog.LevelWarn, Text: true}).With("component", component)
}
