package main

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestLoadFairSinglePayments is a load test, not a unit test: it runs only
// with TPP_LOADTEST=1 and prints figures; it asserts only that every
// payment is created.
//
//	TPP_LOADTEST=1 go test -run TestLoadFairSinglePayments -v ./cmd/tpp/
//
// Single payments are made with the TPP's own installation, so all clients
// share one bank budget (5 per 3.2 s). A quiet client creates a few single
// payments alone, then while a noisy client sends 30 at once; with the
// fair budget the quiet client's latency grows by about one admission, not
// by the noisy client's whole queue (about 19 s).
func TestLoadFairSinglePayments(t *testing.T) {
	if os.Getenv("TPP_LOADTEST") == "" {
		t.Skip("a load test: set TPP_LOADTEST=1 to run it")
	}
	h := newOpsHarness(t, opsOptions{serveFlags: []string{"--client-rate-limit", "off"}})
	h.serve(t)
	quietKey, _ := h.createClient("Quiet Fintech", h.ReturnURL)
	debtor, creditor := h.person().Accounts[0].IBAN, h.payee(t).IBAN
	var seq int
	var mu sync.Mutex
	pay := func(key string) time.Duration {
		mu.Lock()
		seq++
		idem := fmt.Sprintf("load-%d", seq)
		mu.Unlock()
		start := time.Now()
		r := h.apiAs(key, http.MethodPost, "/v1/single-payments", map[string]any{
			"debtor":   map[string]string{"iban": debtor, "name": "Debtor"},
			"creditor": map[string]string{"iban": creditor, "name": "Creditor"},
			"amount":   map[string]string{"amount": "1.00", "currency": "EUR"}, "description": "Load", "return_url": h.ReturnURL,
		}, http.Header{"Idempotency-Key": {idem}})
		if r.Status != http.StatusCreated {
			t.Errorf("single payment: %d %v", r.Status, r.Body)
		}
		return time.Since(start)
	}
	quiet := func(n int) []time.Duration {
		var out []time.Duration
		for range n {
			out = append(out, pay(quietKey))
		}
		slices.Sort(out)
		return out
	}
	const quietCalls, noisyCalls = 4, 30
	alone := quiet(quietCalls)
	time.Sleep(4 * time.Second) // let the budget's window empty

	var wg sync.WaitGroup
	noisyStart := time.Now()
	for range noisyCalls {
		wg.Go(func() { pay(h.APIKey) })
	}
	time.Sleep(500 * time.Millisecond) // the noisy queue builds up first
	withNoisy := quiet(quietCalls)
	wg.Wait()
	noisyTotal := time.Since(noisyStart)

	t.Logf("quiet client, %d single payments alone:      max %s, all %v", quietCalls, alone[len(alone)-1].Round(time.Millisecond), round(alone))
	t.Logf("quiet client beside %d parallel from another: max %s, all %v", noisyCalls, withNoisy[len(withNoisy)-1].Round(time.Millisecond), round(withNoisy))
	t.Logf("the noisy client's %d payments took %s in all", noisyCalls, noisyTotal.Round(time.Millisecond))
}

func round(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}
