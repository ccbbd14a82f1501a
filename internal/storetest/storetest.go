// Package storetest holds the behaviour every store of the TPP's durable
// state must show, as one table of cases run against a constructor: package
// sqlite's and package postgres's tests both call Run, so a behaviour cannot
// differ between the two stores unnoticed.
package storetest

import (
	"context"
	"database/sql"
	"sync"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/internal/sqlstore"
	"github.com/bunqtpp/tpp/seal"
)

// DB is the raw database under a store, for the checks the interfaces do
// not show (what is sealed, what was written). Queries use '?'
// placeholders and the tables of the stores' shared schema.
type DB interface {
	GetContext(ctx context.Context, dest any, query string, args ...any) error
	SelectContext(ctx context.Context, dest any, query string, args ...any) error
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// ConsentStore is a consent service with the janitor's close queue.
type ConsentStore interface {
	tpp.ConsentService
	QueueClose(ctx context.Context, consentID, reason string) error
	PendingCloses(ctx context.Context, limit int) ([]string, error)
	CloseDone(ctx context.Context, consentID string) error
	CloseFailed(ctx context.Context, consentID, reason string) error
	SinglePaymentOf(ctx context.Context, consentID string) (*tpp.Payment, error)
	NotifyExpiring(ctx context.Context, now time.Time, notice time.Duration, limit int) (int, error)
}

// PaymentStore is a payment service with the poller's schedule
// (pisp.PollQueue).
type PaymentStore interface {
	tpp.PaymentService
	DuePayments(ctx context.Context, now time.Time, limit int) ([]tpp.DuePayment, error)
	ScheduleChecks(ctx context.Context, at time.Time, ids ...string) error
}

// Stores is one fresh, empty store with every service over it.
type Stores struct {
	DB            DB
	Clients       tpp.ClientService
	Consents      ConsentStore
	Payments      PaymentStore
	Idempotency   tpp.IdempotencyStore
	Audit         tpp.AuditLog
	Outbox        tpp.WebhookOutbox
	Registrations tpp.RegistrationStore
	// MaxCloseAttempts is the store's limit on failed closes.
	MaxCloseAttempts int

	// ProbeWrite is the store's readiness write probe.
	ProbeWrite func(ctx context.Context, wait time.Duration) error
	// Unavailable recognises the store's errors that pass (503).
	Unavailable func(error) bool
	// HoldWriteLock blocks the store's writes from another connection,
	// as another process would, until release is called.
	HoldWriteLock func(t testing.TB) (release func())

	// Rekey re-seals every sealed value under kr's current key
	// (sqlite.Rekey, postgres.Rekey).
	Rekey func(ctx context.Context, kr *seal.Keyring, dryRun bool) ([]sqlstore.RekeyCount, error)
	// WithKeyring returns the store's services over the same database,
	// sealing and opening with kr.
	WithKeyring func(kr *seal.Keyring) Stores
}

// SQLStores fills in s's services over st (package sqlite's and package
// postgres's stores are internal/sqlstore's), sealing with kr; s brings
// what is the database's own (ProbeWrite, Unavailable, HoldWriteLock).
func SQLStores(st *sqlstore.Store, kr *seal.Keyring, s Stores) Stores {
	s.DB = st
	s.Clients = sqlstore.NewClientService(st, kr)
	s.Consents = sqlstore.NewConsentService(st, kr)
	s.Payments = sqlstore.NewPaymentService(st)
	s.Idempotency = sqlstore.NewIdempotencyStore(st)
	s.Audit = sqlstore.NewAuditLog(st)
	s.Outbox = sqlstore.NewOutbox(st)
	s.Registrations = sqlstore.NewRegistrationStore(st, kr)
	s.MaxCloseAttempts = sqlstore.MaxCloseAttempts
	s.Rekey = func(ctx context.Context, kr *seal.Keyring, dryRun bool) ([]sqlstore.RekeyCount, error) {
		return sqlstore.Rekey(ctx, st, kr, dryRun)
	}
	s.WithKeyring = func(kr *seal.Keyring) Stores { return SQLStores(st, kr, s) }
	return s
}

// Open makes a fresh, empty store for t whose rows are stamped by clock
// and whose secrets are sealed with kr; it closes it when t ends.
type Open func(t testing.TB, clock tpp.Clock, kr *seal.Keyring) Stores

// Case is one behaviour.
type Case struct {
	Name string
	Run  func(t *testing.T, open Open)
}

// Run runs every case against open, in parallel.
func Run(t *testing.T, open Open) {
	for _, c := range Cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			c.Run(t, open)
		})
	}
}

// Clock is a settable clock for tests.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at a fixed date.
func NewClock() *Clock {
	return &Clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// Now implements tpp.Clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Keyring returns a one-key keyring whose key is b repeated.
func Keyring(t testing.TB, id string, b byte) *seal.Keyring {
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

// fixture is a fresh store with every service over it, under the names
// the cases use.
type fixture struct {
	Stores
	db       DB
	clock    *Clock
	keyring  *seal.Keyring
	clients  tpp.ClientService
	consents ConsentStore
	payments PaymentStore
	idem     tpp.IdempotencyStore
	audit    tpp.AuditLog
	outbox   tpp.WebhookOutbox
}

func newFixture(t *testing.T, open Open) *fixture {
	t.Helper()
	clock := NewClock()
	kr := Keyring(t, "k1", 7)
	s := open(t, clock, kr)
	return &fixture{
		Stores: s, db: s.DB, clock: clock, keyring: kr,
		clients: s.Clients, consents: s.Consents, payments: s.Payments,
		idem: s.Idempotency, audit: s.Audit, outbox: s.Outbox,
	}
}

func count(t *testing.T, db DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.GetContext(context.Background(), &n, query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func exec(t *testing.T, db DB, query string, args ...any) {
	t.Helper()
	if _, err := db.ExecContext(context.Background(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}
