package main

// Three replicas of 'tpp serve' (run() with separate listeners) on one
// PostgreSQL, one redis-server and the emulated bank, behind a round-robin
// reverse proxy at the public URL: what one replica starts another
// finishes, and shared work happens once.

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/bankctx"
	"github.com/bunqtpp/tpp/internal/pgtest"
)

// hit is one request the proxy passed on, and the replica that served it.
type hit struct {
	method, path string
	replica      int
}

// replicaSet is N replicas behind a round-robin proxy at h.URL.
type replicaSet struct {
	h       *harness
	pgURL   string
	pg      *sqlx.DB
	direct  []string // each replica's own URL
	metrics []string // each replica's /metrics URL
	next    atomic.Uint64
	mu      sync.Mutex
	hits    []hit
	proxies []*url.URL
}

// startReplicas prepares a TPP on SQLite as an operator would, moves it to
// PostgreSQL with 'tpp migrate', and starts n replicas on it.
func startReplicas(t *testing.T, n int, o harnessOptions) *replicaSet {
	return startReplicasWith(t, n, o, nil)
}

// startReplicasWith is startReplicas; when spawn is set it starts the last
// replica (as a process, say) instead of run().
func startReplicasWith(t *testing.T, n int, o harnessOptions, spawn func(args []string) <-chan error) *replicaSet {
	t.Helper()
	pgURL := pgtest.URL(t)
	h := newHarness(t, o)
	out := h.cli("migrate", "--from", h.DBPath, "--to", pgURL)
	if !strings.Contains(out, "verified") {
		t.Fatalf("tpp migrate did not verify:\n%s", out)
	}
	pg, err := sqlx.Open("pgx", pgURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	rs := &replicaSet{h: h, pgURL: pgURL, pg: pg}
	runs := make([]*tppRun, n)
	for i := range n {
		addr := "127.0.0.1:" + strconv.Itoa(freeTCPPort(t))
		u, _ := url.Parse("http://" + addr)
		rs.direct = append(rs.direct, u.String())
		rs.proxies = append(rs.proxies, u)
		metricsAddr := "127.0.0.1:" + strconv.Itoa(freeTCPPort(t))
		rs.metrics = append(rs.metrics, "http://"+metricsAddr+"/metrics")
		args := h.serveArgs("--listen", addr, "--db", pgURL, "--poll-interval", "1s", "--metrics-listen", metricsAddr)
		if spawn != nil && i == n-1 {
			exited := spawn(args)
			runs[i] = &tppRun{done: make(chan error, 1)}
			go func() { runs[i].done <- <-exited }()
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		r := &tppRun{cancel: cancel, done: make(chan error, 1)}
		go func() { r.done <- run(ctx, args, h.out, h.logs) }()
		runs[i] = r
		t.Cleanup(func() {
			if err := r.stop(30 * time.Second); err != nil {
				t.Errorf("replica %d did not shut down cleanly: %v", i, err)
			}
		})
	}
	for i, u := range rs.direct {
		rs.waitReady(t, u, runs[i].done)
	}
	proxy := &httputil.ReverseProxy{ErrorLog: log.New(io.Discard, "", 0), Rewrite: func(pr *httputil.ProxyRequest) {
		i := int(rs.next.Add(1)-1) % n
		pr.SetURL(rs.proxies[i])
		pr.Out.Host = pr.In.Host // the public host, as a load balancer keeps it
		rs.mu.Lock()
		rs.hits = append(rs.hits, hit{pr.In.Method, pr.In.URL.Path, i})
		rs.mu.Unlock()
	}}
	l, err := net.Listen("tcp", h.listen)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: proxy}
	go srv.Serve(l) //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })
	return rs
}

// pollRounds reads tpp_payment_poll_rounds_total from each replica.
func (rs *replicaSet) pollRounds(t *testing.T) []int {
	t.Helper()
	out := make([]int, len(rs.metrics))
	for i, u := range rs.metrics {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatalf("replica %d metrics: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, line := range strings.Split(string(body), "\n") {
			if v, ok := strings.CutPrefix(line, "tpp_payment_poll_rounds_total "); ok {
				n, err := strconv.ParseFloat(v, 64)
				if err != nil {
					t.Fatalf("replica %d: %q", i, line)
				}
				out[i] = int(n)
			}
		}
	}
	return out
}

func (rs *replicaSet) waitReady(t *testing.T, base string, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		if res, err := http.Get(base + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-done:
			t.Fatalf("replica %s stopped before it was ready: %v\nlogs:\n%s", base, err, tail(rs.h.logs.String(), 4000))
		case <-time.After(25 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %s not ready within 45s\nlogs:\n%s", base, tail(rs.h.logs.String(), 4000))
		}
	}
}

// served returns the replicas that served requests whose path has prefix.
func (rs *replicaSet) served(method, prefix string) map[int]int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	out := map[int]int{}
	for _, h := range rs.hits {
		if h.method == method && strings.HasPrefix(h.path, prefix) {
			out[h.replica]++
		}
	}
	return out
}

