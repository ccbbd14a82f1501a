package webhook_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/webhook"
)

func BenchmarkSign(b *testing.B) {
	secret, _ := webhook.NewSecret()
	body := []byte(testPayload)
	ts := time.Now()
	for b.Loop() {
		if _, err := webhook.Sign(secret, "evt_abcdefghijklmnop", ts, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	secret, _ := webhook.NewSecret()
	body := []byte(testPayload)
	now := time.Now()
	sig, _ := webhook.Sign(secret, "evt_abcdefghijklmnop", now, body)
	h := http.Header{}
	h.Set(webhook.HeaderID, "evt_abcdefghijklmnop")
	h.Set(webhook.HeaderTimestamp, fmt.Sprint(now.Unix()))
	h.Set(webhook.HeaderSignature, sig)
	for b.Loop() {
		if err := webhook.Verify(secret, h, body, now, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDispatchSQLite measures end-to-end throughput: events enqueued
// in a real SQLite outbox, claimed, signed, POSTed to a real HTTP receiver
// and marked delivered. Reported as events/s.
func BenchmarkDispatchSQLite(b *testing.B) {
	clock := tpp.SystemClock{}
	env := openSQLEnv(b, filepath.Join(b.TempDir(), "tpp.db"), clock)
	rc := newReceiver(b, nil)
	clientID, _ := env.newClient(b, rc.URL)
	for b.Loop() {
		b.StopTimer()
		const n = 200
		for i := range n {
			if _, err := env.outbox.EnqueueEvent(context.Background(), clientID, tpp.EventPaymentUpdated,
				tpp.PaymentEventData{PaymentID: fmt.Sprint("pay_", i), Status: "executed"}); err != nil {
				b.Fatal(err)
			}
		}
		d, err := webhook.NewDispatcher(env.store, webhook.Options{Clock: clock, PollInterval: 5 * time.Millisecond})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		b.StartTimer()
		start := time.Now()
		go func() { done <- d.Run(ctx) }()
		d.Notify()
		for {
			var left int
			if err := env.db.GetContext(ctx, &left, `SELECT count(*) FROM webhook_deliveries WHERE delivered_at IS NULL`); err != nil {
				b.Fatal(err)
			}
			if left == 0 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		el := time.Since(start)
		cancel()
		<-done
		b.ReportMetric(float64(n)/el.Seconds(), "events/s")
	}
}
