package webhook_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/seal"
	"github.com/bunqtpp/tpp/sqlite"
	"github.com/bunqtpp/tpp/webhook"
)

// sqlEnv is one process's view of a real SQLite outbox: its own connection
// to the file, the client service (which opens sealed secrets) and the
// outbox, adapted to webhook.Store.
type sqlEnv struct {
	db      *sqlite.DB
	clients *sqlite.ClientService
	outbox  *sqlite.Outbox
	store   *webhook.OutboxStore
}

func testKeyring(t testing.TB) *seal.Keyring {
	t.Helper()
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i + 1)
	}
	kr, err := seal.NewKeyring(seal.Key{ID: "k1", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func openSQLEnv(t testing.TB, path string, clock tpp.Clock) *sqlEnv {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path, clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clients := sqlite.NewClientService(db, testKeyring(t))
	outbox := sqlite.NewOutbox(db)
	return &sqlEnv{db: db, clients: clients, outbox: outbox, store: webhook.NewOutboxStore(outbox, clients)}
}

// newClient registers a client whose webhooks go to url and returns its
// id and signing secret.
func (e *sqlEnv) newClient(t testing.TB, url string) (string, string) {
	t.Helper()
	c, sec, err := e.clients.CreateClient(context.Background(), tpp.NewClient{
		Name: "Acme", ReturnURLs: []string{"https://acme.example/return"}, WebhookURL: url,
	})
	if err != nil {
		t.Fatalf("CreateClient: %v", err)
	}
	return c.ID, sec.WebhookSecret
}

func (e *sqlEnv) enqueue(t *testing.T, clientID, paymentID string) *tpp.WebhookEvent {
	t.Helper()
	ev, err := e.outbox.EnqueueEvent(context.Background(), clientID, tpp.EventPaymentUpdated, tpp.PaymentEventData{
		PaymentID: paymentID, ConsentID: "con_1", Kind: "single", Status: "executed", PreviousStatus: "pending",
	})
	if err != nil {
		t.Fatalf("EnqueueEvent: %v", err)
	}
	return ev
}

type deliveryRow struct {
	Attempts    int            `db:"attempts"`
	NextAttempt string         `db:"next_attempt_at"`
	LastError   string         `db:"last_error"`
	DeliveredAt sql.NullString `db:"delivered_at"`
	AbandonedAt sql.NullString `db:"abandoned_at"`
	LeaseToken  string         `db:"lease_token"`
}

func (e *sqlEnv) row(t *testing.T, eventID string) deliveryRow {
	t.Helper()
	var r deliveryRow
	if err := e.db.GetContext(context.Background(), &r, `SELECT attempts, next_attempt_at, last_error,
		delivered_at, abandoned_at, lease_token FROM webhook_deliveries WHERE event_id = ?`, eventID); err != nil {
		t.Fatalf("read delivery %s: %v", eventID, err)
	}
	return r
}

// stamp formats t as the schema stores times.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

func TestSQLiteFailsTwiceThenSucceeds(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	env := openSQLEnv(t, filepath.Join(t.TempDir(), "tpp.db"), clock)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n <= 2 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	clientID, secret := env.newClient(t, rc.URL+"/hooks")
	ev := env.enqueue(t, clientID, "pay_1")
	var res results
	d := newDispatcher(t, env.store, webhook.Options{Clock: clock, OnResult: res.hook})
	runDispatcher(t, d)

	d1, _ := tpp.WebhookRetryDelay(1)
	d2, _ := tpp.WebhookRetryDelay(2)
	d.Notify()
	waitFor(t, "first failure", func() bool { return env.row(t, ev.ID).LastError != "" })
	r := env.row(t, ev.ID)
	if r.Attempts != 1 || r.NextAttempt != stamp(clock.Now().Add(d1)) || r.LeaseToken != "" {
		t.Fatalf("after attempt 1: %+v, want 1 attempt, next at now+%v, lease cleared", r, d1)
	}
	if !strings.Contains(r.LastError, "502") {
		t.Errorf("last error = %q", r.LastError)
	}
	clock.Advance(d1)
	d.Notify()
	waitFor(t, "second failure", func() bool { return env.row(t, ev.ID).Attempts == 2 && env.row(t, ev.ID).LeaseToken == "" })
	if r := env.row(t, ev.ID); r.NextAttempt != stamp(clock.Now().Add(d2)) {
		t.Fatalf("after attempt 2 next = %s, want now+%v", r.NextAttempt, d2)
	}
	clock.Advance(d2)
	d.Notify()
	waitFor(t, "delivery", func() bool { return env.row(t, ev.ID).DeliveredAt.Valid })

	r = env.row(t, ev.ID)
	if r.Attempts != 3 || r.LastError != "" || rc.count() != 3 {
		t.Fatalf("final row %+v with %d requests; want 3 attempts, 3 requests", r, rc.count())
	}
	last := rc.requests()[2]
	if string(last.Body) != string(ev.Payload) || last.Header.Get(webhook.HeaderID) != ev.ID {
		t.Errorf("sent id %q body %s; want %s %s", last.Header.Get(webhook.HeaderID), last.Body, ev.ID, ev.Payload)
	}
	if err := webhook.Verify(secret, last.Header, last.Body, clock.Now(), 0); err != nil {
		t.Errorf("verify with the secret shown at client creation: %v", err)
	}
	if got := res.get(); len(got) != 3 || got[0] || got[1] || !got[2] {
		t.Errorf("OnResult oks = %v", got)
	}
}

func TestSQLiteHangingReceiverTimesOut(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	env := openSQLEnv(t, filepath.Join(t.TempDir(), "tpp.db"), clock)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			<-r.Context().Done()
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	clientID, _ := env.newClient(t, rc.URL)
	ev := env.enqueue(t, clientID, "pay_1")
	d := newDispatcher(t, env.store, webhook.Options{Clock: clock, Timeout: 500 * time.Millisecond})
	runDispatcher(t, d)
	d.Notify()
	waitFor(t, "timeout recorded", func() bool { return env.row(t, ev.ID).LastError != "" })
	if e := env.row(t, ev.ID).LastError; !strings.Contains(e, "timeout") {
		t.Fatalf("last error = %q", e)
	}
	d1, _ := tpp.WebhookRetryDelay(1)
	clock.Advance(d1)
	d.Notify()
	waitFor(t, "delivery", func() bool { return env.row(t, ev.ID).DeliveredAt.Valid })
}

// Two replicas, each with its own connection to one database file, drain
// the outbox together: every event reaches the receiver exactly once.
func TestSQLiteTwoDispatchersDeliverEachEventOnce(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	path := filepath.Join(t.TempDir(), "tpp.db")
	a := openSQLEnv(t, path, clock)
	b := openSQLEnv(t, path, clock)

	var mu sync.Mutex
	seen := map[string]int{}
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Header.Get(webhook.HeaderID)]++
		mu.Unlock()
		time.Sleep(time.Millisecond)
		w.WriteHeader(http.StatusOK)
	})
	clientID, _ := a.newClient(t, rc.URL)
	const n = 40
	ids := make([]string, n)
	for i := range n {
		ids[i] = a.enqueue(t, clientID, fmt.Sprint("pay_", i)).ID
	}
	da := newDispatcher(t, a.store, webhook.Options{Clock: clock, Concurrency: 4})
	dispB := newDispatcher(t, b.store, webhook.Options{Clock: clock, Concurrency: 4})
	runDispatcher(t, da)
	runDispatcher(t, dispB)
	da.Notify()
	dispB.Notify()
	waitFor(t, "all delivered", func() bool {
		var left int
		if err := a.db.GetContext(context.Background(), &left,
			`SELECT count(*) FROM webhook_deliveries WHERE delivered_at IS NULL`); err != nil {
			t.Fatal(err)
		}
		return left == 0
	})
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("%s received %d times, want once", id, seen[id])
		}
	}
	if rc.count() != n {
		t.Errorf("receiver got %d requests for %d events", rc.count(), n)
	}
	for _, id := range ids {
		if r := a.row(t, id); r.Attempts != 1 {
			t.Errorf("%s: %d attempts, want 1", id, r.Attempts)
		}
	}
}

