package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/internal/flowdriver"
	"github.com/bunqtpp/tpp/psd2"
)

// BenchOptions shape a comparison of the TPP's fintech API with direct
// signed bank calls ('tpp bench').
type BenchOptions struct {
	Consents, Concurrency int
	// Rounds the uncached and direct phases alternate in, each measuring
	// Duration/Rounds.
	Rounds           int
	Duration, Warmup time.Duration
	// Op is what to read: accounts, transactions, or mixed (alternating).
	Op string
	// CPUProfile, when set, is the prefix of CPU profile files, one per
	// measured phase (and round).
	CPUProfile string
	// RedisURL is the TPP's real Redis, if any: on loopback its CPU counts.
	RedisURL string
}

// Validate checks the options' ranges.
func (o BenchOptions) Validate() error {
	var errs []error
	if o.Consents < 1 || o.Consents > 1024 {
		errs = append(errs, fmt.Errorf("--consents %d: use 1 to 1024", o.Consents))
	} else if o.Consents < o.Concurrency {
		// Two clients reading one consent at once would share one bank
		// call (the TPP coalesces identical reads): the uncached phase
		// would not measure one bank call per request.
		errs = append(errs, fmt.Errorf("--consents %d: use at least --concurrency (%d), so that no two clients read the same consent at once", o.Consents, o.Concurrency))
	}
	if o.Concurrency < 1 || o.Concurrency > 1024 {
		errs = append(errs, fmt.Errorf("--concurrency %d: use 1 to 1024", o.Concurrency))
	}
	if o.Duration <= 0 || o.Duration > 10*time.Minute {
		errs = append(errs, fmt.Errorf("--duration %s: use more than 0 and at most 10m", o.Duration))
	}
	if o.Rounds < 1 || o.Rounds > 20 {
		errs = append(errs, fmt.Errorf("--rounds %d: use 1 to 20", o.Rounds))
	} else if o.Duration > 0 && o.Duration/time.Duration(o.Rounds) < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("--rounds %d: each round of --duration %s would measure under 100ms", o.Rounds, o.Duration))
	}
	if o.Warmup < 0 || o.Warmup > time.Minute {
		errs = append(errs, fmt.Errorf("--warmup %s: use 0 to 1m", o.Warmup))
	}
	switch o.Op {
	case "accounts", "transactions", "mixed":
	default:
		errs = append(errs, fmt.Errorf("--op %q: use accounts, transactions or mixed", o.Op))
	}
	return errors.Join(errs...)
}

// TimeLimit bounds a whole run: set-up, the phases, tear-down.
func (o BenchOptions) TimeLimit() time.Duration {
	return benchPhaseCount*(o.Warmup+o.Duration) + time.Duration(2*o.Rounds)*o.Warmup + 2*time.Minute + time.Duration(o.Consents)*2*time.Second
}

// Header is the run's first line.
func (o BenchOptions) Header() string {
	return fmt.Sprintf("tpp bench: %d consents, concurrency %d, %s measured after %s warmup per phase (uncached and direct alternating in %d rounds), op %s, GOMAXPROCS %d\n",
		o.Consents, o.Concurrency, o.Duration, o.Warmup, o.Rounds, o.Op, runtime.GOMAXPROCS(0))
}

// Target is the system under test the caller started: a TPP with a
// fintech client and the emulated bank it talks to (rate limits off).
type Target struct {
	TPPURL  string
	APIKey  string // the fintech client's; its return URLs include ReturnURL
	BankURL string // the emulated bank's API base URL
	Started time.Time
}

// BenchReturnURL is the fintech's return URL. Nothing listens there: the
// consent browser stops at the redirect that leaves the TPP.
const BenchReturnURL = "http://localhost/bench/return"

// psuIP marks reads as attended, so PSD2's 4 unattended reads a day do not
// apply (TEST-NET-1 address).
const psuIP = "192.0.2.10"

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

// bench is one run against a target.
type bench struct {
	opt      BenchOptions
	target   Target
	out      io.Writer
	fintech  *http.Client // API calls: pooled keep-alive connections
	api      flowdriver.Fintech
	bank     flowdriver.Bank
	direct   *psd2.Client // without a client-side rate budget
	budgeted *psd2.Client // with the psd2 client's default budget, as the TPP
	consents []benchConsent
	cpu      *CPUMeter
	// idleCPU is the CPU use per second without load (workers, pollers,
	// GC), taken off each phase's CPU per request.
	idleCPU float64
}

func newBench(ctx context.Context, o BenchOptions, t Target, out io.Writer) *bench {
	fintech := &http.Client{Timeout: 60 * time.Second, Transport: PooledTransport(o.Concurrency)}
	return &bench{
		opt: o, target: t, out: out, fintech: fintech,
		api:  flowdriver.Fintech{URL: t.TPPURL, APIKey: t.APIKey, HTTP: fintech, PSUIP: psuIP},
		bank: flowdriver.Bank{URL: t.BankURL, HTTP: fintech},
		cpu:  NewCPUMeter(ctx, o.RedisURL),
	}
}

