package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
)

// Bench runs the store benchmarks against open (figures are printed by
// go test -bench, never asserted).
func Bench(b *testing.B, open Open) {
	for _, c := range []struct {
		name string
		fn   func(*testing.B, Stores, *tpp.FintechClient, tpp.ClientSecrets)
	}{
		{"Authenticate", benchAuthenticate},
		{"ConsentCreateActivate", benchConsentCreateActivate},
		{"ConsentGet", benchConsentGet},
		{"OutboxCycle", benchOutboxCycle},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := open(b, tpp.SystemClock{}, Keyring(b, "k1", 7))
			cl, sec, err := s.Clients.CreateClient(context.Background(), tpp.NewClient{
				Name: "bench", ReturnURLs: []string{"https://b.example/r"}, WebhookURL: "https://b.example/h"})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			c.fn(b, s, cl, sec)
		})
	}
}

// benchAuthenticate is the per-request API key check.
func benchAuthenticate(b *testing.B, s Stores, _ *tpp.FintechClient, sec tpp.ClientSecrets) {
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Clients.Authenticate(ctx, sec.APIKey); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// benchConsentCreateActivate is two write transactions: create, then
// activate with audit, sealed token and outbox event.
func benchConsentCreateActivate(b *testing.B, s Stores, c *tpp.FintechClient, _ tpp.ClientSecrets) {
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		con, err := s.Consents.CreateConsent(ctx, tpp.NewConsent{ClientID: c.ID, UserRef: "u",
			Scopes: []tpp.Scope{tpp.ScopeAccounts}, ReturnURL: c.ReturnURLs[0], Actor: tpp.ActorClient(c.ID)})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Consents.TransitionConsent(ctx, tpp.ConsentTransition{ID: con.ID, To: tpp.ConsentActive,
			BunqUserID: 1, AccessToken: "tok", Actor: tpp.ActorPSU}); err != nil {
			b.Fatal(err)
		}
	}
}

// benchConsentGet is the scoped read every API call makes.
func benchConsentGet(b *testing.B, s Stores, c *tpp.FintechClient, _ tpp.ClientSecrets) {
	ctx := context.Background()
	con, err := s.Consents.CreateConsent(ctx, tpp.NewConsent{ClientID: c.ID, UserRef: "u",
		Scopes: []tpp.Scope{tpp.ScopeAccounts}, ReturnURL: c.ReturnURLs[0], Actor: tpp.ActorClient(c.ID)})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Consents.Consent(ctx, c.ID, con.ID); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// benchOutboxCycle enqueues, claims and marks one delivery.
func benchOutboxCycle(b *testing.B, s Stores, c *tpp.FintechClient, _ tpp.ClientSecrets) {
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		if _, err := s.Outbox.EnqueueEvent(ctx, c.ID, "bench", i); err != nil {
			b.Fatal(err)
		}
		ds, err := s.Outbox.ClaimDeliveries(ctx, 1, time.Minute)
		if err != nil || len(ds) != 1 {
			b.Fatal(len(ds), err)
		}
		if err := s.Outbox.MarkDelivered(ctx, ds[0].Event.ID, ds[0].LeaseToken); err != nil {
			b.Fatal(err)
		}
	}
}
