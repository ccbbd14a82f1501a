package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/certs"
	"github.com/bunqtpp/tpp/loadtest"
	"github.com/bunqtpp/tpp/logging"
	"github.com/bunqtpp/tpp/psd2"
	"github.com/bunqtpp/tpp/redis"
	"github.com/bunqtpp/tpp/sandbox"
	"github.com/bunqtpp/tpp/sqlite"
)

// runBench load-tests the TPP against the emulated bank, in this process and
// on loopback only, and prints throughput, latency and bank calls per request
// for the fintech API (uncached and cached) next to direct signed bank calls.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tpp bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o benchOptions
	fs.IntVar(&o.consents, "consents", 50, "consents to authorize, each with its own bank context (1-1024, at least --concurrency: each client reads its own)")
	fs.IntVar(&o.concurrency, "concurrency", 32, "concurrent clients per phase (1-1024)")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "measured time per phase (at most 10m)")
	fs.IntVar(&o.rounds, "rounds", 4, "rounds the uncached and direct phases alternate in, each measuring duration/rounds (1-20)")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "unmeasured load before each phase (at most 1m)")
	fs.StringVar(&o.redisURL, "redis-url", "", "a real Redis (redis://127.0.0.1:6379/15) for the TPP; empty uses the embedded one. The TPP writes under tpp:*")
	fs.StringVar(&o.op, "op", "accounts", "what to read: accounts, transactions, or mixed (alternating)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write CPU profiles of the whole process during each measured phase to PREFIX-{uncached,coalesced,cached,direct,budgeted}.pprof (uncached and direct: one PREFIX-{uncached,direct}.N.pprof per round with --rounds > 1; go tool pprof takes several)")
	fs.BoolVar(&o.verbose, "v", false, "copy the TPP's and the bank's logs to stderr")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:0", "address of the TPP under test (port 0: a free port), as in 'tpp serve'")
	fs.StringVar(&o.emulatedAddr, "emulated-addr", "127.0.0.1:0", "address of the emulated bank's API host; its OAuth and token hosts take the next two ports (port 0: three free ports), as in 'tpp serve'")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: tpp bench [flags]

Starts the emulated bank (rate limits off), Redis, a temporary SQLite file and
the TPP in this process, authorizes consents through the real consent flow,
then drives the fintech API and, for comparison, direct signed calls to the
bank with the same concurrency and duration. Loopback traffic only; it stops
by itself.

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
	if err := o.validate(); err != nil {
		return err
	}
	// Bounded in time whatever happens: set-up, the phases, tear-down.
	limit := benchPhaseCount*(o.warmup+o.duration) + time.Duration(2*o.rounds)*o.warmup + 2*time.Minute + time.Duration(o.consents)*2*time.Second
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()

	b := &bench{opt: o, out: stdout, logs: &tailBuffer{max: 64 << 10}}
	if o.verbose {
		b.logs.copyTo = stderr
	}
	err := b.run(ctx)
	b.close()
	if err != nil && !o.verbose {
		if tail := b.logs.String(); tail != "" {
			fmt.Fprintf(stderr, "tpp bench: last log lines of the TPP and the bank:\n%s\n", tail)
		}
	}
	return err
}

type benchOptions struct {
	consents, concurrency int
	rounds                int
	duration, warmup      time.Duration
	redisURL, op          string
	cpuProfile            string
	verbose               bool
	listen, emulatedAddr  string // loopback addresses; port 0 picks free ports
}

// bankAddrs are the emulated bank's API, OAuth and token addresses.
func (o *benchOptions) bankAddrs() [3]string {
	host, port, _ := net.SplitHostPort(o.emulatedAddr)
	p, _ := strconv.Atoi(port)
	if p == 0 {
		a := net.JoinHostPort(host, "0")
		return [3]string{a, a, a}
	}
	return [3]string{net.JoinHostPort(host, strconv.Itoa(p)), net.JoinHostPort(host, strconv.Itoa(p+1)), net.JoinHostPort(host, strconv.Itoa(p+2))}
}

