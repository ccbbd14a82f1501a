package loadtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for the bench's schemas

	"github.com/bunqtpp/tpp/sandbox"
	"github.com/bunqtpp/tpp/storage"
)

const maxBenchReplicas = 8

func (s *Setup) validateReplicas() error {
	switch {
	case s.Replicas == 0 && s.DBURL == "":
		return nil
	case s.Replicas < 0 || s.Replicas > maxBenchReplicas:
		return fmt.Errorf("--replicas %d: use 1 to %d (0: off)", s.Replicas, maxBenchReplicas)
	case s.Replicas == 0:
		return errors.New("--db-url: only with --replicas")
	case !storage.IsPostgresURL(s.DBURL):
		return errors.New("--replicas: give --db-url postgres://... (replicas share one PostgreSQL)")
	case s.Load.RedisURL == "":
		return errors.New("--replicas: give --redis-url (replicas share one Redis; the embedded one is per process)")
	}
	return nil
}

// runReplicaBench measures the uncached read on one SQLite process, then
// on 1 to s.Replicas replicas sharing PostgreSQL (a fresh schema each) and
// Redis behind a round-robin proxy, all against one emulated bank.
func runReplicaBench(ctx context.Context, s Setup, stdout, logs io.Writer) error {
	o := s.Load
	fmt.Fprintf(stdout, "tpp bench --replicas %d: %d consents, concurrency %d, uncached %s reads measured for %s after %s warmup per deployment\n",
		s.Replicas, o.Consents, o.Concurrency, o.Op, o.Duration, o.Warmup)
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

	// One public address for every deployment: the bank keeps the callback
	// URL and notification target registered the first time (it allows
	// two targets per category).
	pl, err := net.Listen("tcp", s.Listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", s.Listen, err)
	}
	proxy := NewRoundRobin(o.Concurrency)
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(pl) //nolint:errcheck // ends with Close
	defer srv.Close()
	front := benchFront{url: "http://" + pl.Addr().String(), proxy: proxy}

	var rows []ReplicaRow
	res, err := benchDeployment(ctx, s, bank, front, tppUnderTest{serve: s.Serve, dir: dir, db: filepath.Join(dir, "tpp.db")}, 1, logs)
	if err != nil {
		return fmt.Errorf("SQLite: %w", err)
	}
	rows = append(rows, ReplicaRow{Store: "SQLite", Replicas: 1, Res: res})
	printDeployment(stdout, rows[len(rows)-1])
	for n := 1; n <= s.Replicas; n++ {
		schemaURL, drop, err := benchSchema(ctx, s.DBURL)
		if err != nil {
			return err
		}
		res, err := benchDeployment(ctx, s, bank, front, tppUnderTest{serve: s.Serve, dir: dir, db: schemaURL}, n, logs)
		drop()
		if err != nil {
			return fmt.Errorf("PostgreSQL, %d replicas: %w", n, err)
		}
		rows = append(rows, ReplicaRow{Store: "PostgreSQL", Replicas: n, Res: res})
		printDeployment(stdout, rows[len(rows)-1])
	}
	PrintReplicaTable(stdout, rows)
	fmt.Fprintf(stdout, "\nEverything runs in this process (GOMAXPROCS %d): the bank, the load generator, Redis's clients and every\n", runtime.GOMAXPROCS(0))
	fmt.Fprintln(stdout, "replica share its cores, so more replicas here add work, not capacity; each deployment is behind the same")
	fmt.Fprintln(stdout, "round-robin proxy. On separate hosts each replica brings its own cores.")
	for _, r := range rows {
		if r.Res.Errors > 0 {
			return fmt.Errorf("%d of %d requests on %s with %d replicas failed", r.Res.Errors, r.Res.Requests, r.Store, r.Replicas)
		}
	}
	return nil
}

func printDeployment(w io.Writer, r ReplicaRow) {
	fmt.Fprintf(w, "measured %s with %d replica(s): %d requests, %d errors, %d under way at the end (not counted)\n",
		r.Store, r.Replicas, r.Res.Requests, r.Res.Errors, r.Res.Cut)
	for _, s := range r.Res.ErrorSamples {
		fmt.Fprintf(w, "  error: %s\n", s)
	}
}

// benchFront is the public address all deployments are reached at.
type benchFront struct {
	url   string
	proxy *RoundRobin
}

// benchDeployment starts n replicas on t.db behind the front proxy and
// measures them; the single SQLite process is behind the same proxy, so
// every deployment pays the same extra hop.
func benchDeployment(ctx context.Context, s Setup, bank *sandbox.Server, front benchFront, t tppUnderTest, n int, logs io.Writer) (*Result, error) {
	start := time.Now()
	t.publicURL, t.listen, t.redisURL, t.logs, t.out = front.url, "127.0.0.1:0", s.Load.RedisURL, logs, io.Discard
	t.masterKey = newMasterKey()
	var targets []*url.URL
	for i := range n {
		t.skipRegister = i > 0
		r, err := startTPP(ctx, bank, t)
		if err != nil {
			return nil, fmt.Errorf("replica %d: %w", i+1, err)
		}
		defer r.stop(t.logs)
		t.apiKey = r.apiKey
		u, _ := url.Parse(r.url)
		targets = append(targets, u)
	}
	front.proxy.Set(targets)
	defer front.proxy.Set(nil)
	return Measure(ctx, s.Load, Target{TPPURL: front.url, APIKey: t.apiKey, BankURL: bank.APIURL, Started: start})
}

// benchSchema creates a fresh schema in the database at base and returns
// a URL whose search_path is that schema, and a func dropping it.
func benchSchema(ctx context.Context, base string) (string, func(), error) {
	schema := "tpp_bench_" + strings.ToLower(rand.Text()[:12])
	db, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, fmt.Errorf("--db-url: %w", err)
	}
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		db.Close()
		return "", nil, fmt.Errorf("--db-url: create schema %s: %w", schema, err)
	}
	drop := func() {
		defer db.Close()
		_, _ = db.ExecContext(context.WithoutCancel(ctx), `DROP SCHEMA `+schema+` CASCADE`)
	}
	u, err := url.Parse(base)
	if err != nil {
		drop()
		return "", nil, fmt.Errorf("--db-url: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}