// servedWhere returns the replicas that served requests whose path ends in suffix.
func (rs *replicaSet) servedWhere(method, suffix string) map[int]int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	out := map[int]int{}
	for _, h := range rs.hits {
		if h.method == method && strings.HasSuffix(h.path, suffix) {
			out[h.replica]++
		}
	}
	return out
}

func (rs *replicaSet) count(t *testing.T, query string) int {
	t.Helper()
	var n int
	if err := rs.pg.Get(&n, query); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// hookCounter is a fintech webhook endpoint counting deliveries by
// Webhook-Id (one id per event).
type hookCounter struct {
	URL string
	mu  sync.Mutex
	ids map[string]int
}

func newHookCounter(t *testing.T) *hookCounter {
	c := &hookCounter{ids: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.ids[r.Header.Get("Webhook-Id")]++
		c.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	c.URL = srv.URL + "/hooks"
	return c
}

func (c *hookCounter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.ids))
	for k, v := range c.ids {
		out[k] = v
	}
	return out
}

func TestReplicasOnPostgres(t *testing.T) {
	t.Parallel()
	pgtest.Require(t)
	hooks := newHookCounter(t)
	rs := startReplicas(t, 3, harnessOptions{webhookURL: hooks.URL})
	h := rs.h
	o := &opsHarness{h}
	var consent string

	t.Run("consent flow across replicas", func(t *testing.T) {
		h := h.forTest(t)
		consent = h.activeConsent(t, "accounts", "payments")
		// The replica that sent the browser to the bank (and kept the
		// OAuth state) is not the one that takes the callback.
		cont, cb := rs.servedWhere(http.MethodPost, "/continue"), rs.served(http.MethodGet, "/oauth/callback")
		if len(cb) != 1 || len(cont) != 1 {
			t.Fatalf("continue served by %v, callback by %v", cont, cb)
		}
		for r := range cb {
			if cont[r] > 0 {
				t.Errorf("the consent page's form and the callback were served by the same replica %d: no hand-over was tested", r)
			}
		}
		// Every replica reads the consent as active.
		for i, base := range rs.direct {
			req, _ := http.NewRequest(http.MethodGet, base+"/v1/consents/"+consent, nil)
			req.Header.Set("Authorization", "Bearer "+h.APIKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("replica %d: %v", i, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("replica %d reads the consent: %d", i, resp.StatusCode)
			}
		}
	})
	if consent == "" {
		t.Fatal("no active consent")
	}

	t.Run("payments across replicas", func(t *testing.T) {
		account := o.firstAccount(t, consent)
		accountNum, err := tpp.ParseAccountID(account)
		if err != nil {
			t.Fatal(err)
		}
		to := o.payee(t)
		const n = 6
		drafts := map[string]int64{}
		for i := range n {
			key := "replicas-" + strconv.Itoa(i)
			body := paymentBody(account, to.IBAN, "1.0"+strconv.Itoa(i), "Order "+strconv.Itoa(i))
			p := o.createPayment(consent, key, body)
			if p.Status != http.StatusCreated || bankDraftID(p.Body) == 0 {
				t.Fatalf("payment %d: %d %v", i, p.Status, p.Body)
			}
			// The retry lands on another replica and replays.
			again := o.createPayment(consent, key, body)
			if again.Status != http.StatusCreated || again.Body.str("id") != p.Body.str("id") {
				t.Fatalf("retry of payment %d: %d %v", i, again.Status, again.Body)
			}
			drafts[p.Body.str("id")] = bankDraftID(p.Body)
		}
		if got := rs.served(http.MethodPost, "/v1/consents/"+consent+"/payments"); len(got) < 2 {
			t.Errorf("payment requests served by replicas %v, want more than one", got)
		}
		for _, d := range drafts {
			h.Env.AcceptDraftPayment(t, d)
		}
		waitUntil(t, 30*time.Second, "every payment to become executed", func() bool {
			for _, p := range o.listPayments(t, consent) {
				if p.str("status") != "executed" {
					return false
				}
			}
			return true
		})
		t.Logf("payments created by replicas %v, bank callbacks taken by %v",
			rs.served(http.MethodPost, "/v1/consents/"+consent+"/payments"), rs.served(http.MethodPost, "/bank/callbacks"))
		atBank := o.bankDrafts(t, consent, accountNum)
		for id := range drafts {
			if atBank[id] != 1 {
				t.Errorf("payment %s is at the bank %d times, want 1", id, atBank[id])
			}
		}
		if got := rs.count(t, `SELECT COUNT(*) FROM payments`); got != n {
			t.Errorf("%d payments stored, want %d", got, n)
		}
	})

	t.Run("the poller runs on one replica per round", func(t *testing.T) {
		before := rs.pollRounds(t)
		const window = 6 * time.Second
		time.Sleep(window)
		after := rs.pollRounds(t)
		total := 0
		for i := range after {
			total += after[i] - before[i]
		}
		// One round per 1 s interval at most (the lock marks a round done
		// for 0.9 s), so 3 replicas polling each would make about 18.
		if total < 1 || total > int(window/(900*time.Millisecond))+1 {
			t.Errorf("%d poll rounds across the replicas in %s (per replica %v → %v), want about one a second", total, window, before, after)
		}
		t.Logf("poll rounds in %s: %v → %v", window, before, after)
	})

	t.Run("webhooks delivered once each", func(t *testing.T) {
		waitUntil(t, 30*time.Second, "every webhook delivery to be done", func() bool {
			return rs.count(t, `SELECT COUNT(*) FROM webhook_deliveries WHERE delivered_at IS NULL AND abandoned_at IS NULL`) == 0
		})
		delivered := rs.count(t, `SELECT COUNT(*) FROM webhook_deliveries WHERE delivered_at IS NOT NULL`)
		attempts := rs.count(t, `SELECT COALESCE(SUM(attempts), 0) FROM webhook_deliveries`)
		got := hooks.snapshot()
		if delivered == 0 || len(got) != delivered {
			t.Errorf("receiver saw %d events, the outbox delivered %d", len(got), delivered)
		}
		sum := 0
		for id, k := range got {
			sum += k
			if k != 1 {
				t.Errorf("event %s delivered %d times", id, k)
			}
		}
		if sum != attempts {
			t.Errorf("receiver saw %d requests, the outbox made %d attempts", sum, attempts)
		}
	})

	t.Run("operator commands on PostgreSQL", func(t *testing.T) {
		h := h.forTest(t)
		key, id := h.createClientWith("Second Fintech", "--db", rs.pgURL, "--return-url", h.ReturnURL)
		if list := h.cli("clients", "list", "--db", rs.pgURL, "--master-key", h.MasterKey); !strings.Contains(list, id) || !strings.Contains(list, h.ClientID) {
			t.Errorf("clients list on PostgreSQL:\n%s", list)
		}
		// The new key works on every replica at once: nothing is cached per replica.
		for i, base := range rs.direct {
			req, _ := http.NewRequest(http.MethodGet, base+"/v1/consents", nil)
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("replica %d with the new client's key: %d", i, resp.StatusCode)
			}
		}
		if out := h.cli("rekey", "--dry-run", "--db", rs.pgURL, "--master-key", h.MasterKey); !strings.Contains(out, "consents.access_token_sealed") {
			t.Errorf("rekey --dry-run on PostgreSQL:\n%s", out)
		}
	})

	t.Run("FLUSHALL rebuilds each context once", func(t *testing.T) {
		h := h.forTest(t)
		read := func() int {
			return h.apiAs(h.APIKey, http.MethodGet, "/v1/consents/"+consent+"/accounts", nil, attended).Status
		}
		if st := read(); st != http.StatusOK {
			t.Fatalf("account read: %d", st)
		}
		h.Redis.FlushAll(t)
		// A replica trusts the context it parsed for up to this long.
		time.Sleep(bankctx.DefaultRecheck)
		h.Env.ResetStats(t)
		const n = 21
		var wg sync.WaitGroup
		statuses := make([]int, n)
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				statuses[i] = read()
			}()
		}
		close(start)
		wg.Wait()
		for i, st := range statuses {
			if st != http.StatusOK {
				t.Errorf("read %d after FLUSHALL: %d", i, st)
			}
		}
		if s := h.Env.Stats(t); s["POST /v1/session-server"] != 1 {
			t.Errorf("three replicas rebuilt the context with %d bank sessions, want 1 (stats %v)", s["POST /v1/session-server"], s)
		}
	})
}
