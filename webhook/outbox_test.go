package webhook_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/webhook"
)

// schedulingOutbox stands in for an outbox that has ScheduleRetry, which
// the SQLite outbox does not (yet); it records what the adapter passes.
type schedulingOutbox struct {
	*sqliteLikeOutbox
	next   time.Time
	reason string
}

type sqliteLikeOutbox struct{ lost bool }

func (o *sqliteLikeOutbox) ClaimDeliveries(ctx context.Context, limit int, lease time.Duration) ([]*tpp.WebhookDelivery, error) {
	return nil, nil
}

func (o *sqliteLikeOutbox) MarkDelivered(ctx context.Context, eventID, leaseToken string) error {
	if o.lost {
		return tpp.Errorf(tpp.EConflict, "lease lost")
	}
	return nil
}

func (o *sqliteLikeOutbox) MarkFailed(ctx context.Context, eventID, leaseToken, reason string) error {
	return errors.New("MarkFailed called although ScheduleRetry exists")
}

func (o *schedulingOutbox) ScheduleRetry(ctx context.Context, eventID, leaseToken, reason string, next time.Time) error {
	o.reason, o.next = reason, next
	return nil
}

func TestOutboxStoreUsesRetrySchedulerAndMapsLeaseLoss(t *testing.T) {
	t.Parallel()
	ob := &schedulingOutbox{sqliteLikeOutbox: &sqliteLikeOutbox{}}
	st := webhook.NewOutboxStore(ob, nil)
	next := time.Date(2026, 11, 22, 10, 0, 7, 0, time.UTC)
	if err := st.MarkFailed(context.Background(), webhook.Delivery{EventID: "evt_1", LeaseToken: "x"},
		webhook.Failure{Error: "HTTP 500", NextAttempt: next}); err != nil {
		t.Fatal(err)
	}
	if !ob.next.Equal(next) || ob.reason != "HTTP 500" {
		t.Errorf("ScheduleRetry got %v %q", ob.next, ob.reason)
	}
	ob.lost = true
	err := st.MarkDelivered(context.Background(), webhook.Delivery{EventID: "evt_1", LeaseToken: "x"}, next)
	if !errors.Is(err, webhook.ErrLeaseLost) || tpp.ErrorCode(err) != tpp.EConflict {
		t.Errorf("lost lease = %v, want ErrLeaseLost wrapping the conflict", err)
	}
	if _, err := st.ClaimDue(context.Background(), next, next, 5); err == nil {
		t.Error("claim with a zero lease accepted")
	}
}

// The real SQLite outbox reports a lost lease on both marks.
func TestOutboxStoreLeaseLossWithSQLite(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	env := openSQLEnv(t, filepath.Join(t.TempDir(), "tpp.db"), clock)
	rc := newReceiver(t, nil)
	clientID, _ := env.newClient(t, rc.URL)
	ev := env.enqueue(t, clientID, "pay_1")
	now := clock.Now()
	ds, err := env.store.ClaimDue(context.Background(), now, now.Add(time.Minute), 10)
	if err != nil || len(ds) != 1 || ds[0].EventID != ev.ID || ds[0].Attempt != 1 || ds[0].URL != rc.URL {
		t.Fatalf("ClaimDue = %+v, %v", ds, err)
	}
	if again, _ := env.store.ClaimDue(context.Background(), now, now.Add(time.Minute), 10); len(again) != 0 {
		t.Fatalf("claimed again under a live lease: %+v", again)
	}
	clock.Advance(time.Minute)
	newer, err := env.store.ClaimDue(context.Background(), clock.Now(), clock.Now().Add(time.Minute), 10)
	if err != nil || len(newer) != 1 || newer[0].Attempt != 2 {
		t.Fatalf("re-claim after lease expiry = %+v, %v", newer, err)
	}
	stale := ds[0]
	if err := env.store.MarkFailed(context.Background(), stale, webhook.Failure{Error: "x", NextAttempt: clock.Now()}); !errors.Is(err, webhook.ErrLeaseLost) {
		t.Errorf("MarkFailed with a stale lease = %v, want ErrLeaseLost", err)
	}
	if err := env.store.MarkDelivered(context.Background(), newer[0], clock.Now()); err != nil {
		t.Errorf("MarkDelivered with the live lease: %v", err)
	}
	if err := env.store.MarkDelivered(context.Background(), stale, clock.Now()); !errors.Is(err, webhook.ErrLeaseLost) {
		t.Errorf("MarkDelivered with a stale lease after delivery = %v", err)
	}
	secrets, err := env.store.Secrets(context.Background(), clientID)
	if err != nil || len(secrets) != 1 || secrets[0][:6] != "whsec_" {
		t.Errorf("Secrets = %v, %v", len(secrets), err)
	}
}