func (o *benchOptions) validate() error {
	var errs []error
	if o.consents < 1 || o.consents > 1024 {
		errs = append(errs, fmt.Errorf("--consents %d: use 1 to 1024", o.consents))
	} else if o.consents < o.concurrency {
		// Two clients reading one consent at once would share one bank
		// call (the TPP coalesces identical reads): the uncached phase
		// would not measure one bank call per request.
		errs = append(errs, fmt.Errorf("--consents %d: use at least --concurrency (%d), so that no two clients read the same consent at once", o.consents, o.concurrency))
	}
	if o.concurrency < 1 || o.concurrency > 1024 {
		errs = append(errs, fmt.Errorf("--concurrency %d: use 1 to 1024", o.concurrency))
	}
	if o.duration <= 0 || o.duration > 10*time.Minute {
		errs = append(errs, fmt.Errorf("--duration %s: use more than 0 and at most 10m", o.duration))
	}
	if o.rounds < 1 || o.rounds > 20 {
		errs = append(errs, fmt.Errorf("--rounds %d: use 1 to 20", o.rounds))
	} else if o.duration > 0 && o.duration/time.Duration(o.rounds) < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("--rounds %d: each round of --duration %s would measure under 100ms", o.rounds, o.duration))
	}
	if o.warmup < 0 || o.warmup > time.Minute {
		errs = append(errs, fmt.Errorf("--warmup %s: use 0 to 1m", o.warmup))
	}
	switch o.op {
	case "accounts", "transactions", "mixed":
	default:
		errs = append(errs, fmt.Errorf("--op %q: use accounts, transactions or mixed", o.op))
	}
	if _, _, err := net.SplitHostPort(o.listen); err != nil {
		errs = append(errs, fmt.Errorf("--listen %q: use host:port, e.g. 127.0.0.1:8080 (port 0: a free port)", o.listen))
	}
	if host, port, err := net.SplitHostPort(o.emulatedAddr); err != nil || host == "" {
		errs = append(errs, fmt.Errorf("--emulated-addr %q: use host:port, e.g. 127.0.0.1:5480 (port 0: free ports)", o.emulatedAddr))
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65533 {
		errs = append(errs, fmt.Errorf("--emulated-addr %q: the port and the next two must be valid ports", o.emulatedAddr))
	}
	if o.redisURL != "" {
		u, err := url.Parse(o.redisURL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
			errs = append(errs, errors.New("--redis-url: use a redis:// or rediss:// URL"))
		}
	}
	return errors.Join(errs...)
}

// benchUser is a sandbox user as GET /_sandbox/users shows it.
type benchUser struct {
	ID       int64  `json:"id"`
	APIKey   string `json:"api_key"`
	Accounts []struct {
		ID   int64  `json:"id"`
		Type string `json:"type"`
	} `json:"accounts"`
}

// benchConsent is one authorized consent and what the load reads with it.
type benchConsent struct {
	id        string // TPP consent id
	accountID string // TPP account id, for transactions
	user      benchUser
	direct    *psd2.Context // the direct client's context for the same user
}

// bench is one run: the processes it started and what it set up in them.
type bench struct {
	opt  benchOptions
	out  io.Writer
	logs *tailBuffer
	dir  string

	bank     *sandbox.Server
	tppURL   string
	apiKey   string // the fintech client's
	stopTPP  context.CancelFunc
	tppDone  chan error
	fintech  *http.Client // API calls: pooled keep-alive connections
	direct   *psd2.Client // without a client-side rate budget
	budgeted *psd2.Client // with the psd2 client's default budget, as the TPP
	consents []benchConsent
	// idleCPU is the process's CPU use per second without load (workers,
	// pollers, GC), taken off each phase's CPU per request.
	idleCPU float64
	// rdb reads the CPU time of a redis-server on this machine (--redis-url
	// on loopback), counted with the process's: it serves the TPP's
	// requests on the same cores.
	rdb goredis.UniversalClient
}

// benchReturnURL is the fintech's return URL. Nothing listens there: the
// consent browser stops at the redirect that leaves the TPP.
const benchReturnURL = "http://localhost/bench/return"

// psuIP marks reads as attended, so PSD2's 4 unattended reads a day do not
// apply (TEST-NET-1 address).
const psuIP = "192.0.2.10"

