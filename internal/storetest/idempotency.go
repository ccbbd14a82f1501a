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
	f.clock.Add(90 * time.Second)
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

// A claim whose request died between claiming the key and recording its
// payment (kill -9) has sent nothing to the bank: after
// tpp.IdempotencyClaimTimeout a retry takes the key over. A claim with a
// payment keeps waiting for the poller, which settles it.
func testIdempotencyAbandonedClaim(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	c, _ := f.client(t)
	con := f.activate(t, f.consent(t, c, "u"), 1)
	fp := tpp.RequestFingerprint("POST", "/v1/consents/"+con.ID+"/payments", []byte(`{"x":1}`))
	for _, key := range []string{"dead", "k1"} {
		if _, fresh, err := f.idem.BeginIdempotent(ctx, c.ID, key, fp); err != nil || !fresh {
			t.Fatalf("claim %s: %v %v", key, fresh, err)
		}
	}
	if _, err := f.payments.CreatePayment(ctx, newDraft(c, con)); err != nil { // key k1
		t.Fatal(err)
	}
	f.clock.Add(tpp.IdempotencyClaimTimeout - time.Second)
	_, _, err := f.idem.BeginIdempotent(ctx, c.ID, "dead", fp)
	wantCode(t, err, tpp.EIdempotencyInFlight)
	f.clock.Add(time.Second)
	if rec, fresh, err := f.idem.BeginIdempotent(ctx, c.ID, "dead", fp); err != nil || !fresh || rec.State != tpp.IdempotencyInFlight {
		t.Fatalf("retry of an abandoned claim: %+v %v %v, want a fresh claim", rec, fresh, err)
	}
	_, _, err = f.idem.BeginIdempotent(ctx, c.ID, "dead", fp)
	wantCode(t, err, tpp.EIdempotencyInFlight) // the new claim holds
	_, _, err = f.idem.BeginIdempotent(ctx, c.ID, "k1", fp)
	wantCode(t, err, tpp.EIdempotencyInFlight) // its payment exists: the poller settles it
}
