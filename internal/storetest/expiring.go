package storetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
)

// consent.expiring goes out once per authorization period, even when two
// sweeps (replicas) run at once, and again after a re-authorization.
func testNotifyExpiringOncePerAuthorization(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	c, _ := f.client(t)
	con := f.activate(t, f.consent(t, c, "u"), 1)
	expiring := func() int {
		return count(t, f.db, `SELECT COUNT(*) FROM webhook_events WHERE client_id = ? AND type = ?`, c.ID, tpp.EventConsentExpiring)
	}
	notice := tpp.ConsentExpiringNotice
	if n, err := f.consents.NotifyExpiring(ctx, f.clock.Now(), notice, 10); err != nil || n != 0 {
		t.Fatalf("far from its date: %d, %v", n, err)
	}
	f.clock.Add(tpp.ConsentReauthAfter - notice + time.Hour)
	var wg sync.WaitGroup
	var mu sync.Mutex
	sent := 0
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := f.consents.NotifyExpiring(ctx, f.clock.Now(), notice, 10)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			sent += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	if sent != 1 || expiring() != 1 {
		t.Fatalf("two sweeps sent %d, stored %d; want one", sent, expiring())
	}
	if n, err := f.consents.NotifyExpiring(ctx, f.clock.Now(), notice, 10); err != nil || n != 0 {
		t.Fatalf("second sweep: %d, %v", n, err)
	}
	// Re-authorized: a new period, a new notice when it nears its end.
	if _, err := f.consents.TransitionConsent(ctx, tpp.ConsentTransition{ID: con.ID, To: tpp.ConsentReauthRequired, Actor: tpp.ActorSystem}); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Hour)
	f.activate(t, con, 1)
	f.clock.Add(tpp.ConsentReauthAfter - notice + time.Hour)
	if n, err := f.consents.NotifyExpiring(ctx, f.clock.Now(), notice, 10); err != nil || n != 1 || expiring() != 2 {
		t.Fatalf("after re-authorization: %d, %v (%d stored)", n, err, expiring())
	}
}

// Each client's webhook events are numbered 1, 2, 3, … in the payload and
// the row, independently of other clients'.
func testWebhookEventsNumberedPerClient(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	a, _ := f.client(t)
	b, _ := f.client(t)
	for i, c := range []*tpp.FintechClient{a, b, a, a, b} {
		if _, err := f.outbox.EnqueueEvent(ctx, c.ID, tpp.EventConsentUpdated, tpp.ConsentEventData{ConsentID: fmt.Sprint("con_", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for c, want := range map[string]int{a.ID: 3, b.ID: 2} {
		var rows []struct {
			Sequence int64  `db:"sequence"`
			Payload  string `db:"payload"`
		}
		if err := f.db.SelectContext(ctx, &rows, `SELECT sequence, payload FROM webhook_events WHERE client_id = ? ORDER BY sequence`, c); err != nil {
			t.Fatal(err)
		}
		if len(rows) != want {
			t.Fatalf("client %s: %d events, want %d", c, len(rows), want)
		}
		for i, r := range rows {
			if r.Sequence != int64(i+1) || !strings.Contains(r.Payload, fmt.Sprintf(`"sequence":%d`, i+1)) {
				t.Fatalf("client %s event %d: sequence %d, payload %s", c, i, r.Sequence, r.Payload)
			}
		}
	}
}
