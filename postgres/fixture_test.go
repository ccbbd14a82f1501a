package postgres

import (
	"context"
	"testing"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/internal/storetest"
	"github.com/bunqtpp/tpp/seal"
)

// fixture is a fresh database with every service over it.
type fixture struct {
	db       *DB
	clock    *fixedClock
	keyring  *seal.Keyring
	clients  *ClientService
	consents *ConsentService
	payments *PaymentService
	idem     *IdempotencyStore
	audit    *AuditLog
	outbox   *Outbox
}

func testKeyring(t testing.TB, id string, b byte) *seal.Keyring {
	t.Helper()
	k := make([]byte, 32)
	for i := range k {
		k[i] = b
	}
	kr, err := seal.NewKeyring(seal.Key{ID: id, Key: k})
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func newFixture(t *testing.T) *fixture { return newFixtureTB(t) }

func newFixtureTB(t testing.TB) *fixture {
	t.Helper()
	clock := newClock()
	db := openTestDB(t, clock)
	kr := testKeyring(t, "k1", 7)
	return &fixture{
		db: db, clock: clock, keyring: kr,
		clients:  NewClientService(db, kr),
		consents: NewConsentService(db, kr),
		payments: NewPaymentService(db),
		idem:     NewIdempotencyStore(db),
		audit:    NewAuditLog(db),
		outbox:   NewOutbox(db),
	}
}

// client creates an active client with a webhook URL.
func (f *fixture) client(t *testing.T) (*tpp.FintechClient, tpp.ClientSecrets) {
	t.Helper()
	c, sec, err := f.clients.CreateClient(context.Background(), tpp.NewClient{
		Name:       "Acme Budget",
		ReturnURLs: []string{"https://acme.example/return", "http://localhost:3000/cb"},
		WebhookURL: "https://acme.example/hooks",
	})
	if err != nil {
		t.Fatalf("CreateClient: %v", err)
	}
	return c, sec
}

// consent creates a pending consent for c.
func (f *fixture) consent(t *testing.T, c *tpp.FintechClient, userRef string, scopes ...tpp.Scope) *tpp.Consent {
	t.Helper()
	if len(scopes) == 0 {
		scopes = []tpp.Scope{tpp.ScopeAccounts, tpp.ScopePayments}
	}
	con, err := f.consents.CreateConsent(context.Background(), tpp.NewConsent{
		ClientID: c.ID, UserRef: userRef, Scopes: scopes, ReturnURL: c.ReturnURLs[0],
		Actor: tpp.ActorClient(c.ID), RequestID: "req-create",
	})
	if err != nil {
		t.Fatalf("CreateConsent: %v", err)
	}
	return con
}

// activate moves a pending consent to active as the PSU.
func (f *fixture) activate(t *testing.T, con *tpp.Consent, bunqUser int64) *tpp.Consent {
	t.Helper()
	out, err := f.consents.TransitionConsent(context.Background(), tpp.ConsentTransition{
		ID: con.ID, To: tpp.ConsentActive, BunqUserID: bunqUser, BunqUserName: "Jane Doe",
		AccessToken: "secret-oauth-token-" + con.ID, Actor: tpp.ActorPSU, RequestID: "req-cb",
	})
	if err != nil {
		t.Fatalf("activate: %v", err)
	}
	return out
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want code %s", code)
	}
	if got := tpp.ErrorCode(err); got != code {
		t.Fatalf("error code = %s (%v), want %s", got, err, code)
	}
}

func count(t *testing.T, db *DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.Get(&n, query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// fixedClock is a settable clock for tests.
type fixedClock = storetest.Clock

func newClock() *fixedClock { return storetest.NewClock() }