func (b *bench) run(ctx context.Context) error {
	o := b.opt
	fmt.Fprintf(b.out, "tpp bench: %d consents, concurrency %d, %s measured after %s warmup per phase (uncached and direct alternating in %d rounds), op %s, GOMAXPROCS %d\n",
		o.consents, o.concurrency, o.duration, o.warmup, o.rounds, o.op, runtime.GOMAXPROCS(0))
	dir, err := os.MkdirTemp("", "tpp-bench-")
	if err != nil {
		return err
	}
	b.dir = dir
	b.fintech = &http.Client{Timeout: 60 * time.Second, Transport: pooledTransport(o.concurrency)}

	start := time.Now()
	if err := b.startBank(ctx); err != nil {
		return err
	}
	if err := b.startTPP(ctx); err != nil {
		return err
	}
	authStart := time.Now()
	if err := b.authorize(ctx); err != nil {
		return err
	}
	authTook := time.Since(authStart)
	directStart := time.Now()
	if err := b.directContexts(ctx); err != nil {
		return err
	}
	fmt.Fprintf(b.out, "set-up: %s; %d consents authorized through the TPP in %s, %d direct contexts in %s\n\n",
		time.Since(start).Round(time.Millisecond), len(b.consents), authTook.Round(time.Millisecond),
		len(b.consents), time.Since(directStart).Round(time.Millisecond))

	type benchPhase struct {
		name, profile string
		op            loadtest.Op
	}
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
	slice := o.duration / time.Duration(o.rounds)
	for r := range o.rounds {
		warmup := o.warmup
		if r > 0 {
			warmup = o.warmup / time.Duration(o.rounds)
		}
		for _, p := range []benchPhase{uncached, direct} {
			profile, label := "", p.name
			if o.rounds > 1 {
				label = fmt.Sprintf("%s %d/%d", p.name, r+1, o.rounds)
			}
			if o.cpuProfile != "" {
				profile = o.cpuProfile + "-" + p.profile + ".pprof"
				if o.rounds > 1 {
					profile = fmt.Sprintf("%s-%s.%d.pprof", o.cpuProfile, p.profile, r+1)
				}
			}
			row, err := b.phase(ctx, label, p.op, profile, warmup, slice)
			if err != nil {
				return err
			}
			byName[p.name] = byName[p.name].add(row)
		}
	}
	for _, p := range others {
		profile := ""
		if o.cpuProfile != "" {
			profile = o.cpuProfile + "-" + p.profile + ".pprof"
		}
		row, err := b.phase(ctx, p.name, p.op, profile, o.warmup, o.duration)
		if err != nil {
			return err
		}
		byName[p.name] = row
	}
	var rows []benchRow
	for _, name := range []string{phaseUncached, phaseCoalesced, phaseCached, phaseDirect, phaseBudgeted} {
		r := byName[name]
		r.name = name
		rows = append(rows, r)
	}
	// The idle baseline is taken last: right after set-up the TPP's key
	// pool is still generating keys.
	b.idleCPU = b.measureIdleCPU(ctx, 500*time.Millisecond, time.Second)
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

// close stops the TPP, the bank and removes the temporary files.
func (b *bench) close() {
	if b.stopTPP != nil {
		b.stopTPP()
		select {
		case <-b.tppDone:
		case <-time.After(15 * time.Second):
			fmt.Fprintln(b.logs, "tpp bench: the TPP did not stop within 15 s")
		}
	}
	if b.bank != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = b.bank.Shutdown(ctx)
		cancel()
	}
	if b.fintech != nil {
		b.fintech.CloseIdleConnections()
	}
	if b.rdb != nil {
		b.rdb.Close()
	}
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}

func pooledTransport(conns int) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil // loopback only, never through a proxy from the environment
	t.MaxIdleConns = 2 * conns
	t.MaxIdleConnsPerHost = conns
	return t
}

func (b *bench) startBank(ctx context.Context) error {
	addrs := b.opt.bankAddrs()
	bank, err := sandbox.Start(ctx, sandbox.Config{Seed: 1, RateLimits: false, Logger: newBenchLogger(b.logs, "emulated-bank")},
		addrs[0], addrs[1], addrs[2])
	if err != nil {
		return fmt.Errorf("start the emulated bank: %w", err)
	}
	b.bank = bank
	fmt.Fprintf(b.out, "bank:  emulated bunq sandbox at %s (rate limits off)\n", bank.APIURL)
	return nil
}

// startTPP registers a TPP with the bank and serves it on a free port, as
// 'tpp register' and 'tpp serve' would, with a temporary database.
func (b *bench) startTPP(ctx context.Context) error {
	ln, err := net.Listen("tcp", b.opt.listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", b.opt.listen, err)
	}
	listen := ln.Addr().String()
	ln.Close() // serve listens again; the callback URL must be known first
	public := "http://" + listen
	dbPath := filepath.Join(b.dir, "tpp.db")
	masterKey := "bench:" + randomHex(32)
	if err := b.register(ctx, dbPath, masterKey, public); err != nil {
		return err
	}

	fs := flag.NewFlagSet("tpp serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg, err := parseConfig(fs, []string{
		"--bank", b.bank.APIURL, "--bank-oauth-url", b.bank.OAuthURL + "/auth", "--bank-token-url", b.bank.TokenURL + "/v1/token",
		"--listen", listen, "--public-url", public, "--metrics-listen", "", "--db", dbPath, "--master-key", masterKey,
		"--redis-url", b.opt.redisURL, "--log-level", "warn", "--log-format", "text", "--shutdown-grace", "5s",
		// The emulated bank runs without rate limits here, so the TPP needs
		// no budget either: measure the TPP, not the waiting.
		"--bank-rate-budget", "off",
		// One load generator is one client: its own API limit would cap it.
		"--client-rate-limit", "off",
	}, func(string) string { return "" }) // the environment must not change what is measured
	if err != nil {
		return fmt.Errorf("TPP configuration: %w", err)
	}
	if b.opt.redisURL != "" {
		fmt.Fprintf(b.out, "redis: redis-server at %s (real, shared keys under tpp:*)\n", maskURLPassword(b.opt.redisURL))
		b.rdb = localRedis(ctx, b.opt.redisURL)
	} else {
		fmt.Fprintln(b.out, "redis: embedded in-process Redis (miniredis); pass --redis-url for a real redis-server")
	}

	ready := make(chan string, 1)
	sctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	b.stopTPP, b.tppDone = stop, make(chan error, 1)
	go func() {
		b.tppDone <- serve(sctx, cfg, serveEnv{
			stdout: b.logs, stderr: b.logs, clock: tpp.SystemClock{},
			prepare: func(ctx context.Context, a *app) error {
				_, sec, err := a.store.clients.CreateClient(ctx, tpp.NewClient{
					Name: "tpp bench", ReturnURLs: []string{benchReturnURL},
				})
				if err != nil {
					return fmt.Errorf("create the fintech client: %w", err)
				}
				b.apiKey = sec.APIKey
				return nil
			},
			started: func(u string) { ready <- u },
		})
	}()
	select {
	case u := <-ready:
		b.tppURL = u
	case err := <-b.tppDone:
		b.stopTPP = nil
		return fmt.Errorf("the TPP did not start: %w", err)
	case <-ctx.Done():
		return ctx.Err()
	}
	fmt.Fprintf(b.out, "tpp:   serving at %s (SQLite %s)\n", b.tppURL, dbPath)
	return nil
}

