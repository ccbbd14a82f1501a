package storetest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/pisp"
)

func testClientCreateGetAuthenticate(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	c, sec := f.client(t)

	if !strings.HasPrefix(c.ID, "cli_") || c.Status != tpp.ClientActive {
		t.Fatalf("client = %+v", c)
	}
	if !strings.HasPrefix(sec.APIKey, "tpp_"+c.APIKeyID+"_") {
		t.Fatalf("API key %q does not carry key id %q", sec.APIKey, c.APIKeyID)
	}
	if !strings.HasPrefix(sec.WebhookSecret, "whsec_") {
		t.Fatalf("webhook secret %q", sec.WebhookSecret)
	}

	// Nothing secret is stored in the clear.
	var row struct {
		WebhookSecretSealed string `db:"webhook_secret_sealed"`
		APIKeyHash          []byte `db:"api_key_hash"`
	}
	if err := f.db.GetContext(context.Background(), &row, `SELECT webhook_secret_sealed, api_key_hash FROM clients WHERE id = ?`, c.ID); err != nil {
		t.Fatal(err)
	}
	key, _ := tpp.ParseAPIKey(sec.APIKey)
	if strings.Contains(row.WebhookSecretSealed, strings.TrimPrefix(sec.WebhookSecret, "whsec_")) ||
		strings.Contains(string(row.APIKeyHash), key.Secret) {
		t.Fatal("a secret is stored in the clear")
	}

	got, err := f.clients.Authenticate(ctx, sec.APIKey)
	if err != nil || got.ID != c.ID {
		t.Fatalf("Authenticate = %v, %v", got, err)
	}
	ws, err := f.clients.WebhookSecret(ctx, c.ID)
	if err != nil || ws != sec.WebhookSecret {
		t.Fatalf("WebhookSecret = %q, %v", ws, err)
	}
	g, err := f.clients.Client(ctx, c.ID)
	if err != nil || g.Name != "Acme Budget" || len(g.ReturnURLs) != 2 || g.WebhookURL != "https://acme.example/hooks" {
		t.Fatalf("Client = %+v, %v", g, err)
	}
	_, err = f.clients.Client(ctx, "cli_nope")
	wantCode(t, err, tpp.ENotFound)

	// The webhook secret is bound to its client: moved to another row it fails to open.
	other, _ := f.client(t)
	exec(t, f.db, `UPDATE clients SET webhook_secret_sealed = (SELECT webhook_secret_sealed FROM clients WHERE id = ?) WHERE id = ?`, c.ID, other.ID)
	if _, err := f.clients.WebhookSecret(ctx, other.ID); err == nil {
		t.Fatal("a webhook secret sealed for another client opened")
	}
}

func testAuthenticateRejects(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	c, sec := f.client(t)
	key, _ := tpp.ParseAPIKey(sec.APIKey)
	wrongSecret := tpp.APIKey{ID: key.ID, Secret: tpp.NewAPIKey().Secret}.String()
	unknownID := tpp.APIKey{ID: tpp.NewAPIKey().ID, Secret: key.Secret}.String()
	for name, k := range map[string]string{
		"empty":        "",
		"garbage":      "Bearer nonsense",
		"no prefix":    strings.TrimPrefix(sec.APIKey, "tpp_"),
		"truncated":    sec.APIKey[:len(sec.APIKey)-1],
		"wrong secret": wrongSecret,
		"unknown id":   unknownID,
		"extra":        sec.APIKey + "a",
	} {
		_, err := f.clients.Authenticate(ctx, k)
		if tpp.ErrorCode(err) != tpp.EUnauthorized {
			t.Errorf("%s: Authenticate error = %v, want unauthorized", name, err)
		}
	}
	if got, err := f.clients.Authenticate(ctx, sec.APIKey); err != nil || got.ID != c.ID {
		t.Fatalf("the real key: %v", err)
	}
}

