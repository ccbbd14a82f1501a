package janitor_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/janitor"
	"github.com/bunqtpp/tpp/seal"
	"github.com/bunqtpp/tpp/sqlite"
)

// TestSweepSendsConsentExpiringOnce: seven days before reauth_due_at the
// janitor stores one consent.expiring event per consent and authorization
// period (not for the TPP's own single-payment consents), and again after
// the user re-authorized and the next period nears its end.
func TestSweepSendsConsentExpiringOnce(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	clk := &clock{t: t0}
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "tpp.db"), clk)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mk := make([]byte, 32)
	_, _ = rand.Read(mk)
	kr, _ := seal.NewKeyring(seal.Key{ID: "k1", Key: mk})
	consents := sqlite.NewConsentService(db, kr)
	outbox := sqlite.NewOutbox(db)
	cl, _, err := sqlite.NewClientService(db, kr).CreateClient(ctx, tpp.NewClient{Name: "Acme",
		ReturnURLs: []string{"https://app.example/back"}, WebhookURL: "https://app.example/hook"})
	if err != nil {
		t.Fatal(err)
	}
	activate := func(id string) {
		t.Helper()
		if _, err := consents.TransitionConsent(ctx, tpp.ConsentTransition{ID: id, To: tpp.ConsentActive, BunqUserID: 7,
			BunqUserName: "Anna", AccessToken: "tok", Actor: tpp.ActorPSU}); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	for _, ref := range []string{"u1", tpp.InternalUserRefPrefix + "single"} {
		c, err := consents.CreateConsent(ctx, tpp.NewConsent{ClientID: cl.ID, UserRef: ref, Scopes: []tpp.Scope{tpp.ScopePayments},
			ReturnURL: "https://app.example/back", Actor: tpp.ActorClient(cl.ID)})
		if err != nil {
			t.Fatal(err)
		}
		activate(c.ID)
		ids = append(ids, c.ID)
	}
	j := &janitor.Janitor{Consents: consents, Expiring: consents, Clock: clk}
	expiring := func() []tpp.ConsentExpiringData {
		t.Helper()
		page, err := outbox.Events(ctx, cl.ID, tpp.PageRequest{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var out []tpp.ConsentExpiringData
		for _, ev := range page.Items {
			if ev.Type != tpp.EventConsentExpiring {
				continue
			}
			var body struct {
				Type string                  `json:"type"`
				Data tpp.ConsentExpiringData `json:"data"`
			}
			if err := json.Unmarshal(ev.Payload, &body); err != nil || body.Type != tpp.EventConsentExpiring {
				t.Fatalf("payload %s: %v", ev.Payload, err)
			}
			out = append(out, body.Data)
		}
		return out
	}
	sweep := func(want int) {
		t.Helper()
		res, err := j.Sweep(ctx)
		if err != nil || res.ExpiringNotified != want {
			t.Fatalf("sweep at day %.2f: %+v, %v; want %d notified", clk.Now().Sub(t0).Hours()/24, res, err, want)
		}
	}

	clk.Advance(tpp.ConsentReauthAfter - tpp.ConsentExpiringNotice - time.Minute)
	sweep(0) // a minute before the notice window
	clk.Advance(2 * time.Minute)
	sweep(1)
	sweep(0) // once per period
	clk.Advance(time.Hour)
	sweep(0)
	got := expiring()
	if len(got) != 1 || got[0].ConsentID != ids[0] || got[0].UserRef != "u1" ||
		got[0].ReauthDueAt != t0.Add(tpp.ConsentReauthAfter).Format(time.RFC3339) {
		t.Fatalf("events %+v, want one for %s due %s", got, ids[0], t0.Add(tpp.ConsentReauthAfter))
	}

	// The user re-authorizes early: a new period, a new notice near its end.
	if _, err := consents.TransitionConsent(ctx, tpp.ConsentTransition{ID: ids[0], From: tpp.ConsentActive,
		To: tpp.ConsentReauthRequired, Actor: tpp.ActorSystem}); err != nil {
		t.Fatal(err)
	}
	activate(ids[0])
	sweep(0)
	clk.Advance(tpp.ConsentReauthAfter - tpp.ConsentExpiringNotice + time.Minute)
	sweep(1)
	sweep(0)
	if got := expiring(); len(got) != 2 {
		t.Fatalf("events %+v, want two", got)
	}
}