// register does what 'tpp certs' and 'tpp register' do, into dbPath.
func (b *bench) register(ctx context.Context, dbPath, masterKey, public string) error {
	kr, err := openKeyring(masterKey)
	if err != nil {
		return err
	}
	db, err := openDB(ctx, dbPath, tpp.SystemClock{})
	if err != nil {
		return err
	}
	defer db.Close()
	g, err := certs.Generate(rand.Reader, time.Now(), certs.Options{
		Roles:        []certs.Role{certs.RoleAISP, certs.RolePISP, certs.RoleCBPII},
		Organization: "Bench TPP B.V.",
	})
	if err != nil {
		return fmt.Errorf("generate a test certificate: %w", err)
	}
	certDir := filepath.Join(b.dir, "certs")
	if _, err := g.WriteFiles(certDir, certs.FileNames{}, false); err != nil {
		return fmt.Errorf("write the test certificate: %w", err)
	}
	r := &registrar{store: sqlite.NewRegistrationStore(db, kr), clock: tpp.SystemClock{}, out: prefixWriter{b.logs, "register: "}}
	err = r.register(ctx, b.bank.APIURL, registerFlags{
		cert: filepath.Join(certDir, "cert.pem"), key: filepath.Join(certDir, "key.pem"), chain: filepath.Join(certDir, "chain.pem"),
		publicURL: public,
	})
	if err != nil {
		return fmt.Errorf("register the TPP with the emulated bank: %w", err)
	}
	return nil
}

// authorize creates the consents and has sandbox users approve them
// through the TPP's consent pages, the bank's control endpoint and the
// TPP's OAuth callback, a few at a time.
func (b *bench) authorize(ctx context.Context) error {
	var users []benchUser
	if err := b.control(ctx, http.MethodGet, "/_sandbox/users", nil, &users); err != nil {
		return err
	}
	var usable []benchUser
	for _, u := range users {
		if u.APIKey != "" && len(u.Accounts) > 0 {
			usable = append(usable, u)
		}
	}
	if len(usable) == 0 {
		return errors.New("the emulated bank lists no users with accounts")
	}
	b.consents = make([]benchConsent, b.opt.consents)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i := range b.consents {
		g.Go(func() error {
			c := &b.consents[i]
			c.user = usable[i%len(usable)]
			id, err := b.connect(gctx, i, c.user.ID)
			if err != nil {
				return fmt.Errorf("consent %d of %d: %w", i+1, len(b.consents), err)
			}
			c.id = id
			if b.opt.op != "accounts" {
				if c.accountID, err = b.firstAccount(gctx, id); err != nil {
					return fmt.Errorf("consent %d of %d: %w", i+1, len(b.consents), err)
				}
			}
			return nil
		})
	}
	return g.Wait()
}

