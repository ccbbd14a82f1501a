package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/internal/storetest"
	"github.com/bunqtpp/tpp/seal"
)

// openStores opens a fresh database file for t with every service over it.
func openStores(t testing.TB, clock tpp.Clock, kr *seal.Keyring) storetest.Stores {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "tpp.db"), clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
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
	storetest.Run(t, openStores)
}
