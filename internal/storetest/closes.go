package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
)

func testRevokeClientQueuesConsentCloses(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	c, _ := f.client(t)
	other, _ := f.client(t)
	pending := f.consent(t, c, "u")
	active := f.activate(t, f.consent(t, c, "u"), 1)
	// Revoked earlier by the fintech: the API closed it then.
	earlier := f.activate(t, f.consent(t, c, "u"), 1)
	if _, err := f.consents.TransitionConsent(ctx, tpp.ConsentTransition{ID: earlier.ID, To: tpp.ConsentRevoked,
		Actor: tpp.ActorClient(c.ID), ClientID: c.ID}); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Minute)
	otherActive := f.activate(t, f.consent(t, other, "u"), 2)

	if ids, err := f.consents.PendingCloses(ctx, 10); err != nil || len(ids) != 0 {
		t.Fatalf("queue before any client revocation: %v, %v", ids, err)
	}
	if _, err := f.clients.RevokeClient(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	ids, err := f.consents.PendingCloses(ctx, 10)
	slices.Sort(ids)
	want := []string{pending.ID, active.ID}
	slices.Sort(want)
	if err != nil || !slices.Equal(ids, want) {
		t.Fatalf("queued closes = %v, %v; want the two consents the revocation revoked %v", ids, err, want)
	}
	// Each revocation is the status machine's, by the operator, audited.
	if n := count(t, f.db, `SELECT count(*) FROM audit_log WHERE client_id = ? AND actor = ? AND action = ?
		AND to_status = 'revoked' AND consent_id IN (?, ?)`, c.ID, tpp.ActorOperator, tpp.AuditConsentTransition, pending.ID, active.ID); n != 2 {
		t.Errorf("%d operator revocations audited, want 2", n)
	}
	if got, _ := f.consents.ConsentByID(ctx, otherActive.ID); got.Status != tpp.ConsentActive {
		t.Errorf("another client's consent is %s", got.Status)
	}

	// A close that keeps failing drops out of the queue after
	// f.MaxCloseAttempts, with its last error kept; a done one leaves it.
	for range f.MaxCloseAttempts - 1 {
		if err := f.consents.CloseFailed(ctx, active.ID, "bank down"); err != nil {
			t.Fatal(err)
		}
	}
	if ids, _ := f.consents.PendingCloses(ctx, 10); !slices.Contains(ids, active.ID) {
		t.Fatalf("dropped before %d attempts: %v", f.MaxCloseAttempts, ids)
	}
	if err := f.consents.CloseFailed(ctx, active.ID, "bank down"); err != nil {
		t.Fatal(err)
	}
	if ids, _ := f.consents.PendingCloses(ctx, 10); !slices.Equal(ids, []string{pending.ID}) {
		t.Fatalf("queue after %d failures = %v, want only %s", f.MaxCloseAttempts, ids, pending.ID)
	}
	if n := count(t, f.db, `SELECT count(*) FROM consent_closes WHERE consent_id = ? AND last_error = 'bank down'`, active.ID); n != 1 {
		t.Errorf("the failing close's row is gone or has no error")
	}
	if err := f.consents.CloseDone(ctx, pending.ID); err != nil {
		t.Fatal(err)
	}
	if ids, _ := f.consents.PendingCloses(ctx, 10); len(ids) != 0 {
		t.Fatalf("queue after done = %v", ids)
	}
}