// A shutdown that outlasts the grace period aborts the attempt without
// recording it; another replica re-claims the event when the lease expires
// and sends it with the same webhook-id.
func TestSQLiteAbortedAttemptIsReclaimedAfterLease(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	path := filepath.Join(t.TempDir(), "tpp.db")
	a := openSQLEnv(t, path, clock)
	b := openSQLEnv(t, path, clock)
	var mu sync.Mutex
	hang := true
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := hang
		mu.Unlock()
		if h {
			<-r.Context().Done()
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	clientID, secret := a.newClient(t, rc.URL)
	ev := a.enqueue(t, clientID, "pay_1")
	lease := 2 * time.Minute
	da := newDispatcher(t, a.store, webhook.Options{Clock: clock, Timeout: time.Minute, Lease: lease, ShutdownGrace: 50 * time.Millisecond})
	stopA := runDispatcher(t, da)
	da.Notify()
	waitFor(t, "attempt in flight", func() bool { return rc.count() == 1 })
	stopA()
	if r := a.row(t, ev.ID); r.Attempts != 1 || r.LeaseToken == "" || r.LastError != "" || r.DeliveredAt.Valid {
		t.Fatalf("after aborted attempt: %+v; want it leased, unrecorded", r)
	}

	mu.Lock()
	hang = false
	mu.Unlock()
	dB := newDispatcher(t, b.store, webhook.Options{Clock: clock, Lease: lease})
	runDispatcher(t, dB)
	dB.Notify()
	time.Sleep(50 * time.Millisecond)
	if rc.count() != 1 {
		t.Fatal("second replica sent while the first one's lease was valid")
	}
	clock.Advance(lease)
	dB.Notify()
	waitFor(t, "re-delivery", func() bool { return b.row(t, ev.ID).DeliveredAt.Valid })
	r := rc.requests()[1]
	if r.Header.Get(webhook.HeaderID) != ev.ID {
		t.Errorf("re-delivery webhook-id = %q, want %q", r.Header.Get(webhook.HeaderID), ev.ID)
	}
	if err := webhook.Verify(secret, r.Header, r.Body, clock.Now(), 0); err != nil {
		t.Error(err)
	}
	if got := b.row(t, ev.ID).Attempts; got != 2 {
		t.Errorf("attempts = %d, want 2 (the aborted one counts)", got)
	}
}

func TestSQLiteGracefulShutdownFinishesInFlight(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	env := openSQLEnv(t, filepath.Join(t.TempDir(), "tpp.db"), clock)
	entered := make(chan struct{})
	enter := sync.OnceFunc(func() { close(entered) })
	release := make(chan struct{})
	releaseAll := sync.OnceFunc(func() { close(release) })
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		enter()
		<-release
		w.WriteHeader(http.StatusOK)
	})
	t.Cleanup(releaseAll) // before the receiver's Close, which waits for handlers
	clientID, _ := env.newClient(t, rc.URL)
	ev := env.enqueue(t, clientID, "pay_1")
	d := newDispatcher(t, env.store, webhook.Options{Clock: clock})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	d.Notify()
	<-entered
	cancel()
	later := env.enqueue(t, clientID, "pay_2")
	d.Notify()
	select {
	case <-done:
		t.Fatal("Run returned with a delivery in flight")
	case <-time.After(50 * time.Millisecond):
	}
	releaseAll()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the in-flight delivery finished")
	}
	if !env.row(t, ev.ID).DeliveredAt.Valid {
		t.Error("in-flight delivery not recorded after graceful shutdown")
	}
	if r := env.row(t, later.ID); r.Attempts != 0 {
		t.Errorf("event enqueued during shutdown was claimed (%d attempts)", r.Attempts)
	}
}