var csrfTokenRe = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// connect runs the consent flow for one consent as the fintech and the
// user's browser would, and returns the active consent's id.
func (b *bench) connect(ctx context.Context, i int, userID int64) (string, error) {
	var created struct {
		ID           string `json:"id"`
		AuthorizeURL string `json:"authorize_url"`
	}
	body := map[string]any{"user_ref": "bench-" + strconv.Itoa(i), "scopes": []string{string(tpp.ScopeAccounts)}, "return_url": benchReturnURL}
	if err := b.api(ctx, http.MethodPost, "/v1/consents", body, http.StatusCreated, &created); err != nil {
		return "", err
	}
	if created.ID == "" || created.AuthorizeURL == "" {
		return "", errors.New("create consent: the answer has no id or authorize_url")
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return "", err
	}
	own, err := url.Parse(b.tppURL)
	if err != nil {
		return "", err
	}
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: b.fintech.Transport,
		CheckRedirect: func(r *http.Request, via []*http.Request) error {
			if r.URL.Host != own.Host {
				return http.ErrUseLastResponse // to the bank or the fintech: stop and look
			}
			return nil
		}}
	status, page, _, err := fetch(ctx, browser, http.MethodGet, created.AuthorizeURL, nil)
	if err != nil {
		return "", err
	}
	m := csrfTokenRe.FindStringSubmatch(page)
	if status != http.StatusOK || m == nil {
		return "", fmt.Errorf("consent page: status %d without a CSRF token", status)
	}
	form := url.Values{"csrf_token": {m[1]}}
	status, _, loc, err := fetch(ctx, browser, http.MethodPost, created.AuthorizeURL+"/continue", form)
	if err != nil {
		return "", err
	}
	authURL, err := url.Parse(loc)
	if status != http.StatusSeeOther || err != nil {
		return "", fmt.Errorf("continue to the bank: status %d, location %q", status, loc)
	}
	q := authURL.Query()
	var decided struct {
		RedirectURL string `json:"redirect_url"`
	}
	err = b.control(ctx, http.MethodPost, "/_sandbox/oauth/authorize", map[string]any{
		"client_id": q.Get("client_id"), "redirect_uri": q.Get("redirect_uri"), "state": q.Get("state"),
		"user_id": userID, "decision": "approve",
	}, &decided)
	if err != nil {
		return "", err
	}
	status, _, loc, err = fetch(ctx, browser, http.MethodGet, decided.RedirectURL, nil)
	if err != nil {
		return "", err
	}
	back, err := url.Parse(loc)
	if status != http.StatusSeeOther || err != nil || back.Query().Get("status") != "active" || back.Query().Get("consent_id") != created.ID {
		return "", fmt.Errorf("OAuth callback: status %d, redirect %q, want the return URL with status=active", status, redactQuery(loc))
	}
	return created.ID, nil
}

// redactQuery drops a URL's query, which may hold a code or state.
func redactQuery(u string) string {
	base, _, _ := strings.Cut(u, "?")
	return base
}

// fetch sends a browser request and returns the status, the body, and the
// Location header.
func fetch(ctx context.Context, c *http.Client, method, u string, form url.Values) (int, string, string, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return 0, "", "", err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", "", fmt.Errorf("%s %s: %w", method, redactQuery(u), err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, "", "", fmt.Errorf("%s %s: %w", method, redactQuery(u), err)
	}
	return resp.StatusCode, string(raw), resp.Header.Get("Location"), nil
}

// firstAccount returns the id of the consent's first account, as the TPP
// names it.
func (b *bench) firstAccount(ctx context.Context, consentID string) (string, error) {
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := b.api(ctx, http.MethodGet, "/v1/consents/"+consentID+"/accounts", nil, http.StatusOK, &list); err != nil {
		return "", err
	}
	if len(list.Data) == 0 || list.Data[0].ID == "" {
		return "", errors.New("the consent shows no accounts")
	}
	return list.Data[0].ID, nil
}

// api calls the fintech API (attended) and decodes a want-status answer.
func (b *bench) api(ctx context.Context, method, path string, in any, want int, out any) error {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.tppURL+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+b.apiKey)
	req.Header.Set("PSU-IP-Address", psuIP)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.fintech.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d: %s", method, path, resp.StatusCode, oneLine(string(bytes.TrimSpace(raw[:min(len(raw), 300)]))))
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

