//go:build linux

package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/internal/pgtest"
	"github.com/bunqtpp/tpp/internal/testenv"
	"github.com/bunqtpp/tpp/pisp"
)

// One of three replicas gets kill -9 during a burst of 50 payments. Each
// client retries with its Idempotency-Key (the proxy sends retries round
// robin, so onto the survivors too) until it has an answer: every payment
// then exists once at the bank and once in the store. A request the killed
// replica had at the bank keeps its key in flight (409) until a survivor's
// poller reconciles the orphan, pisp.DefaultOrphanGrace (2 min) after its
// creation; a key the killed replica had claimed but recorded no payment
// for is taken over after tpp.IdempotencyClaimTimeout (2 min): the retries
// wait that long.
func TestReplicasKill9DuringPaymentBurst(t *testing.T) {
	t.Parallel()
	pgtest.Require(t)
	if testing.Short() {
		t.Skip("builds the tpp binary; skipped with -short")
	}
	gobin := testenv.LookPath(t, "building the tpp binary for the kill -9 test", "go")
	bin := filepath.Join(t.TempDir(), "tpp")
	if out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var victim *exec.Cmd
	spawn := func(args []string) <-chan error {
		cmd := exec.Command(bin, args...)
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "TPP_") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		exited := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { exited <- cmd.Wait() }()
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		victim = cmd
		return exited
	}
	rs := startReplicasWith(t, 3, harnessOptions{}, spawn)
	h := rs.h
	o := &opsHarness{h}
	consent := h.activeConsent(t, "accounts", "payments")
	account := o.firstAccount(t, consent)
	accountNum, err := tpp.ParseAccountID(account)
	if err != nil {
		t.Fatal(err)
	}
	to := o.payee(t)

	const n, workers = 50, 10
	ids := make([]string, n)
	var created sync.WaitGroup
	var mu sync.Mutex
	answered := 0
	jobs := make(chan int)
	for range workers {
		created.Add(1)
		go func() {
			defer created.Done()
			for i := range jobs {
				key := fmt.Sprintf("burst-%d", i)
				body := paymentBody(account, to.IBAN, fmt.Sprintf("2.%02d", i), fmt.Sprintf("Burst %d", i))
				deadline := time.Now().Add(pisp.DefaultOrphanGrace + 90*time.Second)
				for time.Now().Before(deadline) {
					r := o.rawCreatePayment(consent, key, body)
					if r.err == nil && r.status == http.StatusCreated {
						ids[i] = r.body.str("id")
						break
					}
					// A dead replica (502 from the proxy, a reset), a key
					// still in flight (409) or a busy bank: retry.
					time.Sleep(100 * time.Millisecond)
				}
				mu.Lock()
				answered++
				mu.Unlock()
			}
		}()
	}
	go func() {
		for i := range n {
			jobs <- i
		}
		close(jobs)
	}()
	waitUntil(t, time.Minute, "a fifth of the burst to be answered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return answered >= n/5
	})
	if err := victim.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	created.Wait()

	seen := map[string]int{}
	for i, id := range ids {
		if id == "" {
			t.Errorf("payment %d never got a 201", i)
		}
		seen[id]++
	}
	if len(seen) != n {
		t.Errorf("%d distinct payments for %d keys", len(seen), n)
	}
	atBank := o.bankDrafts(t, consent, accountNum)
	for _, id := range ids {
		if atBank[id] != 1 {
			t.Errorf("payment %s is at the bank %d times, want 1", id, atBank[id])
		}
	}
	// Once in the store: one live payment per key. A create the killed
	// replica left without an outcome is reconciled by a survivor's poller;
	// when the bank had no draft for it, it is failed (never at the bank)
	// and the retry made the payment anew.
	var perKey []struct {
		Key        string `db:"idempotency_key"`
		Live       int    `db:"live"`
		FailedSent int    `db:"failed_sent"`
	}
	if err := rs.pg.Select(&perKey, `SELECT idempotency_key,
		COUNT(*) FILTER (WHERE status <> 'failed') AS live,
		COUNT(*) FILTER (WHERE status = 'failed' AND bunq_id IS NOT NULL) AS failed_sent
		FROM payments GROUP BY idempotency_key`); err != nil {
		t.Fatal(err)
	}
	if len(perKey) != n {
		t.Errorf("payments stored under %d keys, want %d", len(perKey), n)
	}
	for _, k := range perKey {
		if k.Live != 1 || k.FailedSent != 0 {
			t.Errorf("key %s: %d live payments (want 1), %d failed ones with a bank draft (want 0)", k.Key, k.Live, k.FailedSent)
		}
	}
	t.Logf("payments stored: %d for %d keys", rs.count(t, `SELECT COUNT(*) FROM payments`), n)
	t.Logf("creates served by replica: %v", rs.served(http.MethodPost, "/v1/consents/"+consent+"/payments"))
}