func TestSQLiteNotifyWakesImmediately(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	env := openSQLEnv(t, filepath.Join(t.TempDir(), "tpp.db"), clock)
	rc := newReceiver(t, nil)
	clientID, _ := env.newClient(t, rc.URL)
	st := &countingStore{Store: env.store}
	d := newDispatcher(t, st, webhook.Options{Clock: clock, PollInterval: time.Hour})
	runDispatcher(t, d)
	waitFor(t, "first, empty claim", func() bool { return st.claims.Load() >= 1 })
	ev := env.enqueue(t, clientID, "pay_1")
	time.Sleep(50 * time.Millisecond)
	if rc.count() != 0 {
		t.Fatal("delivered before Notify with an hour-long poll")
	}
	d.Notify()
	waitFor(t, "delivery after Notify", func() bool { return env.row(t, ev.ID).DeliveredAt.Valid })
}

// countingStore counts claims, so a test knows Run has gone idle.
type countingStore struct {
	webhook.Store
	claims atomic.Int64
}

func (s *countingStore) ClaimDue(ctx context.Context, now, leaseUntil time.Time, limit int) ([]webhook.Delivery, error) {
	defer s.claims.Add(1)
	return s.Store.ClaimDue(ctx, now, leaseUntil, limit)
}

// The real outbox takes the dispatcher's retry times (jitter, Retry-After).
var _ webhook.RetryScheduler = (*sqlite.Outbox)(nil)

