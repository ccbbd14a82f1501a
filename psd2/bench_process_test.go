package psd2_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bunqtpp/tpp/internal/banktest"
	"github.com/bunqtpp/tpp/psd2"
	"github.com/bunqtpp/tpp/sandbox"
)

// bankProcessEnv makes the test binary serve the emulator instead of
// running tests, so the benchmark's process holds the client alone.
const bankProcessEnv = "PSD2_BENCH_BANK_PROCESS"

// serveBankProcess runs the emulator (as `tpp sandbox` does), prints its API
// URL on stdout and serves until stdin is closed (the benchmark ended).
func serveBankProcess() int {
	srv, err := sandbox.Start(context.Background(), sandbox.Config{Strict: true}, "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(srv.APIURL)
	_, _ = io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	return 0
}

// startBankProcess starts the emulator in a child process and returns its
// API URL; the child ends with the benchmark.
func startBankProcess(b *testing.B) string {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), bankProcessEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("emulator process: %v", err)
	}
	return strings.TrimSpace(line)
}

// BenchmarkListAccountsProcess is the figure "client CPU per signed list
// call": list-accounts against the emulator running in another process,
// with the process CPU time (getrusage: user+sys) of this process divided
// by the calls as client-cpu-ns/op. Every answer is verified with the
// bank's key, as always. Wall time per op is noisy on a shared machine;
// the CPU figure is the one to read.
func BenchmarkListAccountsProcess(b *testing.B) {
	for _, mode := range []struct {
		name    string
		signAll bool
	}{{"default", false}, {"SignAll", true}} {
		b.Run(mode.name, func(b *testing.B) {
			env := &banktest.Env{APIURL: startBankProcess(b)}
			c := benchClient(b, env.APIURL, mode.signAll)
			ctx := context.Background()
			key, _ := rsa.GenerateKey(rand.Reader, 2048)
			bc, err := c.NewAPIKeyContext(ctx, env.Users(b)[0].APIKey, psd2.ContextOptions{Key: key})
			if err != nil {
				b.Fatal(err)
			}
			// Warm the connection and the session before measuring.
			if _, err := c.ListMonetaryAccounts(ctx, bc, psd2.Page{}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				if _, err := c.ListMonetaryAccounts(ctx, bc, psd2.Page{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "client-cpu-ns/op")
		})
	}
}
