package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/internal/storetest"
)

// Replicas poll one table: two rounds at the same moment take disjoint
// payments (claimed with SKIP LOCKED and moved on), together all of them.
func TestDuePaymentsClaimedOncePerRound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := storetest.NewClock()
	s := openStores(t, clock, storetest.Keyring(t, "k1", 7))
	c, _, err := s.Clients.CreateClient(ctx, tpp.NewClient{Name: "Acme", ReturnURLs: []string{"https://acme.example/r"}})
	if err != nil {
		t.Fatal(err)
	}
	con, err := s.Consents.CreateConsent(ctx, tpp.NewConsent{ClientID: c.ID, UserRef: "u",
		Scopes: []tpp.Scope{tpp.ScopePayments}, ReturnURL: c.ReturnURLs[0], Actor: tpp.ActorClient(c.ID)})
	if err != nil {
		t.Fatal(err)
	}
	if con, err = s.Consents.TransitionConsent(ctx, tpp.ConsentTransition{ID: con.ID, To: tpp.ConsentActive,
		BunqUserID: 1, AccessToken: "token", Actor: tpp.ActorPSU}); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for i := range 6 {
		p, err := s.Payments.CreatePayment(ctx, tpp.NewPayment{
			ConsentID: con.ID, ClientID: c.ID, Kind: tpp.PaymentDraft, AccountID: 12, AmountMinor: 100, Currency: "EUR",
			CounterpartyIBAN: "NL91ABNA0417164300", CounterpartyName: "Shop", BunqID: int64(200 + i),
			IdempotencyKey: fmt.Sprint("k", i), Actor: tpp.ActorClient(c.ID),
		})
		if err != nil {
			t.Fatal(err)
		}
		want[p.ID] = true
	}
	now := clock.Now()
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			due, err := s.Payments.DuePayments(ctx, now, 3)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, d := range due {
				got[d.Payment.ID]++
			}
		}()
	}
	wg.Wait()
	if len(got) != len(want) {
		t.Fatalf("two rounds took %d distinct payments %v, want all %d", len(got), got, len(want))
	}
	for id, n := range got {
		if n != 1 || !want[id] {
			t.Fatalf("payment %s taken %d times", id, n)
		}
	}
	if again, err := s.Payments.DuePayments(ctx, now, 10); err != nil || len(again) != 0 {
		t.Fatalf("claimed payments due again at once: %d, %v", len(again), err)
	}
}