func testRotateAndRevoke(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	c, sec := f.client(t)

	newKey, err := f.clients.RotateAPIKey(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if newKey == sec.APIKey {
		t.Fatal("rotation returned the old key")
	}
	_, err = f.clients.Authenticate(ctx, sec.APIKey)
	wantCode(t, err, tpp.EUnauthorized)
	if got, err := f.clients.Authenticate(ctx, newKey); err != nil || got.ID != c.ID {
		t.Fatalf("new key: %v, %v", got, err)
	}

	rc, err := f.clients.RevokeClient(ctx, c.ID)
	if err != nil || rc.Status != tpp.ClientRevoked || rc.RevokedAt == nil {
		t.Fatalf("RevokeClient = %+v, %v", rc, err)
	}
	_, err = f.clients.Authenticate(ctx, newKey)
	wantCode(t, err, tpp.EUnauthorized)
	_, err = f.clients.RevokeClient(ctx, c.ID)
	wantCode(t, err, tpp.EConflict)
	_, err = f.clients.RotateAPIKey(ctx, c.ID)
	wantCode(t, err, tpp.EConflict)
	_, err = f.clients.RotateAPIKey(ctx, "cli_unknown")
	wantCode(t, err, tpp.ENotFound)

	recs, err := f.audit.ListAudit(ctx, tpp.AuditFilter{ClientID: c.ID}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, r := range recs {
		actions = append(actions, r.Action)
		if strings.Contains(r.Detail, sec.APIKey) || strings.Contains(r.Detail, newKey) {
			t.Fatal("audit record contains an API key")
		}
	}
	want := []string{tpp.AuditClientCreated, tpp.AuditClientKeyRotated, tpp.AuditClientRevoked}
	if strings.Join(actions, ",") != strings.Join(want, ",") {
		t.Fatalf("audit actions = %v, want %v", actions, want)
	}
}

func testCreateClientValidates(t *testing.T, open Open) {
	f := newFixture(t, open)
	for name, in := range map[string]tpp.NewClient{
		"no name":      {ReturnURLs: []string{"https://a.example/r"}},
		"no urls":      {Name: "x"},
		"http remote":  {Name: "x", ReturnURLs: []string{"http://a.example/r"}},
		"fragment":     {Name: "x", ReturnURLs: []string{"https://a.example/r#x"}},
		"bad webhook":  {Name: "x", ReturnURLs: []string{"https://a.example/r"}, WebhookURL: "ftp://a.example"},
		"relative url": {Name: "x", ReturnURLs: []string{"/r"}},
	} {
		if _, _, err := f.clients.CreateClient(context.Background(), in); err == nil {
			t.Errorf("%s: CreateClient succeeded", name)
		}
	}
	if n := count(t, f.db, `SELECT COUNT(*) FROM clients`); n != 0 {
		t.Fatalf("%d clients stored after failures", n)
	}
}

func testListClientsPaging(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	want := map[string]bool{}
	for i := 0; i < 7; i++ {
		c, _ := f.client(t)
		want[c.ID] = true
		if i%3 == 0 {
			f.clock.Add(time.Microsecond) // some share a timestamp, some do not
		}
	}
	seen := map[string]bool{}
	cursor := ""
	pages := 0
	for {
		p, err := f.clients.ListClients(ctx, tpp.PageRequest{Limit: 3, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, c := range p.Items {
			if seen[c.ID] {
				t.Fatalf("client %s listed twice", c.ID)
			}
			seen[c.ID] = true
		}
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	if len(seen) != len(want) || pages != 3 {
		t.Fatalf("listed %d clients in %d pages, want %d in 3", len(seen), pages, len(want))
	}
}

func testRevokeClientRevokesLiveConsents(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	c, _ := f.client(t)
	other, _ := f.client(t)
	pending := f.consent(t, c, "u")
	active := f.activate(t, f.consent(t, c, "u"), 1)
	rejected, err := f.consents.TransitionConsent(ctx, tpp.ConsentTransition{ID: f.consent(t, c, "u").ID,
		To: tpp.ConsentRejected, ErrorCode: "access_denied", Actor: tpp.ActorPSU})
	if err != nil {
		t.Fatal(err)
	}
	untouched := f.activate(t, f.consent(t, other, "u"), 2)
	// A single payment's consent: revoked too, audited, but (as with
	// TransitionConsent) no consent.updated event.
	single := f.activate(t, f.consent(t, c, pisp.SinglePaymentUserRef, tpp.ScopePayments), 3)
	deliveriesBefore := count(t, f.db, `SELECT COUNT(*) FROM webhook_deliveries`)

	if _, err := f.clients.RevokeClient(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id   string
		want tpp.ConsentStatus
	}{{pending.ID, tpp.ConsentRevoked}, {active.ID, tpp.ConsentRevoked}, {rejected.ID, tpp.ConsentRejected},
		{untouched.ID, tpp.ConsentActive}, {single.ID, tpp.ConsentRevoked}} {
		got, err := f.consents.ConsentByID(ctx, tc.id)
		if err != nil || got.Status != tc.want {
			t.Errorf("consent %s: %v, %v; want %s", tc.id, got.Status, err, tc.want)
		}
	}
	_, err = f.consents.AccessToken(ctx, active.ID)
	wantCode(t, err, tpp.EConsentRevoked)
	if n := count(t, f.db, `SELECT COUNT(*) FROM consents WHERE client_id = ? AND access_token_sealed IS NOT NULL`, c.ID); n != 0 {
		t.Fatalf("%d tokens left for a revoked client", n)
	}
	if n := count(t, f.db, `SELECT COUNT(*) FROM audit_log WHERE client_id = ? AND detail = 'client revoked'`, c.ID); n != 3 {
		t.Fatalf("%d consent revocations audited, want 3", n)
	}
	// No webhook goes to a revoked client.
	if n := count(t, f.db, `SELECT COUNT(*) FROM webhook_deliveries`); n != deliveriesBefore {
		t.Fatalf("deliveries queued for a revoked client")
	}
	checkRevokedAsTransitions(t, f, c, map[string]tpp.ConsentStatus{pending.ID: tpp.ConsentPending, active.ID: tpp.ConsentActive})
}

// checkRevokedAsTransitions checks that revoking client c wrote, for each
// consent in was (its status before), what TransitionConsent writes for a
// move to revoked by the operator: one consent.transition audit record and
// one consent.updated event; and for its single payment's consents none.
func checkRevokedAsTransitions(t *testing.T, f *fixture, c *tpp.FintechClient, was map[string]tpp.ConsentStatus) {
	t.Helper()
	ctx := context.Background()
	for id, from := range was {
		recs, err := f.audit.ListAudit(ctx, tpp.AuditFilter{ConsentID: id}, 0, 0)
		if err != nil || len(recs) == 0 {
			t.Fatalf("audit of %s: %d, %v", id, len(recs), err)
		}
		last := recs[len(recs)-1]
		if last.Actor != tpp.ActorOperator || last.Action != tpp.AuditConsentTransition || last.ClientID != c.ID ||
			last.From != string(from) || last.To != string(tpp.ConsentRevoked) || last.Detail != "client revoked" {
			t.Errorf("audit of %s's revocation = %+v", id, last)
		}
	}
	evs, err := f.outbox.Events(ctx, c.ID, tpp.PageRequest{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]tpp.ConsentEventData{}
	for _, ev := range evs.Items {
		var body struct {
			Type string               `json:"type"`
			Data tpp.ConsentEventData `json:"data"`
		}
		if err := json.Unmarshal(ev.Payload, &body); err != nil {
			t.Fatal(err)
		}
		if body.Type == tpp.EventConsentUpdated && body.Data.Status == string(tpp.ConsentRevoked) {
			if _, dup := got[body.Data.ConsentID]; dup {
				t.Errorf("two revocation events for %s", body.Data.ConsentID)
			}
			got[body.Data.ConsentID] = body.Data
		}
	}
	if len(got) != len(was) {
		t.Errorf("revocation events for %v, want one for each of %v", got, was)
	}
	for id, from := range was {
		if d, ok := got[id]; !ok || d.PreviousStatus != string(from) || d.UserRef == "" {
			t.Errorf("revocation event of %s = %+v, want previous status %s", id, d, from)
		}
	}
}
