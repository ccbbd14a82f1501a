package storetest

import (
	"bytes"
	"context"
	"testing"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/internal/sqlstore"
	"github.com/bunqtpp/tpp/seal"
)

func testRekeyMovesEverySealedValueToTheCurrentKey(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open) // seals with k1
	c1, sec1 := f.client(t)
	c2, sec2 := f.client(t)
	if _, err := f.clients.RevokeClient(ctx, c2.ID); err != nil {
		t.Fatal(err)
	}
	// More active consents than one batch holds, so the run pages.
	var active []*tpp.Consent
	for range sqlstore.RekeyBatch + 30 {
		active = append(active, f.activate(t, f.consent(t, c1, "u"), 7))
	}
	f.consent(t, c1, "pending") // no token: nothing to re-seal
	regs := f.Registrations
	reg := &tpp.Registration{APIBaseURL: "https://bank.example/v1", Context: []byte(`{"installation":"secret"}`),
		ClientID: "oauth-client", ClientSecret: "oauth-client-secret"}
	if err := regs.SaveRegistration(ctx, reg); err != nil {
		t.Fatal(err)
	}
	// One damaged value: a token copied into another consent's row does
	// not open there (its associated data names the owner).
	damaged := active[0]
	if _, err := f.db.ExecContext(ctx, `UPDATE consents SET access_token_sealed = (SELECT access_token_sealed FROM consents WHERE id = ?) WHERE id = ?`,
		active[1].ID, damaged.ID); err != nil {
		t.Fatal(err)
	}

	k2 := bytes.Repeat([]byte{8}, 32)
	k1 := bytes.Repeat([]byte{7}, 32)
	rotated, err := seal.NewKeyring(seal.Key{ID: "k2", Key: k2}, seal.Key{ID: "k1", Key: k1})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]sqlstore.RekeyCount{
		"consents.access_token_sealed":      {Resealed: len(active) - 1, Unreadable: 1},
		"clients.webhook_secret_sealed":     {Resealed: 2},
		"registration.context_sealed":       {Resealed: 1},
		"registration.client_secret_sealed": {Resealed: 1},
	}
	check := func(name string, got []sqlstore.RekeyCount, want map[string]sqlstore.RekeyCount, wantKeys map[string]map[string]int) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d columns reported, want %d: %v", name, len(got), len(want), got)
		}
		for _, g := range got {
			w, ok := want[g.Name()]
			if !ok || g.Resealed != w.Resealed || g.Current != w.Current || g.Unreadable != w.Unreadable || g.Changed != 0 {
				t.Errorf("%s: %v, want %+v", name, g, w)
			}
			for id, n := range wantKeys[g.Name()] {
				if g.ByKey[id] != n || len(g.ByKey) != len(wantKeys[g.Name()]) {
					t.Errorf("%s: %s found under %v, want %v", name, g.Name(), g.ByKey, wantKeys[g.Name()])
				}
			}
		}
	}
	allK1 := map[string]map[string]int{
		"consents.access_token_sealed":  {"k1": len(active)},
		"clients.webhook_secret_sealed": {"k1": 2},
		"registration.context_sealed":   {"k1": 1},
	}

	// A dry run counts and changes nothing.
	got, err := f.Rekey(ctx, rotated, true)
	if err != nil {
		t.Fatal(err)
	}
	check("dry run", got, want, allK1)
	got, err = f.Rekey(ctx, rotated, true)
	if err != nil {
		t.Fatal(err)
	}
	check("second dry run", got, want, allK1)
	if n := count(t, f.db, `SELECT count(*) FROM audit_log WHERE action = ?`, sqlstore.AuditSecretsResealed); n != 0 {
		t.Fatalf("a dry run wrote %d audit records", n)
	}

	got, err = f.Rekey(ctx, rotated, false)
	if err != nil {
		t.Fatal(err)
	}
	check("rekey", got, want, allK1)
	// One audit record per batch, by the operator, naming the new key.
	if n := count(t, f.db, `SELECT count(*) FROM audit_log WHERE action = ? AND actor = ? AND detail LIKE '%under key k2'`,
		sqlstore.AuditSecretsResealed, tpp.ActorOperator); n != 5 {
		t.Errorf("%d audit records for the rekey, want 5 (2 consent batches, clients, 2 registration columns)", n)
	}

	// Again: everything is current, only the damaged value stays.
	got, err = f.Rekey(ctx, rotated, false)
	if err != nil {
		t.Fatal(err)
	}
	check("second rekey", got, map[string]sqlstore.RekeyCount{
		"consents.access_token_sealed":      {Current: len(active) - 1, Unreadable: 1},
		"clients.webhook_secret_sealed":     {Current: 2},
		"registration.context_sealed":       {Current: 1},
		"registration.client_secret_sealed": {Current: 1},
	}, map[string]map[string]int{
		"consents.access_token_sealed":  {"k2": len(active) - 1, "k1": 1},
		"clients.webhook_secret_sealed": {"k2": 2},
	})

	// k1 can go: k2 alone opens everything.
	only2, err := seal.NewKeyring(seal.Key{ID: "k2", Key: k2})
	if err != nil {
		t.Fatal(err)
	}
	withK2 := f.WithKeyring(only2)
	consents := withK2.Consents
	for _, c := range active[1:] {
		if tok, err := consents.AccessToken(ctx, c.ID); err != nil || tok != "secret-oauth-token-"+c.ID {
			t.Fatalf("access token of %s with k2 alone: %q, %v", c.ID, tok, err)
		}
	}
	clients := withK2.Clients
	for id, want := range map[string]string{c1.ID: sec1.WebhookSecret, c2.ID: sec2.WebhookSecret} {
		if s, err := clients.WebhookSecret(ctx, id); err != nil || s != want {
			t.Errorf("webhook secret of %s with k2 alone: %v", id, err)
		}
	}
	r, err := withK2.Registrations.Registration(ctx, reg.APIBaseURL)
	if err != nil || string(r.Context) != string(reg.Context) || r.ClientSecret != reg.ClientSecret {
		t.Fatalf("registration with k2 alone: %v", err)
	}
	// Nothing else changed: the consents keep their times and status.
	after, err := consents.ConsentByID(ctx, active[2].ID)
	if err != nil || !after.UpdatedAt.Equal(active[2].UpdatedAt) || after.Status != tpp.ConsentActive {
		t.Errorf("consent after rekey: %+v, %v", after, err)
	}
}

