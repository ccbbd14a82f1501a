package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
)

func testIdempotencyFlow(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	c, _ := f.client(t)
	other, _ := f.client(t)
	fp := tpp.RequestFingerprint("POST", "/v1/consents/con_x/payments", []byte(`{"amount":{"amount":"1.00","currency":"EUR"}}`))
	fp2 := tpp.RequestFingerprint("POST", "/v1/consents/con_x/payments", []byte(`{"amount":{"amount":"2.00","currency":"EUR"}}`))

	rec, fresh, err := f.idem.BeginIdempotent(ctx, c.ID, "key-1", fp)
	if err != nil || !fresh || rec.State != tpp.IdempotencyInFlight {
		t.Fatalf("first begin = %+v, %v, %v", rec, fresh, err)
	}
	_, _, err = f.idem.BeginIdempotent(ctx, c.ID, "key-1", fp)
	wantCode(t, err, tpp.EIdempotencyInFlight)
	// In flight answers say when to try again: soon while the request may
	// still run, later once only the poller can settle it.
	var te *tpp.Error
	if !errors.As(err, &te) || te.RetryAfter != 2*time.Second {
		t.Fatalf("in flight: Retry-After %v", te)
	}
	f.clock.Add(2 * time.Minute)
	_, _, err = f.idem.BeginIdempotent(ctx, c.ID, "key-1", fp)
	if !errors.As(err, &te) || te.Code != tpp.EIdempotencyInFlight || te.RetryAfter != 30*time.Second {
		t.Fatalf("long in flight: %v", err)
	}
	_, _, err = f.idem.BeginIdempotent(ctx, c.ID, "key-1", fp2)
	wantCode(t, err, tpp.EIdempotencyKeyReused)
	// Keys are per client.
	if _, fresh, err := f.idem.BeginIdempotent(ctx, other.ID, "key-1", fp2); err != nil || !fresh {
		t.Fatalf("other client's key: %v, %v", fresh, err)
	}

	if err := f.idem.CompleteIdempotent(ctx, c.ID, "key-1", 201, []byte(`{"id":"pay_1"}`)); err != nil {
		t.Fatal(err)
	}
	wantCode(t, f.idem.CompleteIdempotent(ctx, c.ID, "key-1", 201, nil), tpp.EConflict)
	wantCode(t, f.idem.ReleaseIdempotent(ctx, c.ID, "key-1"), tpp.EConflict)
	rec, fresh, err = f.idem.BeginIdempotent(ctx, c.ID, "key-1", fp)
	if err != nil || fresh || rec.State != tpp.IdempotencyDone || rec.ResponseStatus != 201 || string(rec.ResponseBody) != `{"id":"pay_1"}` {
		t.Fatalf("replay = %+v, %v, %v", rec, fresh, err)
	}
	_, _, err = f.idem.BeginIdempotent(ctx, c.ID, "key-1", fp2)
	wantCode(t, err, tpp.EIdempotencyKeyReused)

	// Release frees an in-flight key for a retry.
	if _, fresh, _ := f.idem.BeginIdempotent(ctx, c.ID, "key-2", fp); !fresh {
		t.Fatal("key-2 not fresh")
	}
	if err := f.idem.ReleaseIdempotent(ctx, c.ID, "key-2"); err != nil {
		t.Fatal(err)
	}
	if _, fresh, err := f.idem.BeginIdempotent(ctx, c.ID, "key-2", fp2); err != nil || !fresh {
		t.Fatalf("after release: %v, %v", fresh, err)
	}

	// After 24 hours a key is forgotten.
	f.clock.Add(tpp.IdempotencyTTL)
	if _, fresh, err := f.idem.BeginIdempotent(ctx, c.ID, "key-1", fp2); err != nil || !fresh {
		t.Fatalf("expired key: %v, %v", fresh, err)
	}
	n, err := f.idem.PurgeIdempotency(ctx, f.clock.Now())
	if err != nil || n != 2 { // other's key-1 and key-2; the renewed key-1 lives on
		t.Fatalf("purged %d, %v; want 2", n, err)
	}

	_, _, err = f.idem.BeginIdempotent(ctx, c.ID, "", fp)
	wantCode(t, err, tpp.EInvalid)
	_, _, err = f.idem.BeginIdempotent(ctx, c.ID, "has space", fp)
	wantCode(t, err, tpp.EInvalid)
}

func testIdempotencyConcurrentBegin(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	c, _ := f.client(t)
	fp := tpp.RequestFingerprint("POST", "/x", nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	fresh := 0
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, ok, err := f.idem.BeginIdempotent(ctx, c.ID, "same", fp)
			if err != nil && tpp.ErrorCode(err) != tpp.EIdempotencyInFlight {
				t.Errorf("begin: %v", err)
			}
			if ok {
				mu.Lock()
				fresh++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if fresh != 1 {
		t.Fatalf("%d callers got to do the work, want 1", fresh)
	}
}
