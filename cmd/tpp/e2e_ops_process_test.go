//go:build linux

package main

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/internal/banktest"
	"github.com/bunqtpp/tpp/internal/testenv"
)

// TestE2EOpsSIGTERMProcess is the real-process form of the shutdown test:
// the tpp binary, built once, gets a real SIGTERM while a payment request
// is at the bank. It must finish that request, exit 0, and leave data that
// a restarted server serves without duplicating the payment.
func TestE2EOpsSIGTERMProcess(t *testing.T) {
	testenv.Heavy(t) // builds the tpp binary
	t.Parallel()
	gobin := testenv.LookPath(t, "building the tpp binary for the SIGTERM test", "go")
	bin := filepath.Join(t.TempDir(), "tpp")
	built := time.Now()
	build := exec.Command(gobin, "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built the tpp binary in %s", time.Since(built).Round(time.Millisecond))

	o := newOpsHarness(t, opsOptions{})
	cmd := exec.Command(bin, o.serveArgs("--poll-interval", "1s")...)
	cmd.Stdout, cmd.Stderr = o.out, o.logs
	// The test's own TPP_ settings (if any) must not reach the server.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TPP_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// If the test binary dies, the server dies with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // a no-op once it has exited
	})
	o.waitHealthy(exited)

	consent := o.activeConsent(t, "accounts", "payments")
	account := o.firstAccount(t, consent)
	accountNum, err := tpp.ParseAccountID(account)
	if err != nil {
		t.Fatal(err)
	}
	body := paymentBody(account, o.payee(t).IBAN, "9.99", "Order P")
	o.Env.ResetStats(t)
	o.Env.Fault(t, banktest.Fault{Method: http.MethodPost, Path: opsDraftPath, Kind: banktest.FaultLatency, LatencyMS: 800, Count: 1})
	res := make(chan rawResult, 1)
	go func() { res <- o.rawCreatePayment(consent, "ops-sigterm-p", body) }()
	waitUntil(t, 10*time.Second, "the payment to reach the bank", func() bool { return o.Env.Stats(t)[opsDraftCreate] == 1 })

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("after SIGTERM the server exited with %v, want status 0\nlogs:\n%s", err, tail(o.logs.String(), 3000))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not exit within 30s of SIGTERM")
	}
	p := <-res
	if p.err != nil || p.status != http.StatusCreated || bankDraftID(p.body) == 0 {
		t.Fatalf("the payment in flight at SIGTERM: %d %v %v", p.status, p.err, p.body)
	}
	logs := o.logs.String()
	if !strings.Contains(logs, `"msg":"shutting down"`) || !strings.Contains(logs, `"msg":"stopped"`) {
		t.Errorf("the server did not log a graceful shutdown:\n%s", tail(logs, 2000))
	}

	// A new server on the same data answers the retry from its record.
	o.serve(t, "--poll-interval", "1s")
	r := o.createPayment(consent, "ops-sigterm-p", body)
	if r.Status != http.StatusCreated || r.Body.str("id") != p.body.str("id") || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("retry after the restart: %d %v %v", r.Status, r.Header, r.Body)
	}
	if n := o.Env.Stats(t)[opsDraftCreate]; n != 1 {
		t.Errorf("the bank saw %d draft creations, want 1", n)
	}
	if drafts := o.bankDrafts(t, consent, accountNum); drafts[p.body.str("id")] != 1 || len(drafts) != 1 {
		t.Errorf("drafts at the bank by payment id: %v, want exactly one for %s", drafts, p.body.str("id"))
	}
}
