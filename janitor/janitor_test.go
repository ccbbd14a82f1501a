package janitor_test

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/consent"
	"github.com/bunqtpp/tpp/janitor"
	"github.com/bunqtpp/tpp/seal"
	"github.com/bunqtpp/tpp/sqlite"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// purged records which consents' bank contexts were purged; the bank
// context store is not under test here (the gate only purges when it
// applies a deadline).
type purged struct {
	consent.BankContexts
	mu  sync.Mutex
	ids []string
}

func (p *purged) Purge(_ context.Context, id string) error {
	p.mu.Lock()
	p.ids = append(p.ids, id)
	p.mu.Unlock()
	return nil
}

func TestSweepAppliesDeadlines(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)}
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "tpp.db"), clk)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mk := make([]byte, 32)
	_, _ = rand.Read(mk)
	kr, _ := seal.NewKeyring(seal.Key{ID: "k1", Key: mk})
	clients := sqlite.NewClientService(db, kr)
	consents := sqlite.NewConsentService(db, kr)
	idem := sqlite.NewIdempotencyStore(db)
	cl, _, err := clients.CreateClient(ctx, tpp.NewClient{Name: "Acme", ReturnURLs: []string{"https://app.example/back"}})
	if err != nil {
		t.Fatal(err)
	}
	newConsent := func() *tpp.Consent {
		c, err := consents.CreateConsent(ctx, tpp.NewConsent{ClientID: cl.ID, UserRef: "u1", Scopes: []tpp.Scope{tpp.ScopeAccounts},
			ReturnURL: "https://app.example/back", Actor: tpp.ActorClient(cl.ID)})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	pending, active := newConsent(), newConsent()
	if _, err := consents.TransitionConsent(ctx, tpp.ConsentTransition{ID: active.ID, To: tpp.ConsentActive, BunqUserID: 7,
		BunqUserName: "Anna", AccessToken: "tok", Actor: tpp.ActorPSU}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := idem.BeginIdempotent(ctx, cl.ID, "key-1", "fp"); err != nil {
		t.Fatal(err)
	}
	p := &purged{}
	gate, err := consent.NewGate(consent.Config{Store: consents, BankContexts: p, Clock: clk,
		AuthorizeURL: func(id string) string { return "https://tpp.example/connect/" + id }})
	if err != nil {
		t.Fatal(err)
	}
	j := &janitor.Janitor{Consents: consents, Deadlines: gate, Idempotency: idem, Clock: clk}

	// Nothing is due yet.
	if res, err := j.Sweep(ctx); err != nil || res != (janitor.Result{}) {
		t.Fatalf("early sweep: %+v, %v", res, err)
	}
	// 16 minutes later the pending consent has expired.
	clk.Advance(16 * time.Minute)
	if res, err := j.Sweep(ctx); err != nil || res.Expired != 1 || res.ReauthRequired != 0 {
		t.Fatalf("sweep after 16 min: %+v, %v", res, err)
	}
	if c, _ := consents.Consent(ctx, cl.ID, pending.ID); c.Status != tpp.ConsentExpired {
		t.Fatalf("pending consent is %s, want expired", c.Status)
	}
	// After 180 days the active one needs re-authorization, its context
	// is purged, and the day-old idempotency record is gone.
	clk.Advance(tpp.ConsentReauthAfter)
	res, err := j.Sweep(ctx)
	if err != nil || res.ReauthRequired != 1 || res.IdempotencyPurged != 1 {
		t.Fatalf("sweep after 180 days: %+v, %v", res, err)
	}
	if c, _ := consents.Consent(ctx, cl.ID, active.ID); c.Status != tpp.ConsentReauthRequired {
		t.Fatalf("active consent is %s, want reauth_required", c.Status)
	}
	if len(p.ids) != 1 || p.ids[0] != active.ID {
		t.Fatalf("purged contexts %v, want [%s]", p.ids, active.ID)
	}
	// A second sweep finds nothing: each deadline is applied once.
	if res, err := j.Sweep(ctx); err != nil || res != (janitor.Result{}) {
		t.Fatalf("repeat sweep: %+v, %v", res, err)
	}
}
