package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
)

// The poller's queue: payments without a bank id first, then those whose
// idempotency key is in flight, then the rest oldest due first; a payment
// scheduled later is not due until then, and a final one never again.
func TestDuePaymentsOrderAndSchedule(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	c, _ := f.client(t)
	con := f.activate(t, f.consent(t, c, "u"), 1)
	idem := NewIdempotencyStore(f.db)
	mk := func(key string, bunqID int64, inFlight bool) *tpp.Payment {
		t.Helper()
		in := newDraft(c, con)
		in.IdempotencyKey, in.BunqID = key, bunqID
		p, err := f.payments.CreatePayment(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := idem.BeginIdempotent(ctx, c.ID, key, "fp-"+key); err != nil {
			t.Fatal(err)
		}
		if !inFlight {
			if err := idem.CompleteIdempotent(ctx, c.ID, key, 201, []byte(`{}`)); err != nil {
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

func newDraft(c *tpp.FintechClient, con *tpp.Consent) tpp.NewPayment {
	return tpp.NewPayment{
		ConsentID: con.ID, ClientID: c.ID, Kind: tpp.PaymentDraft, AccountID: 12, AmountMinor: 1250, Currency: "EUR",
		CounterpartyIBAN: "nl91 abna 0417 1643 00", CounterpartyName: "Shop", Description: "order 1",
		IdempotencyKey: "k1", Actor: tpp.ActorClient(c.ID), RequestID: "req-pay",
	}
}