// control calls one of the emulated bank's /_sandbox/ endpoints.
func (b *bench) control(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.bank.APIURL+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.fintech.Do(req)
	if err != nil {
		return fmt.Errorf("bank control %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("bank control %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("bank control %s %s: status %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(raw))
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// bankCalls is the bank's count of requests to its three hosts so far.
func (b *bench) bankCalls(ctx context.Context) (int, error) {
	var st struct {
		Requests map[string]int `json:"requests"`
	}
	if err := b.control(ctx, http.MethodGet, "/_sandbox/stats", nil, &st); err != nil {
		return 0, err
	}
	n := 0
	for _, v := range st.Requests {
		n += v
	}
	return n, nil
}

// directContexts gives every consent a direct API-key context for the same
// sandbox user, on a client with a pooled transport.
func (b *bench) directContexts(ctx context.Context) error {
	// Two clients share the contexts: the bank's limits are off, so the
	// plain baseline has no budget; the budgeted one waits like the TPP.
	httpc := &http.Client{Timeout: 60 * time.Second, Transport: pooledTransport(b.opt.concurrency)}
	var err error
	if b.direct, err = psd2.New(psd2.Options{BaseURL: b.bank.APIURL, HTTPClient: httpc, Budget: unlimitedBudget{}}); err != nil {
		return err
	}
	if b.budgeted, err = psd2.New(psd2.Options{BaseURL: b.bank.APIURL, HTTPClient: httpc, Budget: psd2.NewMemoryBudget(tpp.SystemClock{})}); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0) + 1) // key generation is CPU-bound
	for i := range b.consents {
		g.Go(func() error {
			c := &b.consents[i]
			bc, err := b.direct.NewAPIKeyContext(gctx, c.user.APIKey, psd2.ContextOptions{Description: "tpp bench direct"})
			if err != nil {
				return fmt.Errorf("direct context %d: %w", i+1, err)
			}
			c.direct = bc
			return nil
		})
	}
	return g.Wait()
}

// unlimitedBudget admits every call at once: the direct client without
// client-side rate limiting.
type unlimitedBudget struct{}

func (unlimitedBudget) Wait(ctx context.Context, _ string, _ int, _ time.Duration) error {
	return ctx.Err()
}

// reads tells whether request n of a worker reads transactions.
func (b *bench) readsTransactions(n int) bool {
	switch b.opt.op {
	case "transactions":
		return true
	case "mixed":
		return n%2 == 1
	}
	return false
}

// The phases of a run, by the names the report shows.
const (
	phaseUncached   = "TPP uncached"
	phaseCoalesced  = "TPP coalesced"
	phaseCached     = "TPP cached"
	phaseDirect     = "direct"
	phaseBudgeted   = "direct budgeted"
	benchPhaseCount = 5
)

// coalesceWorkers is how many workers share a consent in the coalesced
// phase.
const coalesceWorkers = 8

// consentFor gives each worker its own consents (worker, worker +
// concurrency, ...) and cycles through them: no two requests in flight
// read the same consent, so the TPP cannot serve two of them with one
// bank call and the uncached phase measures one bank call per request.
func (b *bench) consentFor(worker, n int) *benchConsent {
	c := b.opt.concurrency
	owned := (len(b.consents) - worker + c - 1) / c // validate keeps it >= 1
	return &b.consents[worker+(n%owned)*c]
}

// sharedConsentFor has coalesceWorkers workers read each consent, so
// identical reads overlap and the TPP serves several with one bank call.
func (b *bench) sharedConsentFor(worker, _ int) *benchConsent {
	return &b.consents[worker%b.sharedConsents()]
}

// sharedConsents is how many consents the coalesced phase reads.
func (b *bench) sharedConsents() int {
	return min(len(b.consents), max(1, (b.opt.concurrency+coalesceWorkers-1)/coalesceWorkers))
}

// tppOp reads through the fintech API the consents pick chooses; fresh
// sends Cache-Control: no-cache so every read reaches the bank (or shares
// an identical read's bank call).
func (b *bench) tppOp(fresh bool, pick func(worker, n int) *benchConsent) loadtest.Op {
	return func(ctx context.Context, worker, n int) error {
		c := pick(worker, n)
		path := "/v1/consents/" + c.id + "/accounts"
		if b.readsTransactions(n) {
			path += "/" + c.accountID + "/transactions?limit=50"
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.tppURL+path, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+b.apiKey)
		req.Header.Set("PSU-IP-Address", psuIP)
		if fresh {
			req.Header.Set("Cache-Control", "no-cache")
		}
		resp, err := b.fintech.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var out struct {
			Data []json.RawMessage `json:"data"`
		}
		if resp.StatusCode != http.StatusOK {
			// The problem's code and detail, without its request id, so
			// that equal failures read the same.
			var p struct{ Code, Detail string }
			_ = json.NewDecoder(io.LimitReader(resp.Body, 4<<10)).Decode(&p)
			return fmt.Errorf("GET %s: status %d %s: %s", redactQuery(path), resp.StatusCode, p.Code, oneLine(p.Detail))
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return fmt.Errorf("GET %s: %w", path, err)
		}
		if len(out.Data) == 0 {
			return fmt.Errorf("GET %s: empty list", path)
		}
		return nil
	}
}

// directOp makes the same reads as signed bank calls with client: the
// account list (one page of 200, as the TPP asks), or 51 payments of the
// first account (the TPP's limit 50 plus one to see a next page).
func (b *bench) directOp(client *psd2.Client) loadtest.Op {
	return func(ctx context.Context, worker, n int) error {
		c := b.consentFor(worker, n)
		if b.readsTransactions(n) {
			l, err := client.ListPayments(ctx, c.direct, c.user.Accounts[0].ID, psd2.Page{Count: 51})
			if err != nil {
				return err
			}
			if len(l.Items) == 0 {
				return errors.New("direct: no payments")
			}
			return nil
		}
		l, err := client.ListMonetaryAccounts(ctx, c.direct, psd2.Page{Count: 200})
		if err != nil {
			return err
		}
		if len(l.Items) == 0 {
			return errors.New("direct: no accounts")
		}
		return nil
	}
}

// benchRow is one phase's figures.
type benchRow struct {
	name      string
	res       *loadtest.Result
	bankCalls int
	peakHeap  uint64
	allocated uint64        // bytes the process allocated during the window
	cpu       time.Duration // process CPU during the window; 0 if unknown
}

// phase runs one load phase and reads the bank's request count and the
// heap around its measured window; a profile file name records a CPU
// profile of that window.
func (b *bench) phase(ctx context.Context, name string, op loadtest.Op, profile string, warmup, duration time.Duration) (benchRow, error) {
	row := benchRow{name: name}
	var before int
	var cpuBefore time.Duration
	var allocBefore uint64
	var measureErr error
	var prof *os.File
	heap := startHeapSampler(100 * time.Millisecond)
	opts := loadtest.Options{
		Concurrency: b.opt.concurrency, Warmup: warmup, Duration: duration,
		OnMeasure: func(start bool) {
			n, err := b.bankCalls(ctx)
			if err != nil {
				measureErr = err
				return
			}
			cpu, _ := b.cpuNow(ctx)
			alloc := allocatedBytes()
			if start {
				before, cpuBefore, allocBefore = n, cpu, alloc
				heap.reset()
				if profile != "" {
					if prof, err = os.Create(profile); err == nil {
						err = pprof.StartCPUProfile(prof)
					}
					if err != nil {
						measureErr = fmt.Errorf("--cpuprofile: %w", err)
					}
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
	res, err := loadtest.Run(ctx, opts, op)
	row.peakHeap = heap.stop()
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
			ms(r.res.Percentile(0.50)), ms(r.res.Percentile(0.90)), ms(r.res.Percentile(0.99)),
			strconv.Itoa(r.res.Errors), strconv.FormatFloat(r.callsPerRequest(), 'f', 2, 64), cpuPerReq(r), allocPerReq(r), mib(r.peakHeap))
	}
	fmt.Fprintln(b.out)
	fmt.Fprintln(b.out, "TPP uncached: Cache-Control: no-cache, each client reading its own consents (one bank call per request);")
	fmt.Fprintf(b.out, "TPP coalesced: the same with %d clients per consent (%d consents), identical concurrent reads sharing a bank call;\n",
		min(coalesceWorkers, b.opt.concurrency), b.sharedConsents())
	fmt.Fprintln(b.out, "direct: signed psd2 client calls, one API-key context per consent; \"direct\" without a client-side")
	fmt.Fprintln(b.out, "rate budget, like the TPP here (the bank's limits are off, so is the TPP's budget: --bank-rate-budget off);")
	fmt.Fprintln(b.out, "\"direct budgeted\" with the psd2 client's own budget, as a TPP against the real bunq has.")
	uncached, direct := byName[phaseUncached], byName[phaseDirect]
	b.goals(uncached, direct, true)
	b.goals(byName[phaseCoalesced], direct, false)
	b.goals(uncached, byName[phaseBudgeted], false)
	// The budget hides what the TPP's own work costs; CPU does not. The
	// TPP's own share of a request is its CPU less its bank calls at what
	// a direct call costs (bank and client); at one bank call per request
	// and with the CPU as the limit, throughput scales with the inverse.
	// Below a few hundred requests background work (key pool refills,
	// pollers) would dominate the figure.
	if direct.cpu > 0 && uncached.cpu > 0 && uncached.res.Requests >= 500 && direct.res.Requests >= 500 {
		d := float64(direct.cpu) / float64(direct.res.Requests)
		own := (float64(uncached.cpu) - float64(uncached.bankCalls)*d) / float64(uncached.res.Requests)
		if own > 0 {
			fmt.Fprintf(b.out, "TPP's own CPU per uncached request: %s (direct call: %s); CPU-bound at one bank call per request, TPP uncached / direct would be about %.2f\n",
				ms(time.Duration(own)), ms(time.Duration(d)), d/(d+own))
		}
	}
	fmt.Fprintf(b.out, "CPU ms/req: process CPU over the window per request, less the idle baseline of %.1f%% of a core\n", 100*b.idleCPU)
	switch {
	case b.rdb != nil:
		fmt.Fprintln(b.out, "            plus the redis-server's CPU (INFO cpu: all it served meanwhile, it runs on this machine)")
	case b.opt.redisURL != "":
		fmt.Fprintln(b.out, "            (this process only: the redis-server's CPU is not in it)")
	}
	fmt.Fprintln(b.out, "alloc KiB/req: heap allocations of the whole process over the window per request")
	fmt.Fprintf(b.out, "peak heap: %s (whole process: bank, TPP, Redis if embedded, and load generators)\n", mib(peak))
}

// add sums two measurements of one phase (rounds of it).
func (r benchRow) add(o benchRow) benchRow {
	if r.res == nil {
		return o
	}
	return benchRow{
		name:      r.name,
		res:       loadtest.Merge(r.res, o.res),
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
		return passMiss(ok)
	}
	fmt.Fprintf(b.out, "throughput ratio: %s / %s = %.2f at %.2f bank calls per request (goal >= 0.80) %s\n",
		tppRow.name, directRow.name, ratio, tppRow.callsPerRequest(), mark(ratio >= 0.8))
	fmt.Fprintf(b.out, "added p99: %s p99 - %s p99 = %s vs %s p99 %s = %.2fx (goal < 2.00x) %s\n",
		tppRow.name, directRow.name, ms(added), directRow.name, ms(dp99), addedRatio, mark(dp99 > 0 && addedRatio < 2))
}

// cpuNow is the process's CPU time so far plus, with a local redis-server,
// that server's; ok is false when the process's is unknown.
func (b *bench) cpuNow(ctx context.Context) (time.Duration, bool) {
	cpu, ok := loadtest.ProcessCPU()
	if b.rdb == nil {
		return cpu, ok
	}
	info, err := b.rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return cpu, false
	}
	for _, line := range strings.Split(info, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		if k != "used_cpu_sys" && k != "used_cpu_user" {
			continue
		}
		sec, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return cpu, false
		}
		cpu += time.Duration(sec * float64(time.Second))
	}
	return cpu, ok
}

// localRedis returns a client of the Redis at u when it listens on
// loopback (its CPU then competes with this process's), else nil.
func localRedis(ctx context.Context, u string) goredis.UniversalClient {
	pu, err := url.Parse(u)
	if err != nil {
		return nil
	}
	host := pu.Hostname()
	if ip, err := netip.ParseAddr(host); !(host == "localhost" || err == nil && ip.IsLoopback()) {
		return nil
	}
	rdb, err := redis.NewClient(ctx, redis.Config{URL: u})
	if err != nil {
		return nil
	}
	if _, err := rdb.Info(ctx, "cpu").Result(); err != nil {
		rdb.Close()
		return nil
	}
	return rdb
}

// measureIdleCPU returns the CPU seconds per second (cpuNow) while nothing
// but the heap sampler of a phase runs.
func (b *bench) measureIdleCPU(ctx context.Context, settle, d time.Duration) float64 {
	select {
	case <-ctx.Done():
		return 0
	case <-time.After(settle):
	}
	heap := startHeapSampler(100 * time.Millisecond)
	defer heap.stop()
	c0, ok := b.cpuNow(ctx)
	t0 := time.Now()
	select {
	case <-ctx.Done():
		return 0
	case <-time.After(d):
	}
	c1, _ := b.cpuNow(ctx)
	if !ok {
		return 0
	}
	return float64(c1-c0) / float64(time.Since(t0))
}

// cpuPerReq is the process CPU per request of a phase, or "-".
func cpuPerReq(r benchRow) string {
	if r.cpu <= 0 || r.res.Requests == 0 {
		return "-"
	}
	return ms(r.cpu / time.Duration(r.res.Requests))
}

// allocPerReq is the bytes allocated per request of a phase, in KiB.
func allocPerReq(r benchRow) string {
	if r.res.Requests == 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(r.allocated)/float64(r.res.Requests)/1024, 'f', 1, 64)
}

// allocatedBytes is what the process has allocated on the heap so far.
func allocatedBytes() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

func passMiss(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + "ms"
}

func mib(n uint64) string {
	return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + "MiB"
}

// heapSampler records the peak of runtime.MemStats.HeapAlloc.
type heapSampler struct {
	mu   sync.Mutex
	peak uint64
	done chan struct{}
	wg   sync.WaitGroup
}

func startHeapSampler(every time.Duration) *heapSampler {
	h := &heapSampler{done: make(chan struct{})}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			h.sample()
			select {
			case <-h.done:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

func (h *heapSampler) sample() {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	h.mu.Lock()
	h.peak = max(h.peak, m.HeapAlloc)
	h.mu.Unlock()
}

// reset forgets the warmup's peak.
func (h *heapSampler) reset() {
	h.mu.Lock()
	h.peak = 0
	h.mu.Unlock()
	h.sample()
}

func (h *heapSampler) stop() uint64 {
	close(h.done)
	h.wg.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.peak
}

// tailBuffer keeps the last max bytes written (the logs of the TPP and the
// bank, shown when the run fails) and optionally copies everything on.
type tailBuffer struct {
	mu     sync.Mutex
	max    int
	buf    []byte
	copyTo io.Writer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.copyTo != nil {
		t.copyTo.Write(p)
	}
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

// newBenchLogger logs warnings and errors of an in-process component.
func newBenchLogger(w io.Writer, component string) *slog.Logger {
	return logging.New(w, logging.Options{Level: slog.LevelWarn, Text: true}).With("component", component)
}
