package storetest

import (
	"bytes"
	"context"
	"testing"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/internal/sqlstore"
	"github.com/bunqtpp/tpp/seal"
)

// rekeyData is what the rekey test seals before rotating keys.
type rekeyData struct {
	f       *fixture
	active  []*tpp.Consent
	reg     *tpp.Registration
	secrets map[string]string // client id → webhook secret
}

// seedRekey seals, with k1: two clients (one revoked), more active consents
// than one rekey batch holds (so the run pages), a pending consent, a
// registration, and one damaged token.
func seedRekey(t *testing.T, open Open) *rekeyData {
	ctx := context.Background()
	f := newFixture(t, open) // seals with k1
	c1, sec1 := f.client(t)
	c2, sec2 := f.client(t)
	if _, err := f.clients.RevokeClient(ctx, c2.ID); err != nil {
		t.Fatal(err)
	}
	d := &rekeyData{f: f, secrets: map[string]string{c1.ID: sec1.WebhookSecret, c2.ID: sec2.WebhookSecret}}
	for range sqlstore.RekeyBatch + 30 {
		d.active = append(d.active, f.activate(t, f.consent(t, c1, "u"), 7))
	}
	f.consent(t, c1, "pending") // no token: nothing to re-seal
	d.reg = &tpp.Registration{APIBaseURL: "https://bank.example/v1", Context: []byte(`{"installation":"secret"}`),
		ClientID: "oauth-client", ClientSecret: "oauth-client-secret"}
	if err := f.Registrations.SaveRegistration(ctx, d.reg); err != nil {
		t.Fatal(err)
	}
	// One damaged value: a token copied into another consent's row does
	// not open there (its associated data names the owner).
	if _, err := f.db.ExecContext(ctx, `UPDATE consents SET access_token_sealed = (SELECT access_token_sealed FROM consents WHERE id = ?) WHERE id = ?`,
		d.active[1].ID, d.active[0].ID); err != nil {
		t.Fatal(err)
	}
	return d
}

// checkRekey compares a rekey report with the counts and key ids wanted.
func checkRekey(t *testing.T, name string, got []sqlstore.RekeyCount, want map[string]sqlstore.RekeyCount, wantKeys map[string]map[string]int) {
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

// rekeyRun runs one rekey (dry or not) and checks its report.
func (d *rekeyData) rekeyRun(t *testing.T, name string, kr *seal.Keyring, dry bool, want map[string]sqlstore.RekeyCount, wantKeys map[string]map[string]int) {
	t.Helper()
	got, err := d.f.Rekey(context.Background(), kr, dry)
	if err != nil {
		t.Fatal(err)
	}
	checkRekey(t, name, got, want, wantKeys)
}

// opensWithOnly checks that kr alone opens every sealed value but the
// damaged one, and that nothing else about the consents changed.
func (d *rekeyData) opensWithOnly(t *testing.T, kr *seal.Keyring) {
	t.Helper()
	ctx := context.Background()
	withKey := d.f.WithKeyring(kr)
	for _, c := range d.active[1:] {
		if tok, err := withKey.Consents.AccessToken(ctx, c.ID); err != nil || tok != "secret-oauth-token-"+c.ID {
			t.Fatalf("access token of %s with the new key alone: %q, %v", c.ID, tok, err)
		}
	}
	for id, want := range d.secrets {
		if s, err := withKey.Clients.WebhookSecret(ctx, id); err != nil || s != want {
			t.Errorf("webhook secret of %s with the new key alone: %v", id, err)
		}
	}
	r, err := withKey.Registrations.Registration(ctx, d.reg.APIBaseURL)
	if err != nil || string(r.Context) != string(d.reg.Context) || r.ClientSecret != d.reg.ClientSecret {
		t.Fatalf("registration with the new key alone: %v", err)
	}
	// Nothing else changed: the consents keep their times and status.
	after, err := withKey.Consents.ConsentByID(ctx, d.active[2].ID)
	if err != nil || !after.UpdatedAt.Equal(d.active[2].UpdatedAt) || after.Status != tpp.ConsentActive {
		t.Errorf("consent after rekey: %+v, %v", after, err)
	}
}

func testRekeyMovesEverySealedValueToTheCurrentKey(t *testing.T, open Open) {
	d := seedRekey(t, open)
	n := len(d.active)
	k2 := bytes.Repeat([]byte{8}, 32)
	rotated, err := seal.NewKeyring(seal.Key{ID: "k2", Key: k2}, seal.Key{ID: "k1", Key: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]sqlstore.RekeyCount{
		"consents.access_token_sealed":      {Resealed: n - 1, Unreadable: 1},
		"clients.webhook_secret_sealed":     {Resealed: 2},
		"registration.context_sealed":       {Resealed: 1},
		"registration.client_secret_sealed": {Resealed: 1},
	}
	allK1 := map[string]map[string]int{
		"consents.access_token_sealed":  {"k1": n},
		"clients.webhook_secret_sealed": {"k1": 2},
		"registration.context_sealed":   {"k1": 1},
	}

	// A dry run counts and changes nothing.
	d.rekeyRun(t, "dry run", rotated, true, want, allK1)
	d.rekeyRun(t, "second dry run", rotated, true, want, allK1)
	if c := count(t, d.f.db, `SELECT count(*) FROM audit_log WHERE action = ?`, sqlstore.AuditSecretsResealed); c != 0 {
		t.Fatalf("a dry run wrote %d audit records", c)
	}

	d.rekeyRun(t, "rekey", rotated, false, want, allK1)
	// One audit record per batch, by the operator, naming the new key.
	if c := count(t, d.f.db, `SELECT count(*) FROM audit_log WHERE action = ? AND actor = ? AND detail LIKE '%under key k2'`,
		sqlstore.AuditSecretsResealed, tpp.ActorOperator); c != 5 {
		t.Errorf("%d audit records for the rekey, want 5 (2 consent batches, clients, 2 registration columns)", c)
	}

	// Again: everything is current, only the damaged value stays.
	d.rekeyRun(t, "second rekey", rotated, false, map[string]sqlstore.RekeyCount{
		"consents.access_token_sealed":      {Current: n - 1, Unreadable: 1},
		"clients.webhook_secret_sealed":     {Current: 2},
		"registration.context_sealed":       {Current: 1},
		"registration.client_secret_sealed": {Current: 1},
	}, map[string]map[string]int{
		"consents.access_token_sealed":  {"k2": n - 1, "k1": 1},
		"clients.webhook_secret_sealed": {"k2": 2},
	})

	// k1 can go: k2 alone opens everything.
	only2, err := seal.NewKeyring(seal.Key{ID: "k2", Key: k2})
	if err != nil {
		t.Fatal(err)
	}
	d.opensWithOnly(t, only2)
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
