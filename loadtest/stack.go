package loadtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
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
	"github.com/bunqtpp/tpp/logging"
	"github.com/bunqtpp/tpp/registration"
	"github.com/bunqtpp/tpp/sandbox"
	"github.com/bunqtpp/tpp/settings"
	"github.com/bunqtpp/tpp/storage"
)

// ServeFunc runs 'tpp serve' with args in this process until ctx ends,
// logging to logs, and calls started once its listeners are up. The
// command passes its own serve: this package does not depend on it.
type ServeFunc func(ctx context.Context, args []string, logs io.Writer, started func()) error

// Setup is what 'tpp bench' runs beyond the load itself: the addresses of
// the TPP and the emulated bank, and the replica comparison.
type Setup struct {
	Load                 BenchOptions
	Verbose              bool   // copy the TPP's and the bank's logs to stderr
	Listen, EmulatedAddr string // loopback addresses; port 0 picks free ports
	Replicas             int    // > 0: the replica comparison instead
	DBURL                string // PostgreSQL for the replicas
	Serve                ServeFunc
}

// RunBench starts the emulated bank and the TPP in this process and runs
// the comparison with direct bank calls, or with Replicas the replica
// comparison; on failure it prints the last log lines to stderr.
func RunBench(ctx context.Context, s Setup, stdout, stderr io.Writer) error {
	if err := s.Validate(); err != nil {
		return err
	}
	// Bounded in time whatever happens: set-up, the phases, tear-down.
	ctx, cancel := context.WithTimeout(ctx, s.TimeLimit())
	defer cancel()

	logs := &TailBuffer{Max: 64 << 10}
	if s.Verbose {
		logs.CopyTo = stderr
	}
	var err error
	if s.Replicas > 0 {
		err = runReplicaBench(ctx, s, stdout, logs)
	} else {
		err = runComparisonBench(ctx, s, stdout, logs)
	}
	if err != nil && !s.Verbose {
		if tail := logs.String(); tail != "" {
			fmt.Fprintf(stderr, "tpp bench: last log lines of the TPP and the bank:\n%s\n", tail)
		}
	}
	return err
}

// TimeLimit bounds the whole run.
func (s *Setup) TimeLimit() time.Duration {
	return time.Duration(1+2*s.Replicas) * s.Load.TimeLimit()
}

// Validate checks every setting, naming its flag.
func (s *Setup) Validate() error {
	errs := []error{s.Load.Validate()}
	if _, _, err := net.SplitHostPort(s.Listen); err != nil {
		errs = append(errs, fmt.Errorf("--listen %q: use host:port, e.g. 127.0.0.1:8080 (port 0: a free port)", s.Listen))
	}
	if host, port, err := net.SplitHostPort(s.EmulatedAddr); err != nil || host == "" {
		errs = append(errs, fmt.Errorf("--emulated-addr %q: use host:port, e.g. 127.0.0.1:5480 (port 0: free ports)", s.EmulatedAddr))
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65533 {
		errs = append(errs, fmt.Errorf("--emulated-addr %q: the port and the next two must be valid ports", s.EmulatedAddr))
	}
	if s.Load.RedisURL != "" {
		u, err := url.Parse(s.Load.RedisURL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
			errs = append(errs, errors.New("--redis-url: use a redis:// or rediss:// URL"))
		}
	}
	errs = append(errs, s.validateReplicas())
	return errors.Join(errs...)
}

// bankAddrs are the emulated bank's API, OAuth and token addresses.
func (s *Setup) bankAddrs() [3]string {
	host, port, _ := net.SplitHostPort(s.EmulatedAddr)
	p, _ := strconv.Atoi(port)
	if p == 0 {
		a := net.JoinHostPort(host, "0")
		return [3]string{a, a, a}
	}
	return [3]string{net.JoinHostPort(host, strconv.Itoa(p)), net.JoinHostPort(host, strconv.Itoa(p+1)), net.JoinHostPort(host, strconv.Itoa(p+2))}
}

// runComparisonBench compares the TPP with direct bank calls.
func runComparisonBench(ctx context.Context, s Setup, stdout io.Writer, logs io.Writer) error {
	fmt.Fprint(stdout, s.Load.Header())
	start := time.Now()
	bank, stopBank, err := startBank(ctx, s, stdout, logs)
	if err != nil {
		return err
	}
	defer stopBank()
	dir, err := os.MkdirTemp("", "tpp-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	t, err := startTPP(ctx, bank, tppUnderTest{
		dir: dir, listen: s.Listen, db: filepath.Join(dir, "tpp.db"), redisURL: s.Load.RedisURL, logs: logs, out: stdout, serve: s.Serve,
	})
	if err != nil {
		return err
	}
	defer t.stop(logs)
	return Bench(ctx, s.Load, Target{TPPURL: t.url, APIKey: t.apiKey, BankURL: bank.APIURL, Started: start}, stdout)
}

