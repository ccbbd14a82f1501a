package storetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
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
	deliveriesBefore := count(t, f.db, `SELECT COUNT(*) FROM webhook_deliveries`)

	if _, err := f.clients.RevokeClient(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id   string
		want tpp.ConsentStatus
	}{{pending.ID, tpp.ConsentRevoked}, {active.ID, tpp.ConsentRevoked}, {rejected.ID, tpp.ConsentRejected},
		{untouched.ID, tpp.ConsentActive}} {
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
	if n := count(t, f.db, `SELECT COUNT(*) FROM audit_log WHERE client_id = ? AND detail = 'client revoked'`, c.ID); n != 2 {
		t.Fatalf("%d consent revocations audited, want 2", n)
	}
	// No webhook goes to a revoked client.
	if n := count(t, f.db, `SELECT COUNT(*) FROM webhook_deliveries`); n != deliveriesBefore {
		t.Fatalf("deliveries queued for a revoked client")
	}
}