// The receiver is down while three events are recorded, and back for the
// next three, which arrive before the first three's retries: delivery order
// is not kept (as documented), but every event arrives once and carries
// its client's sequence number, 1…6 in the order recorded, so the receiver
// can put them back in order.
func TestSQLiteReceiverBackOrdersBySequence(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	env := openSQLEnv(t, filepath.Join(t.TempDir(), "tpp.db"), clock)
	var down atomic.Bool
	down.Store(true)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	clientID, _ := env.newClient(t, rc.URL+"/hooks")
	other, _ := env.newClient(t, rc.URL+"/other") // numbers its own events
	d := newDispatcher(t, env.store, webhook.Options{Clock: clock})
	runDispatcher(t, d)

	var recorded []string
	for i := 1; i <= 3; i++ {
		recorded = append(recorded, env.enqueue(t, clientID, fmt.Sprintf("pay_%d", i)).ID)
	}
	env.enqueue(t, other, "pay_other")
	d.Notify()
	waitFor(t, "three failed attempts", func() bool { return rc.count() >= 4 })
	down.Store(false)
	for i := 4; i <= 6; i++ {
		recorded = append(recorded, env.enqueue(t, clientID, fmt.Sprintf("pay_%d", i)).ID)
	}
	d.Notify()
	waitFor(t, "the later events", func() bool { return env.row(t, recorded[5]).DeliveredAt.Valid })
	d1, _ := tpp.WebhookRetryDelay(1)
	clock.Advance(d1)
	d.Notify()
	waitFor(t, "the retries", func() bool {
		return env.row(t, recorded[0]).DeliveredAt.Valid && env.row(t, recorded[2]).DeliveredAt.Valid
	})

	var arrival []int64
	seqByID := map[string]int64{}
	for _, r := range rc.requests()[4:] {
		var body struct {
			Sequence int64 `json:"sequence"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
		id := r.Header.Get(webhook.HeaderID)
		if _, dup := seqByID[id]; dup {
			t.Fatalf("event %s delivered twice", id)
		}
		seqByID[id] = body.Sequence
		if slices.Contains(recorded, id) {
			arrival = append(arrival, body.Sequence)
		}
	}
	for i, id := range recorded {
		if seqByID[id] != int64(i+1) {
			t.Fatalf("event %d of the client has sequence %d (all: %v)", i+1, seqByID[id], seqByID)
		}
	}
	if slices.IsSorted(arrival) {
		t.Fatalf("arrival order %v: the retries came last, the test proves nothing", arrival)
	}
	t.Logf("arrival order by sequence: %v", arrival)
}