// BenchRekey re-seals 2,000 access tokens per op, alternating between two
// current keys so every op has all of them to move.
func BenchRekey(b *testing.B, open Open) {
	f := open(b, tpp.SystemClock{}, Keyring(b, "k1", 7))
	ctx := context.Background()
	c, _, err := f.Clients.CreateClient(ctx, tpp.NewClient{Name: "bench", ReturnURLs: []string{"https://b.example/r"}})
	if err != nil {
		b.Fatal(err)
	}
	const n = 2000
	for range n {
		con, err := f.Consents.CreateConsent(ctx, tpp.NewConsent{ClientID: c.ID, UserRef: "u", Scopes: []tpp.Scope{tpp.ScopeAccounts},
			ReturnURL: "https://b.example/r", Actor: tpp.ActorClient(c.ID)})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Consents.TransitionConsent(ctx, tpp.ConsentTransition{ID: con.ID, To: tpp.ConsentActive, BunqUserID: 1,
			AccessToken: "token-" + con.ID, Actor: tpp.ActorPSU}); err != nil {
			b.Fatal(err)
		}
	}
	k1, k2 := seal.Key{ID: "k1", Key: bytes.Repeat([]byte{7}, 32)}, seal.Key{ID: "k2", Key: bytes.Repeat([]byte{8}, 32)}
	to2, err := seal.NewKeyring(k2, k1)
	if err != nil {
		b.Fatal(err)
	}
	to1, err := seal.NewKeyring(k1, k2)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		kr := to2
		if i%2 == 1 {
			kr = to1
		}
		counts, err := f.Rekey(ctx, kr, false)
		if err != nil || counts[0].Resealed != n {
			b.Fatalf("%v, %v", counts, err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "values/s")
}
