package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
)

func testOutboxClaimDeliverRetry(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	c, _ := f.client(t)
	ev, err := f.outbox.EnqueueEvent(ctx, c.ID, "test.ping", map[string]string{"hello": "world"})
	if err != nil {
		t.Fatal(err)
	}

	ds, err := f.outbox.ClaimDeliveries(ctx, 10, time.Minute)
	if err != nil || len(ds) != 1 {
		t.Fatalf("claim = %v, %v", ds, err)
	}
	d := ds[0]
	if d.Event.ID != ev.ID || d.URL != c.WebhookURL || d.Attempt != 1 || string(d.Event.Payload) != string(ev.Payload) {
		t.Fatalf("delivery = %+v", d)
	}
	// Leased: a second worker gets nothing.
	if again, _ := f.outbox.ClaimDeliveries(ctx, 10, time.Minute); len(again) != 0 {
		t.Fatalf("claimed a leased delivery: %v", again)
	}
	// The lease expires (the worker died): it is claimed again, and the old
	// worker's late outcome is refused.
	f.clock.Add(time.Minute)
	ds, _ = f.outbox.ClaimDeliveries(ctx, 10, time.Minute)
	if len(ds) != 1 || ds[0].Attempt != 2 {
		t.Fatalf("reclaim = %+v", ds)
	}
	wantCode(t, f.outbox.MarkDelivered(ctx, ev.ID, d.LeaseToken), tpp.EConflict)

	// Failure: retried after the schedule's delay.
	if err := f.outbox.MarkFailed(ctx, ev.ID, ds[0].LeaseToken, "HTTP 500"); err != nil {
		t.Fatal(err)
	}
	delay, _ := tpp.WebhookRetryDelay(2)
	f.clock.Add(delay - time.Microsecond)
	if early, _ := f.outbox.ClaimDeliveries(ctx, 10, time.Minute); len(early) != 0 {
		t.Fatal("claimed before the retry delay")
	}
	f.clock.Add(time.Microsecond)
	ds, _ = f.outbox.ClaimDeliveries(ctx, 10, time.Minute)
	if len(ds) != 1 || ds[0].Attempt != 3 {
		t.Fatalf("retry claim = %+v", ds)
	}
	var lastErr string
	f.db.GetContext(context.Background(), &lastErr, `SELECT last_error FROM webhook_deliveries WHERE event_id = ?`, ev.ID)
	if lastErr != "HTTP 500" {
		t.Fatalf("last_error = %q", lastErr)
	}
	if err := f.outbox.MarkDelivered(ctx, ev.ID, ds[0].LeaseToken); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(24 * time.Hour)
	if after, _ := f.outbox.ClaimDeliveries(ctx, 10, time.Minute); len(after) != 0 {
		t.Fatal("delivered event claimed again")
	}
}

func testOutboxAbandonsAfterSchedule(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	c, _ := f.client(t)
	ev, _ := f.outbox.EnqueueEvent(ctx, c.ID, "test.ping", nil)
	attempts := 0
	for {
		ds, err := f.outbox.ClaimDeliveries(ctx, 1, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 0 {
			break
		}
		attempts++
		if err := f.outbox.MarkFailed(ctx, ev.ID, ds[0].LeaseToken, "refused"); err != nil {
			t.Fatal(err)
		}
		f.clock.Add(11 * time.Hour)
		if attempts > 20 {
			t.Fatal("never abandoned")
		}
	}
	if _, more := tpp.WebhookRetryDelay(attempts); more || attempts != 8 {
		t.Fatalf("abandoned after %d attempts", attempts)
	}
	if n := count(t, f.db, `SELECT COUNT(*) FROM webhook_deliveries WHERE abandoned_at IS NOT NULL`); n != 1 {
		t.Fatal("delivery not marked abandoned")
	}
}

func testOutboxSkipsClientsWithoutWebhooks(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	quiet, _, err := f.clients.CreateClient(ctx, tpp.NewClient{Name: "q", ReturnURLs: []string{"https://q.example/r"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.outbox.EnqueueEvent(ctx, quiet.ID, "t", nil); err != nil {
		t.Fatal(err)
	}
	loud, _ := f.client(t)
	if _, err := f.outbox.EnqueueEvent(ctx, loud.ID, "t", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.clients.RevokeClient(ctx, loud.ID); err != nil {
		t.Fatal(err)
	}
	if ds, _ := f.outbox.ClaimDeliveries(ctx, 10, time.Minute); len(ds) != 0 {
		t.Fatalf("claimed %d deliveries for clients that take none", len(ds))
	}
	if n := count(t, f.db, `SELECT COUNT(*) FROM webhook_events`); n != 2 {
		t.Fatalf("%d events kept", n)
	}
	_, err = f.outbox.EnqueueEvent(ctx, "cli_unknown", "t", nil)
	wantCode(t, err, tpp.ENotFound)
}

// TestOutboxConcurrentClaims checks that workers racing for deliveries
// never get the same one.
func testOutboxConcurrentClaims(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	c, _ := f.client(t)
	const events = 40
	for i := 0; i < events; i++ {
		if _, err := f.outbox.EnqueueEvent(ctx, c.ID, "t", i); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ds, err := f.outbox.ClaimDeliveries(ctx, 3, time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				if len(ds) == 0 {
					return
				}
				for _, d := range ds {
					mu.Lock()
					got[d.Event.ID]++
					mu.Unlock()
					if err := f.outbox.MarkDelivered(ctx, d.Event.ID, d.LeaseToken); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if len(got) != events {
		t.Fatalf("%d distinct events delivered, want %d", len(got), events)
	}
	for id, n := range got {
		if n != 1 {
			t.Fatalf("event %s claimed %d times", id, n)
		}
	}
}

func testOutboxScheduleRetry(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	c, _ := f.client(t)
	ev, _ := f.outbox.EnqueueEvent(ctx, c.ID, "t", nil)
	ds, _ := f.outbox.ClaimDeliveries(ctx, 1, time.Minute)
	next := f.clock.Now().Add(90 * time.Second) // e.g. a Retry-After
	if err := f.outbox.ScheduleRetry(ctx, ev.ID, ds[0].LeaseToken, "429", next); err != nil {
		t.Fatal(err)
	}
	wantCode(t, f.outbox.ScheduleRetry(ctx, ev.ID, ds[0].LeaseToken, "again", next), tpp.EConflict)
	f.clock.Add(89 * time.Second)
	if early, _ := f.outbox.ClaimDeliveries(ctx, 1, time.Minute); len(early) != 0 {
		t.Fatal("claimed before the caller's retry time")
	}
	f.clock.Add(time.Second)
	ds, _ = f.outbox.ClaimDeliveries(ctx, 1, time.Minute)
	if len(ds) != 1 {
		t.Fatal("not claimed at the caller's retry time")
	}
	if err := f.outbox.ScheduleRetry(ctx, ev.ID, ds[0].LeaseToken, "gone", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, f.db, `SELECT COUNT(*) FROM webhook_deliveries WHERE abandoned_at IS NOT NULL`); n != 1 {
		t.Fatal("zero time did not abandon")
	}
}
