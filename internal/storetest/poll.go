package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
)

// The poller's queue: payments without a bank id first, then those whose
// idempotency key is in flight, then the rest oldest due first; a payment
// scheduled later is not due until then, and a final one never again.
func testDuePaymentsOrderAndSchedule(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	c, _ := f.client(t)
	con := f.activate(t, f.consent(t, c, "u"), 1)
	mk := func(key string, bunqID int64, inFlight bool) *tpp.Payment {
		t.Helper()
		in := newDraft(c, con)
		in.IdempotencyKey, in.BunqID = key, bunqID
		p, err := f.payments.CreatePayment(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.idem.BeginIdempotent(ctx, c.ID, key, "fp-"+key); err != nil {
			t.Fatal(err)
		}
		if !inFlight {
			if err := f.idem.CompleteIdempotent(ctx, c.ID, key, 201, []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	plain1 := mk("plain-1", 101, false)
	plain2 := mk("plain-2", 102, false)
	keyed := mk("keyed", 103, true)
	unbanked := mk("unbanked", 0, true)

	now := f.clock.Now()
	ids := func(due []tpp.DuePayment) []string {
		var out []string
		for _, d := range due {
			out = append(out, d.Payment.ID)
		}
		return out
	}
	due, err := f.payments.DuePayments(ctx, now, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(due); len(got) != 3 || got[0] != unbanked.ID || got[1] != keyed.ID || !due[0].KeyInFlight || !due[1].KeyInFlight || due[2].KeyInFlight {
		t.Fatalf("first batch %v %+v; want the unbanked, the in-flight key, then one more", got, due)
	}
	if len(due[1].Payment.StatusHistory) != 1 {
		t.Fatalf("due payment without its history: %+v", due[1].Payment)
	}
	if err := f.payments.ScheduleChecks(ctx, now.Add(time.Minute), ids(due)...); err != nil {
		t.Fatal(err)
	}
	rest, err := f.payments.DuePayments(ctx, now, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 1 || (rest[0].Payment.ID != plain1.ID && rest[0].Payment.ID != plain2.ID) || rest[0].Payment.ID == due[2].Payment.ID {
		t.Fatalf("second batch %v", ids(rest))
	}
	if _, err := f.payments.TransitionPayment(ctx, tpp.PaymentTransition{ID: unbanked.ID, To: tpp.PaymentFailed, Actor: tpp.ActorSystem}); err != nil {
		t.Fatal(err)
	}
	later, err := f.payments.DuePayments(ctx, now.Add(time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(later); len(got) != 3 {
		t.Fatalf("a minute later %v, want the three still pending", got)
	}
}

// While another connection blocks writes, the write probe fails within its
// short wait, and a write fails (after the store's lock wait) with an error
// the store's Unavailable recognises (503). Released, both work again.
func testWriteLockHeldElsewhere(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	if err := f.ProbeWrite(ctx, 100*time.Millisecond); err != nil {
		t.Fatalf("probe on a free database: %v", err)
	}
	release := f.HoldWriteLock(t)
	if err := f.ProbeWrite(ctx, 100*time.Millisecond); err == nil || !f.Unavailable(err) {
		t.Fatalf("probe under a held lock: %v", err)
	}
	_, err := f.idem.PurgeIdempotency(ctx, f.clock.Now())
	if err == nil || !f.Unavailable(err) {
		t.Fatalf("write under a held lock: %v (Unavailable %v)", err, f.Unavailable(err))
	}
	release()
	if err := f.ProbeWrite(ctx, 100*time.Millisecond); err != nil {
		t.Fatalf("probe after release: %v", err)
	}
	if _, err := f.idem.PurgeIdempotency(ctx, f.clock.Now()); err != nil {
		t.Fatalf("write after release: %v", err)
	}
	if f.Unavailable(nil) || f.Unavailable(tpp.Errorf(tpp.EConflict, "x")) {
		t.Fatal("Unavailable recognises errors that do not pass")
	}
}

// Activation records the browser the consent was granted from; a
// re-authorization replaces it.
func testConsentRecordsGrantOrigin(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	c, _ := f.client(t)
	con := f.consent(t, c, "u")
	grant := func(ip, ua string) *tpp.Consent {
		t.Helper()
		out, err := f.consents.TransitionConsent(ctx, tpp.ConsentTransition{
			ID: con.ID, To: tpp.ConsentActive, BunqUserID: 1, BunqUserName: "Jane Doe",
			AccessToken: "tok", Actor: tpp.ActorPSU, PSUIP: ip, PSUUserAgent: ua,
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := grant("192.0.2.7", "Firefox/1"); got.GrantedIP != "192.0.2.7" || got.GrantedUserAgent != "Firefox/1" {
		t.Fatalf("granted from %q %q", got.GrantedIP, got.GrantedUserAgent)
	}
	if _, err := f.consents.TransitionConsent(ctx, tpp.ConsentTransition{
		ID: con.ID, To: tpp.ConsentReauthRequired, Actor: tpp.ActorSystem,
	}); err != nil {
		t.Fatal(err)
	}
	grant("2001:db8::1", "Chrome/2")
	got, err := f.consents.Consent(ctx, c.ID, con.ID)
	if err != nil || got.GrantedIP != "2001:db8::1" || got.GrantedUserAgent != "Chrome/2" {
		t.Fatalf("re-granted: %+v, %v", got, err)
	}
}
