package postgres

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/internal/pgtest"
	"github.com/bunqtpp/tpp/internal/storetest"
	"github.com/bunqtpp/tpp/sqlite"
)

// A SQLite store copied to PostgreSQL works there with the same master
// key: keys authenticate, sealed values open, ids and history are kept,
// and a second run after more writes converges without duplicates.
func TestCopyFromSQLite(t *testing.T) {
	t.Parallel()
	pgtest.Require(t)
	ctx := context.Background()
	clock := storetest.NewClock()
	kr := storetest.Keyring(t, "k1", 9)
	src, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "tpp.db"), clock)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	clients := sqlite.NewClientService(src, kr)
	consents := sqlite.NewConsentService(src, kr)
	payments := sqlite.NewPaymentService(src)
	c, sec, err := clients.CreateClient(ctx, tpp.NewClient{Name: "Acme", ReturnURLs: []string{"https://acme.example/r"},
		WebhookURL: "https://acme.example/hooks"})
	if err != nil {
		t.Fatal(err)
	}
	con, err := consents.CreateConsent(ctx, tpp.NewConsent{ClientID: c.ID, UserRef: "u1",
		Scopes: []tpp.Scope{tpp.ScopeAccounts, tpp.ScopePayments}, ReturnURL: c.ReturnURLs[0], Actor: tpp.ActorClient(c.ID)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := consents.TransitionConsent(ctx, tpp.ConsentTransition{ID: con.ID, To: tpp.ConsentActive,
		BunqUserID: 42, BunqUserName: "Jane", AccessToken: "oauth-token-1", Actor: tpp.ActorPSU}); err != nil {
		t.Fatal(err)
	}
	pay, err := payments.CreatePayment(ctx, tpp.NewPayment{ClientID: c.ID, ConsentID: con.ID, Kind: tpp.PaymentDraft,
		AmountMinor: 1234, Currency: "EUR", CounterpartyIBAN: "NL91ABNA0417164300", CounterpartyName: "Shop",
		Actor: tpp.ActorClient(c.ID)})
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlite.NewRegistrationStore(src, kr).SaveRegistration(ctx, &tpp.Registration{
		APIBaseURL: "https://bank.example", Context: []byte(`{"token":"ctx"}`), ClientSecret: "oauth-secret"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sqlite.NewIdempotencyStore(src).BeginIdempotent(ctx, c.ID, "key-1", "fp"); err != nil {
		t.Fatal(err)
	}

	dst := openTestDB(t, clock)
	first, err := CopyFrom(ctx, src.DB, dst)
	if err != nil {
		t.Fatalf("CopyFrom: %v", err)
	}
	for _, n := range first {
		if n.Source != n.Target {
			t.Errorf("%s: %d rows in SQLite, %d in PostgreSQL", n.Table, n.Source, n.Target)
		}
	}

	pgClients := NewClientService(dst, kr)
	if got, err := pgClients.Authenticate(ctx, sec.APIKey); err != nil || got.ID != c.ID {
		t.Fatalf("Authenticate after copy: %v, %v", got, err)
	}
	if ws, err := pgClients.WebhookSecret(ctx, c.ID); err != nil || ws != sec.WebhookSecret {
		t.Fatalf("WebhookSecret after copy: %v", err)
	}
	if tok, err := NewConsentService(dst, kr).AccessToken(ctx, con.ID); err != nil || tok != "oauth-token-1" {
		t.Fatalf("AccessToken after copy: %q, %v", tok, err)
	}
	if reg, err := NewRegistrationStore(dst, kr).Registration(ctx, "https://bank.example"); err != nil || reg.ClientSecret != "oauth-secret" {
		t.Fatalf("registration after copy: %v", err)
	}
	if p, err := NewPaymentService(dst).PaymentByID(ctx, pay.ID); err != nil || p.AmountMinor != 1234 || len(p.StatusHistory) != 1 {
		t.Fatalf("payment after copy: %+v, %v", p, err)
	}

	// More traffic on the old store, then a second run.
	clock.Add(1)
	if _, err := consents.TransitionConsent(ctx, tpp.ConsentTransition{ID: con.ID, ClientID: c.ID,
		To: tpp.ConsentRevoked, Actor: tpp.ActorClient(c.ID)}); err != nil {
		t.Fatal(err)
	}
	second, err := CopyFrom(ctx, src.DB, dst)
	if err != nil {
		t.Fatalf("second CopyFrom: %v", err)
	}
	for _, n := range second {
		if n.Source != n.Target {
			t.Errorf("re-run %s: %d rows in SQLite, %d in PostgreSQL", n.Table, n.Source, n.Target)
		}
	}
	if got, err := NewConsentService(dst, kr).ConsentByID(ctx, con.ID); err != nil || got.Status != tpp.ConsentRevoked {
		t.Fatalf("consent after re-run: %+v, %v", got, err)
	}
	// New audit records continue after the copied ones.
	if err := NewAuditLog(dst).AppendAudit(ctx, tpp.AuditRecord{Actor: tpp.ActorOperator, Action: "test.after_copy", ClientID: c.ID}); err != nil {
		t.Fatalf("audit after copy: %v", err)
	}
}