func startBank(ctx context.Context, s Setup, out, logs io.Writer) (*sandbox.Server, func(), error) {
	addrs := s.bankAddrs()
	bank, err := sandbox.Start(ctx, sandbox.Config{Seed: 1, RateLimits: false, Logger: newLogger(logs, "emulated-bank")},
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

// tppUnderTest is one TPP process under test: where it listens and keeps
// its data.
type tppUnderTest struct {
	dir, listen, db, masterKey, redisURL string
	apiKey                               string // the fintech client's, when one exists
	// publicURL, when set, is the URL the bank and browsers use (a proxy
	// in front of replicas); else the TPP's own.
	publicURL string
	// skipRegister: replicas after the first share the registration.
	skipRegister bool
	logs, out    io.Writer
	serve        ServeFunc
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

// startTPP registers a TPP with the bank and creates its fintech client
// (unless o.skipRegister: replicas share the first one's) and serves it,
// as 'tpp register', 'tpp clients create' and 'tpp serve' would.
func startTPP(ctx context.Context, bank *sandbox.Server, o tppUnderTest) (*runningTPP, error) {
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
		o.masterKey = newMasterKey()
	}
	if !o.skipRegister {
		if o.apiKey, err = registerTPP(ctx, bank, o, public); err != nil {
			return nil, err
		}
		if o.redisURL != "" {
			fmt.Fprintf(o.out, "redis: redis-server at %s (real, shared keys under tpp:*)\n", settings.URLPassword(o.redisURL))
		} else {
			fmt.Fprintln(o.out, "redis: embedded in-process Redis (miniredis); pass --redis-url for a real redis-server")
		}
	}
	args := []string{
		"--bank", bank.APIURL, "--bank-oauth-url", bank.OAuthURL + "/auth", "--bank-token-url", bank.TokenURL + "/v1/token",
		"--listen", listen, "--public-url", public, "--metrics-listen", "", "--db", o.db, "--master-key", o.masterKey,
		"--redis-url", o.redisURL, "--log-level", "warn", "--log-format", "text", "--shutdown-grace", "5s",
		// The emulated bank runs without rate limits here, so the TPP needs
		// no budget either: measure the TPP, not the waiting.
		"--bank-rate-budget", "off",
		// One load generator is one client: its own API limit would cap it.
		"--client-rate-limit", "off",
	}
	return serveTPP(ctx, args, o, listen)
}

// serveTPP runs serve in the background until stop.
func serveTPP(ctx context.Context, args []string, o tppUnderTest, listen string) (*runningTPP, error) {
	r := &runningTPP{url: "http://" + listen, apiKey: o.apiKey, done: make(chan error, 1)}
	ready := make(chan struct{}, 1)
	sctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = stop
	go func() {
		r.done <- o.serve(sctx, args, o.logs, func() { ready <- struct{}{} })
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
		fmt.Fprintf(o.out, "tpp:   serving at %s (%s)\n", r.url, dbName(o.db))
	}
	return r, nil
}

func dbName(db string) string {
	if storage.IsPostgresURL(db) {
		return "PostgreSQL " + settings.URLPassword(db)
	}
	return "SQLite " + db
}

// registerTPP does what 'tpp certs', 'tpp register' and 'tpp clients
// create' do, into o.db, and returns the fintech client's API key.
func registerTPP(ctx context.Context, bank *sandbox.Server, o tppUnderTest, public string) (string, error) {
	kr, err := storage.OpenKeyring(o.masterKey)
	if err != nil {
		return "", err
	}
	st, err := storage.OpenCLI(ctx, o.db, tpp.SystemClock{}, kr)
	if err != nil {
		return "", err
	}
	defer st.Close()
	req, _, err := registration.TestCertificate(filepath.Join(o.dir, "certs"), "Bench TPP B.V.", time.Now())
	if err != nil {
		return "", err
	}
	req.APIBase, req.PublicURL = bank.APIURL, public
	err = registration.Register(ctx, st.Registrations, tpp.SystemClock{}, registration.PrefixWriter{W: o.logs, Prefix: "register: "}, req)
	if err != nil {
		return "", fmt.Errorf("register the TPP with the emulated bank: %w", err)
	}
	_, sec, err := st.Clients.CreateClient(ctx, tpp.NewClient{Name: "tpp bench", ReturnURLs: []string{BenchReturnURL}})
	if err != nil {
		return "", fmt.Errorf("create the fintech client: %w", err)
	}
	return sec.APIKey, nil
}

// newMasterKey is a fresh master key for one deployment.
func newMasterKey() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return "bench:" + hex.EncodeToString(b)
}

// newLogger logs warnings and errors of an in-process component.
func newLogger(w io.Writer, component string) *slog.Logger {
	return logging.New(w, logging.Options{Level: slog.LevelWarn, Text: true}).With("component", component)
}
