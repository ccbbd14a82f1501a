package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
)

func benchFixture(b *testing.B) (*fixture, *tpp.FintechClient, tpp.ClientSecrets) {
	f := newFixtureTB(b)
	c, sec, err := f.clients.CreateClient(context.Background(), tpp.NewClient{
		Name: "bench", ReturnURLs: []string{"https://b.example/r"}, WebhookURL: "https://b.example/h"})
	if err != nil {
		b.Fatal(err)
	}
	return f, c, sec
}

// BenchmarkAuthenticate is the per-request API key check.
func BenchmarkAuthenticate(b *testing.B) {
	f, _, sec := benchFixture(b)
	ctx := context.Background()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.clients.Authenticate(ctx, sec.APIKey); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkConsentCreateActivate is two write transactions: create, then
// activate with audit, sealed token and outbox event.
func BenchmarkConsentCreateActivate(b *testing.B) {
	f, c, _ := benchFixture(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		con, err := f.consents.CreateConsent(ctx, tpp.NewConsent{ClientID: c.ID, UserRef: "u",
			Scopes: []tpp.Scope{tpp.ScopeAccounts}, ReturnURL: c.ReturnURLs[0], Actor: tpp.ActorClient(c.ID)})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.consents.TransitionConsent(ctx, tpp.ConsentTransition{ID: con.ID, To: tpp.ConsentActive,
			BunqUserID: 1, AccessToken: "tok", Actor: tpp.ActorPSU}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConsentGet is the scoped read every API call makes.
func BenchmarkConsentGet(b *testing.B) {
	f, c, _ := benchFixture(b)
	ctx := context.Background()
	con, err := f.consents.CreateConsent(ctx, tpp.NewConsent{ClientID: c.ID, UserRef: "u",
		Scopes: []tpp.Scope{tpp.ScopeAccounts}, ReturnURL: c.ReturnURLs[0], Actor: tpp.ActorClient(c.ID)})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.consents.Consent(ctx, c.ID, con.ID); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkOutboxCycle enqueues, claims and marks one delivery.
func BenchmarkOutboxCycle(b *testing.B) {
	f, c, _ := benchFixture(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.outbox.EnqueueEvent(ctx, c.ID, "bench", i); err != nil {
			b.Fatal(err)
		}
		ds, err := f.outbox.ClaimDeliveries(ctx, 1, time.Minute)
		if err != nil || len(ds) != 1 {
			b.Fatal(len(ds), err)
		}
		if err := f.outbox.MarkDelivered(ctx, ds[0].Event.ID, ds[0].LeaseToken); err != nil {
			b.Fatal(err)
		}
	}
}