func (b *bench) close() {
	b.fintech.CloseIdleConnections()
	b.cpu.Close()
}

// prepare authorizes the consents through the TPP and gives each a direct
// context at the bank.
func (b *bench) prepare(ctx context.Context) error {
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
		time.Since(b.target.Started).Round(time.Millisecond), len(b.consents), authTook.Round(time.Millisecond),
		len(b.consents), time.Since(directStart).Round(time.Millisecond))
	return nil
}

// authorize creates the consents and has sandbox users approve them
// through the TPP's consent pages, the bank's control endpoint and the
// TPP's OAuth callback, a few at a time.
func (b *bench) authorize(ctx context.Context) error {
	var users []benchUser
	if err := b.bank.Control(ctx, http.MethodGet, "/_sandbox/users", nil, &users); err != nil {
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
	b.consents = make([]benchConsent, b.opt.Consents)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i := range b.consents {
		g.Go(func() error {
			c := &b.consents[i]
			c.user = usable[i%len(usable)]
			id, err := b.api.ActiveConsent(gctx, b.bank, b.fintech.Transport, "bench-"+strconv.Itoa(i),
				[]string{string(tpp.ScopeAccounts)}, BenchReturnURL, c.user.ID)
			if err != nil {
				return fmt.Errorf("consent %d of %d: %w", i+1, len(b.consents), err)
			}
			c.id = id
			if b.opt.Op != "accounts" {
				if c.accountID, err = b.firstAccount(gctx, id); err != nil {
					return fmt.Errorf("consent %d of %d: %w", i+1, len(b.consents), err)
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// firstAccount returns the id of the consent's first account, as the TPP
// names it.
func (b *bench) firstAccount(ctx context.Context, consentID string) (string, error) {
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := b.api.Call(ctx, http.MethodGet, "/v1/consents/"+consentID+"/accounts", nil, http.StatusOK, &list); err != nil {
		return "", err
	}
	if len(list.Data) == 0 || list.Data[0].ID == "" {
		return "", errors.New("the consent shows no accounts")
	}
	return list.Data[0].ID, nil
}

// bankCalls is the bank's count of requests to its three hosts so far.
func (b *bench) bankCalls(ctx context.Context) (int, error) {
	var st struct {
		Requests map[string]int `json:"requests"`
	}
	if err := b.bank.Control(ctx, http.MethodGet, "/_sandbox/stats", nil, &st); err != nil {
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
	httpc := &http.Client{Timeout: 60 * time.Second, Transport: PooledTransport(b.opt.Concurrency)}
	var err error
	if b.direct, err = psd2.New(psd2.Options{BaseURL: b.target.BankURL, HTTPClient: httpc, Budget: unlimitedBudget{}}); err != nil {
		return err
	}
	if b.budgeted, err = psd2.New(psd2.Options{BaseURL: b.target.BankURL, HTTPClient: httpc, Budget: psd2.NewMemoryBudget(tpp.SystemClock{})}); err != nil {
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

// readsTransactions tells whether request n of a worker reads transactions.
func (b *bench) readsTransactions(n int) bool {
	switch b.opt.Op {
	case "transactions":
		return true
	case "mixed":
		return n%2 == 1
	}
	return false
}

// coalesceWorkers is how many workers share a consent in the coalesced
// phase.
const coalesceWorkers = 8

// consentFor gives each worker its own consents (worker, worker +
// concurrency, ...) and cycles through them: no two requests in flight
// read the same consent, so the TPP cannot serve two of them with one
// bank call and the uncached phase measures one bank call per request.
func (b *bench) consentFor(worker, n int) *benchConsent {
	c := b.opt.Concurrency
	owned := (len(b.consents) - worker + c - 1) / c // Validate keeps it >= 1
	return &b.consents[worker+(n%owned)*c]
}

// sharedConsentFor has coalesceWorkers workers read each consent, so
// identical reads overlap and the TPP serves several with one bank call.
func (b *bench) sharedConsentFor(worker, _ int) *benchConsent {
	return &b.consents[worker%b.sharedConsents()]
}

// sharedConsents is how many consents the coalesced phase reads.
func (b *bench) sharedConsents() int {
	return min(len(b.consents), max(1, (b.opt.Concurrency+coalesceWorkers-1)/coalesceWorkers))
}

// tppOp reads through the fintech API the consents pick chooses; fresh
// sends Cache-Control: no-cache so every read reaches the bank (or shares
// an identical read's bank call).
func (b *bench) tppOp(fresh bool, pick func(worker, n int) *benchConsent) Op {
	return func(ctx context.Context, worker, n int) error {
		c := pick(worker, n)
		path := "/v1/consents/" + c.id + "/accounts"
		if b.readsTransactions(n) {
			path += "/" + c.accountID + "/transactions?limit=50"
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.target.TPPURL+path, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+b.target.APIKey)
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
			return fmt.Errorf("GET %s: status %d %s: %s", flowdriver.RedactQuery(path), resp.StatusCode, p.Code, flowdriver.OneLine(p.Detail))
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
func (b *bench) directOp(client *psd2.Client) Op {
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
