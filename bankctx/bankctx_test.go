package bankctx_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/bankctx"
	"github.com/bunqtpp/tpp/bankctx/bankctxtest"
	"github.com/bunqtpp/tpp/internal/banktest"
	"github.com/bunqtpp/tpp/internal/redistest"
	"github.com/bunqtpp/tpp/internal/stacktest"
	"github.com/bunqtpp/tpp/psd2"
	"github.com/bunqtpp/tpp/redis"
	"github.com/bunqtpp/tpp/seal"
	"github.com/bunqtpp/tpp/sqlite"

	goredis "github.com/redis/go-redis/v9"
)

func TestKeyPool(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	p := bankctx.NewKeyPool(3, 2)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for p.Len() < 3 {
		if time.Now().After(deadline) {
			t.Fatal("pool did not fill")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := p.Run(ctx); err == nil {
		t.Fatal("second Run accepted")
	}
	time.Sleep(20 * time.Millisecond)
	if p.Len() != 3 || p.Cap() != 3 {
		t.Fatalf("pool holds %d of %d", p.Len(), p.Cap())
	}
	k1, err := p.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := p.Get(ctx)
	if k1.N.BitLen() != 2048 || k1.N.Cmp(k2.N) == 0 {
		t.Fatal("keys wrong or reused")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop with its context")
	}
	// Drained and stopped: Get fails at once instead of hanging.
	for p.Len() > 0 {
		_, _ = p.Get(context.Background())
	}
	if _, err := p.Get(context.Background()); !errors.Is(err, bankctx.ErrPoolStopped) {
		t.Fatalf("Get on empty stopped pool: %v", err)
	}
	// Running but empty: Get waits only as long as its context.
	slow := bankctx.NewKeyPool(1, 1)
	rctx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	slow.Start(rctx) // running at once: an early Get waits instead of failing
	if k, err := slow.Get(context.Background()); err != nil || k == nil {
		t.Fatalf("Get right after Start: %v", err)
	}
	short, c2 := context.WithTimeout(context.Background(), time.Microsecond)
	defer c2()
	time.Sleep(time.Millisecond)
	if _, err := slow.Get(short); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get with expired context: %v", err)
	}
}

// world is a consent made active with a real token from the emulator.
type world struct {
	env      *banktest.Env
	tpp      *bankctxtest.TPP
	rdb      goredis.UniversalClient
	consents *sqlite.ConsentService
	consent  *tpp.Consent
	token    string
	pool     *bankctx.KeyPool
	keyring  *seal.Keyring
	budget   psd2.Budget // the replicas' rate budget; nil for the default
}

func newWorld(t testing.TB) *world {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w := &world{env: banktest.Start(t)}
	w.tpp = bankctxtest.Register(t, w.env, "https://tpp.example/oauth/callback", "")
	w.rdb = redistest.Start(t).Client(t)
	mk := make([]byte, 32)
	_, _ = rand.Read(mk)
	w.keyring, _ = seal.NewKeyring(seal.Key{ID: "k1", Key: mk})
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "t.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w.consents = sqlite.NewConsentService(db, w.keyring)
	cl, _, err := sqlite.NewClientService(db, w.keyring).CreateClient(ctx, tpp.NewClient{Name: "A", ReturnURLs: []string{"https://a.example/r"}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := w.consents.CreateConsent(ctx, tpp.NewConsent{ClientID: cl.ID, UserRef: "u", Scopes: []tpp.Scope{tpp.ScopeAccounts}, ReturnURL: "https://a.example/r", Actor: tpp.ActorSystem})
	if err != nil {
		t.Fatal(err)
	}
	user := bankctxtest.Person(t, w.env)
	w.token = w.tpp.AccessToken(t, user.ID)
	w.consent, err = w.consents.TransitionConsent(ctx, tpp.ConsentTransition{ID: c.ID, To: tpp.ConsentActive, BunqUserID: user.ID, BunqUserName: user.DisplayName, AccessToken: w.token, Actor: tpp.ActorPSU})
	if err != nil {
		t.Fatal(err)
	}
	w.pool = bankctx.NewKeyPool(4, 1)
	w.pool.Start(ctx)
	return w
}

// replica is one TPP process: its own bunq client and provider, sharing
// Redis and SQLite with the others.
type replica struct {
	p        *bankctx.Provider
	client   *psd2.Client
	rebuilds *int
	mu       *sync.Mutex
}

func (w *world) replica(t testing.TB) *replica { return w.replicaWith(t, 0, nil) }

// replicaWith is a replica that trusts what it parsed for recheck,
// timed by clock (see bankctx.Config.Recheck).
func (w *world) replicaWith(t testing.TB, recheck time.Duration, clock tpp.Clock) *replica {
	t.Helper()
	keys := redis.NewKeys("b:")
	store, err := redis.NewContextStore(w.rdb, keys, w.keyring, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{rebuilds: new(int), mu: &sync.Mutex{}}
	r.client, err = psd2.New(psd2.Options{BaseURL: w.env.APIURL, RateMargin: -1, Budget: w.budget, HTTPClient: &http.Client{Timeout: 10 * time.Second},
		OnRenew: func(ctx context.Context, c *psd2.Context) error { return r.p.OnRenew(ctx, c) }})
	if err != nil {
		t.Fatal(err)
	}
	r.p, err = bankctx.New(bankctx.Config{Bank: r.client, Store: store, Locker: redis.NewLocker(w.rdb, keys), Tokens: w.consents, Keys: w.pool, CloseTimeout: 300 * time.Millisecond,
		OnRebuild: func(string) { r.mu.Lock(); *r.rebuilds++; r.mu.Unlock() }, Recheck: recheck, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *replica) count() int { r.mu.Lock(); defer r.mu.Unlock(); return *r.rebuilds }

func TestCreateGetPurge(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	r := w.replica(t)
	ctx := context.Background()
	bc, user, err := r.p.Create(ctx, w.consent.ID, w.token)
	if err != nil {
		t.Fatal(err)
	}
	if user.ID != w.consent.BunqUserID || user.DisplayName == "" || user.APIKeyID != bc.UserID() || bc.Kind() != psd2.KindOAuth {
		t.Fatalf("user %+v, context user %d", user, bc.UserID())
	}
	if id, ok := r.p.ConsentOf(bc); !ok || id != w.consent.ID {
		t.Fatal("context not tracked")
	}
	got, err := r.p.Get(ctx, w.consent)
	if err != nil {
		t.Fatal(err)
	}
	if got.InstallationID() != bc.InstallationID() || got.SessionID() != bc.SessionID() || r.count() != 0 {
		t.Fatal("Get did not return the stored context")
	}
	if _, err := r.client.ListMonetaryAccounts(ctx, got, psd2.Page{}); err != nil {
		t.Fatalf("stored context unusable: %v", err)
	}
	// A context not from the provider is ignored by the renewal hook.
	if err := r.p.OnRenew(ctx, w.tpp.Context); err != nil {
		t.Fatal(err)
	}
	if err := r.p.Purge(ctx, w.consent.ID); err != nil {
		t.Fatal(err)
	}
	if n, _ := w.rdb.Exists(ctx, "b:ctx:"+w.consent.ID).Result(); n != 0 {
		t.Fatal("purge left the context")
	}
	// Only active consents get a context.
	pending := *w.consent
	pending.Status = tpp.ConsentPending
	if _, err := r.p.Get(ctx, &pending); tpp.ErrorCode(err) != tpp.EConsentNotActive {
		t.Fatalf("pending consent: %v", err)
	}
}

// A value that does not open (tampered, or copied from another consent)
// is rebuilt over, never used.
func TestUnreadableContextIsRebuilt(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	r := w.replica(t)
	ctx := context.Background()
	if _, _, err := r.p.Create(ctx, w.consent.ID, w.token); err != nil {
		t.Fatal(err)
	}
	key := "b:ctx:" + w.consent.ID
	raw, _ := w.rdb.Get(ctx, key).Bytes()
	raw[len(raw)-1] ^= 1
	w.rdb.Set(ctx, key, raw, 0)
	if _, err := r.p.Get(ctx, w.consent); err != nil {
		t.Fatal(err)
	}
	if r.count() != 1 {
		t.Fatalf("rebuilds %d", r.count())
	}
}

// Two replicas sharing Redis: 20 concurrent Gets after a flush rebuild once.
func TestOneRebuildAcrossReplicas(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a, b := w.replica(t), w.replica(t)
	ctx := context.Background()
	if _, _, err := a.p.Create(ctx, w.consent.ID, w.token); err != nil {
		t.Fatal(err)
	}
	w.rdb.FlushAll(ctx)
	w.env.ResetStats(t)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		rp := a
		if i%2 == 1 {
			rp = b
		}
		wg.Go(func() {
			if _, err := rp.p.Get(ctx, w.consent); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if st := w.env.Stats(t); st["POST /v1/session-server"] != 1 || st["POST /v1/installation"] != 1 {
		t.Fatalf("bank calls %v", st)
	}
	if a.count()+b.count() != 1 {
		t.Fatalf("rebuilds %d + %d", a.count(), b.count())
	}
}

func TestVerifyRevokedGrant(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	r := w.replica(t)
	ctx := context.Background()
	if _, _, err := r.p.Create(ctx, w.consent.ID, w.token); err != nil {
		t.Fatal(err)
	}
	if err := r.p.Verify(ctx, w.consent); err != nil {
		t.Fatalf("live grant: %v", err)
	}
	w.env.RevokeGrant(t, w.consent.BunqUserID, w.tpp.ClientID)
	if err := r.p.Verify(ctx, w.consent); !errors.Is(err, bankctx.ErrGrantRevoked) {
		t.Fatalf("revoked grant: %v", err)
	}
	// Closing still purges locally even though the bank refuses the session
	// (the bank error, if any, is reported after the purge).
	_ = r.p.Close(ctx, w.consent.ID)
	if n, _ := w.rdb.Exists(ctx, "b:ctx:"+w.consent.ID).Result(); n != 0 {
		t.Fatal("context left after close")
	}
}

// Unchanged stored contexts are parsed once per replica; a change made by
// another replica (a renewal, a rebuild) is seen at the next Get.
func TestParsedContextFollowsRedis(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a, b := w.replica(t), w.replica(t)
	ctx := context.Background()
	if _, _, err := a.p.Create(ctx, w.consent.ID, w.token); err != nil {
		t.Fatal(err)
	}
	first, err := b.p.Get(ctx, w.consent)
	if err != nil {
		t.Fatal(err)
	}
	again, err := b.p.Get(ctx, w.consent)
	if err != nil {
		t.Fatal(err)
	}
	if first != again {
		t.Fatal("an unchanged context was parsed again")
	}
	// Replica a rebuilds the context (as after a purge): b must not keep
	// serving its old one.
	if err := a.p.Purge(ctx, w.consent.ID); err != nil {
		t.Fatal(err)
	}
	rebuilt, err := a.p.Get(ctx, w.consent)
	if err != nil {
		t.Fatal(err)
	}
	now, err := b.p.Get(ctx, w.consent)
	if err != nil {
		t.Fatal(err)
	}
	if now == first || now.InstallationID() != rebuilt.InstallationID() {
		t.Fatalf("replica b still uses installation %d after a's rebuild to %d", now.InstallationID(), rebuilt.InstallationID())
	}
}

// With Recheck, a replica uses what it parsed for that long without
// asking Redis, then follows Redis again: another replica's rebuild shows
// within Recheck, a purge in Redis leads to a rebuild, and the replica's
// own changes show at once.
func TestRecheckWindow(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	clock := stacktest.NewClock(time.Now())
	a, b := w.replica(t), w.replicaWith(t, time.Second, clock)
	ctx := context.Background()
	if _, _, err := a.p.Create(ctx, w.consent.ID, w.token); err != nil {
		t.Fatal(err)
	}
	first, err := b.p.Get(ctx, w.consent)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.p.Purge(ctx, w.consent.ID); err != nil {
		t.Fatal(err)
	}
	rebuilt, err := a.p.Get(ctx, w.consent)
	if err != nil {
		t.Fatal(err)
	}
	// Within the window b keeps its context: it still works at the bank.
	clock.Advance(999 * time.Millisecond)
	if got, err := b.p.Get(ctx, w.consent); err != nil || got != first {
		t.Fatalf("within Recheck b got installation %d (%v), want its own %d", got.InstallationID(), err, first.InstallationID())
	}
	if _, err := b.client.ListMonetaryAccounts(ctx, first, psd2.Page{}); err != nil {
		t.Fatalf("the older context no longer works at the bank: %v", err)
	}
	// After it, b follows Redis.
	clock.Advance(time.Millisecond)
	now, err := b.p.Get(ctx, w.consent)
	if err != nil || now.InstallationID() != rebuilt.InstallationID() {
		t.Fatalf("after Recheck b uses installation %d (%v), want a's %d", now.InstallationID(), err, rebuilt.InstallationID())
	}
	// Redis lost the context: after the window b rebuilds it, once.
	if err := w.rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	again, err := b.p.Get(ctx, w.consent)
	if err != nil || again == now || b.count() != 1 {
		t.Fatalf("after a flush: %v, same context %v, %d rebuilds", err, again == now, b.count())
	}
	// Its own purge shows at once, window or not.
	if err := b.p.Purge(ctx, w.consent.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := b.p.Get(ctx, w.consent); err != nil || got == again || b.count() != 2 {
		t.Fatalf("after its own purge: %v, same context %v, %d rebuilds", err, got == again, b.count())
	}
}
