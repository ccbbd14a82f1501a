package oauth

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/internal/banktest"
	"github.com/bunqtpp/tpp/internal/testenv"
	"github.com/bunqtpp/tpp/sandbox"
)

// emulatorEnv makes the test binary an emulated bank when set, so a
// benchmark can run the bank in another process and measure its own CPU
// time without the bank's.
const emulatorEnv = "OAUTH_TEST_EMULATOR_PROCESS"

func TestMain(m *testing.M) {
	if os.Getenv(emulatorEnv) == "1" {
		runEmulatorProcess()
		return
	}
	testenv.Main(m)
}

func runEmulatorProcess() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := sandbox.Start(ctx, sandbox.Config{}, "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(banktest.Env{APIURL: srv.APIURL, OAuthURL: srv.OAuthURL, TokenURL: srv.TokenURL})
	// Run until the parent closes stdin (or dies).
	go func() { _, _ = bufio.NewReader(os.Stdin).ReadByte(); stop() }()
	<-ctx.Done()
	_ = srv.Shutdown(context.Background())
}

// startEmulatorProcess runs the emulated bank in a child process.
func startEmulatorProcess(tb testing.TB) *banktest.Env {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), emulatorEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	var env banktest.Env
	if err := json.NewDecoder(out).Decode(&env); err != nil {
		tb.Fatalf("emulator process: %v", err)
	}
	return &env
}

// fixedKeys hands out pre-generated keys, each once: a key pool that is
// always warm, with no background generation skewing the CPU figures.
type fixedKeys struct {
	keys []*rsa.PrivateKey
	n    atomic.Int64
}

func newFixedKeys(tb testing.TB, n int) *fixedKeys {
	f := &fixedKeys{}
	for range n {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			tb.Fatal(err)
		}
		f.keys = append(f.keys, k)
	}
	return f
}

func (f *fixedKeys) Get(context.Context) (*rsa.PrivateKey, error) {
	i := int(f.n.Add(1)) - 1
	if i >= len(f.keys) {
		return nil, fmt.Errorf("fixedKeys: all %d keys used", len(f.keys))
	}
	return f.keys[i], nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
func sysTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Stime.Nano())
}

// BenchmarkCallback measures /oauth/callback's work from the code exchange
// to a ready, stored bunq context and an active consent (state check,
// token exchange, installation, device, session, user read, sealing into
// Redis and SQLite). The bank runs in another process: cpu-ms/op is this
// process's CPU only (sys-ms/op its kernel part); ns/op is wall time
// including the bank's. With -cpuprofile, the samples labelled
// phase=callback are the CPU the callback's own goroutines used, without
// the runtime's scheduling and GC around them:
// go tool pprof -tagfocus phase=callback.
func BenchmarkCallback(b *testing.B) {
	env := startEmulatorProcess(b)
	h := newHarnessWith(b, env, newFixedKeys(b, b.N+1))
	ctx := context.Background()
	var cpu, wall, sys time.Duration
	runtime.GC()
	b.ResetTimer()
	b.StopTimer()
	for range b.N {
		c, err := h.svc.CreateConsent(ctx, h.client, CreateConsentRequest{UserRef: "bench", Scopes: []string{"accounts"}, ReturnURL: returnURL0}, "")
		if err != nil {
			b.Fatal(err)
		}
		au, cookie, err := h.svc.Begin(ctx, c.ID)
		if err != nil {
			b.Fatal(err)
		}
		u, _ := url.Parse(au)
		cb := h.decide(u, "approve")
		cbu, _ := url.Parse(cb)
		req := CallbackRequest{State: cbu.Query().Get("state"), Code: cbu.Query().Get("code"),
			Cookie: func(string) string { return cookie.Value }}
		// psd2 admits 5 installations per 3 s per process (bunq's limit for
		// calls without an installation); wait here, outside the measurement.
		time.Sleep(650 * time.Millisecond)
		b.StartTimer()
		s0 := sysTime()
		t0, c0 := time.Now(), cpuTime()
		var res *CallbackResult
		pprof.Do(ctx, pprof.Labels("phase", "callback"), func(ctx context.Context) { res, err = h.svc.Callback(ctx, req) })
		c1, t1 := cpuTime(), time.Now()
		sys += sysTime() - s0
		b.StopTimer()
		cpu += c1 - c0
		wall += t1.Sub(t0)
		if err != nil || res.Redirect == "" {
			b.Fatalf("callback: %v", err)
		}
		if got := h.consent(c.ID); got.Status != tpp.ConsentActive {
			b.Fatalf("consent %s", got.Status)
		}
	}
	if os.Getenv("BENCH_LOGS") != "" {
		fmt.Fprintln(os.Stderr, h.logs.String())
	}
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(wall.Microseconds())/1000/float64(b.N), "wall-ms/op")
	b.ReportMetric(float64(sys.Microseconds())/1000/float64(b.N), "sys-ms/op")
}
