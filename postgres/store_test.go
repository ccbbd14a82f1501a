package postgres

import (
	"context"
	"testing"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/internal/pgtest"
	"github.com/bunqtpp/tpp/internal/storetest"
	"github.com/bunqtpp/tpp/seal"
)

// openTestDB opens a fresh schema for t.
func openTestDB(t testing.TB, clock tpp.Clock) *DB {
	t.Helper()
	db, err := Open(context.Background(), pgtest.URL(t), clock, Pool{MaxOpen: 8, MaxIdle: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// openStores opens a fresh schema for t with every service over it.
func openStores(t testing.TB, clock tpp.Clock, kr *seal.Keyring) storetest.Stores {
	t.Helper()
	db := openTestDB(t, clock)
	return storetest.Stores{
		DB:               db,
		Clients:          NewClientService(db, kr),
		Consents:         NewConsentService(db, kr),
		Payments:         NewPaymentService(db),
		Idempotency:      NewIdempotencyStore(db),
		Audit:            NewAuditLog(db),
		Outbox:           NewOutbox(db),
		Registrations:    NewRegistrationStore(db, kr),
		MaxCloseAttempts: MaxCloseAttempts,
	}
}

// TestStore runs the behaviour every store shows (internal/storetest).
func TestStore(t *testing.T) {
	t.Parallel()
	pgtest.Require(t)
	storetest.Run(t, openStores)
}
