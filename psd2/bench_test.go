package psd2_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/bunqtpp/tpp/internal/banktest"
	"github.com/bunqtpp/tpp/psd2"
	"github.com/bunqtpp/tpp/sandbox"
)

var benchBody = []byte(`{"entries":[{"amount":{"value":"12.50","currency":"EUR"},"counterparty_alias":{"type":"IBAN","value":"NL02ABNA0123456789","name":"Shop"},"description":"order 42"}],"number_of_required_accepts":1}`)

func BenchmarkSign(b *testing.B) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := psd2.Sign(key, benchBody); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	sig, _ := psd2.Sign(key, benchBody)
	b.ReportAllocs()
	for b.Loop() {
		if err := psd2.Verify(&key.PublicKey, benchBody, sig); err != nil {
			b.Fatal(err)
		}
	}
}

func benchClient(b *testing.B, apiURL string, signAll bool) *psd2.Client {
	c, err := psd2.New(psd2.Options{BaseURL: apiURL, SignAll: signAll, Budget: noBudget{},
		HTTPClient: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkListAccounts is one list-accounts round trip to the in-process
// emulator: client encode/sign, HTTP, emulator work (incl. its response
// signature), client verification and decoding.
func BenchmarkListAccounts(b *testing.B) {
	for _, mode := range []struct {
		name    string
		signAll bool
	}{{"default", false}, {"SignAll", true}} {
		b.Run(mode.name, func(b *testing.B) {
			env := banktest.Start(b)
			c := benchClient(b, env.APIURL, mode.signAll)
			ctx := context.Background()
			key, _ := rsa.GenerateKey(rand.Reader, 2048)
			bc, err := c.NewAPIKeyContext(ctx, env.Users(b)[0].APIKey, psd2.ContextOptions{Key: key})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.ListMonetaryAccounts(ctx, bc, psd2.Page{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNewContext creates an API-key context (installation,
// device-server, session-server) with a pre-generated key, as the key pool
// provides; key generation itself is ~50-150 ms more.
func BenchmarkNewContext(b *testing.B) {
	env := banktest.Start(b)
	c := benchClient(b, env.APIURL, false)
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	apiKey := env.Users(b)[0].APIKey
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.NewAPIKeyContext(ctx, apiKey, psd2.ContextOptions{Key: key}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClientCPUShare splits the process CPU (getrusage) of a
// sequential list-accounts round trip into the emulator's share and the
// rest. The emulator's share is measured by replaying the recorded request
// straight into its handler (no HTTP, no client) the same number of times;
// everything else (the client, both HTTP stacks, GC) is charged to the
// client, so client-cpu-% is an upper bound.
func BenchmarkClientCPUShare(b *testing.B) {
	for _, mode := range []struct {
		name    string
		signAll bool
	}{{"default", false}, {"SignAll", true}} {
		b.Run(mode.name, func(b *testing.B) {
			bank, err := sandbox.New(sandbox.Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer bank.Close()
			api := bank.API()
			srv := httptest.NewServer(api)
			defer srv.Close()
			rec := &recorder{next: &http.Transport{MaxIdleConnsPerHost: 4}}
			c, err := psd2.New(psd2.Options{BaseURL: srv.URL, SignAll: mode.signAll, Budget: noBudget{}, HTTPClient: &http.Client{Transport: rec}})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			key, _ := rsa.GenerateKey(rand.Reader, 2048)
			var users []banktest.User
			(&banktest.Env{APIURL: srv.URL}).Control(b, http.MethodGet, "/_sandbox/users", nil, &users)
			bc, err := c.NewAPIKeyContext(ctx, users[0].APIKey, psd2.ContextOptions{Key: key})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := c.ListMonetaryAccounts(ctx, bc, psd2.Page{}); err != nil {
				b.Fatal(err)
			}
			all := rec.all()
			sample := all[len(all)-1]

			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				if _, err := c.ListMonetaryAccounts(ctx, bc, psd2.Page{}); err != nil {
					b.Fatal(err)
				}
			}
			roundTrip := cpuTime() - cpu0
			b.StopTimer()

			cpu0 = cpuTime()
			for i := 0; i < b.N; i++ {
				req := httptest.NewRequest(sample.Method, sample.URL, bytes.NewReader(sample.Body))
				req.Header = sample.Header.Clone()
				w := httptest.NewRecorder()
				api.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("replay: %d %s", w.Code, w.Body)
				}
			}
			handler := cpuTime() - cpu0
			if roundTrip > 0 {
				client := max(roundTrip-handler, 0)
				b.ReportMetric(float64(client)/float64(b.N), "client-cpu-ns/op")
				b.ReportMetric(float64(handler)/float64(b.N), "bank-cpu-ns/op")
				b.ReportMetric(100*float64(client)/float64(roundTrip), "client-cpu-%")
			}
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
