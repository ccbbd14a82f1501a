package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/bunqtpp/tpp/internal/testenv"
)

// flakyReceiver is a fintech webhook endpoint that is down for the first
// delivery of every event and back for the retries: the outage a receiver
// comes back from.
type flakyReceiver struct {
	URL string

	mu        sync.Mutex
	refused   map[string]int // webhook-id → attempts refused
	delivered map[string]int // webhook-id → attempts accepted
	sequences []int64        // of accepted deliveries, in arrival order
	types     map[string]int // of accepted deliveries
}

func newFlakyReceiver(t *testing.T) *flakyReceiver {
	f := &flakyReceiver{refused: map[string]int{}, delivered: map[string]int{}, types: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev struct {
			Type     string `json:"type"`
			Sequence int64  `json:"sequence"`
		}
		id := r.Header.Get("Webhook-Id")
		if json.Unmarshal(body, &ev) != nil || id == "" {
			http.Error(w, "bad webhook", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.refused[id] == 0 {
			f.refused[id]++
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		f.delivered[id]++
		f.sequences = append(f.sequences, ev.Sequence)
		f.types[ev.Type]++
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL + "/hooks"
	return f
}

func (f *flakyReceiver) count(typ string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.types[typ]
}

// TestFaultWebhookReceiverComesBack: the fintech's endpoint refuses the
// first delivery of each event and takes the retry. Every event is
// delivered exactly once after its refusal, numbered by the client's
// sequence without gaps, whatever order the retries arrive in; the store
// marks each delivered; the bank holds the one payment made.
func TestFaultWebhookReceiverComesBack(t *testing.T) {
	testenv.Heavy(t)
	t.Parallel()
	hooks := newFlakyReceiver(t)
	o := newOpsHarness(t, opsOptions{webhookURL: hooks.URL})
	o.serve(t)
	con := o.activeConsent(t, "accounts", "payments")
	acct := o.firstAccount(t, con)
	p := o.createPayment(con, "hooks-back-1", paymentBody(acct, o.payee(t).IBAN, "3.30", "Receiver back"))
	if p.Status != http.StatusCreated {
		t.Fatalf("payment: %d %v", p.Status, p.Body)
	}
	o.Env.AcceptDraftPayment(t, bankDraftID(p.Body))

	// The first retry comes 5 s after a refusal (tpp.WebhookRetryDelay).
	waitUntil(t, 60*time.Second, "consent.updated and the executed payment.updated delivered", func() bool {
		return hooks.count("consent.updated") > 0 && hooks.count("payment.updated") > 0 &&
			countRows(t, o.DBPath, `SELECT count(*) FROM webhook_deliveries WHERE delivered_at IS NULL`) == 0
	})

	hooks.mu.Lock()
	defer hooks.mu.Unlock()
	for id, n := range hooks.delivered {
		if n != 1 || hooks.refused[id] != 1 {
			t.Errorf("event %s: refused %d, delivered %d times; want 1 and 1", id, hooks.refused[id], n)
		}
	}
	stored := countRows(t, o.DBPath, `SELECT count(*) FROM webhook_events`)
	if len(hooks.delivered) != stored {
		t.Errorf("%d events delivered, %d stored", len(hooks.delivered), stored)
	}
	seqs := append([]int64(nil), hooks.sequences...)
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	for i, s := range seqs {
		if s != int64(i+1) {
			t.Fatalf("sequences %v (arrival order %v): want 1..%d without gaps", seqs, hooks.sequences, len(seqs))
		}
	}
	if n := countRows(t, o.DBPath, `SELECT count(*) FROM webhook_deliveries WHERE attempts <> 2`); n != 0 {
		t.Errorf("%d deliveries took other than 2 attempts", n)
	}
	if n := o.Env.Stats(t)[opsDraftCreate]; n != 1 {
		t.Errorf("the bank holds %d draft creates, want 1", n)
	}
}
