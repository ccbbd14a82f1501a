package janitor_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/bankctx"
	"github.com/bunqtpp/tpp/bankctx/bankctxtest"
	"github.com/bunqtpp/tpp/internal/banktest"
	"github.com/bunqtpp/tpp/internal/redistest"
	"github.com/bunqtpp/tpp/janitor"
	"github.com/bunqtpp/tpp/psd2"
	"github.com/bunqtpp/tpp/redis"
	"github.com/bunqtpp/tpp/seal"
	"github.com/bunqtpp/tpp/sqlite"
)

const sessionDelete = "DELETE /v1/session/{id}"

// TestSweepClosesConsentsOfRevokedClients revokes clients as 'tpp clients
// revoke' does (SQLite only) and lets the janitor end their consents' bunq
// sessions at the emulated bank and purge their contexts from Redis.
func TestSweepClosesConsentsOfRevokedClients(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := banktest.Start(t)
	reg := bankctxtest.Register(t, env, "https://tpp.example/oauth/callback", "")
	rdb := redistest.Start(t).Client(t)
	mk := make([]byte, 32)
	_, _ = rand.Read(mk)
	kr, err := seal.NewKeyring(seal.Key{ID: "k1", Key: mk})
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "tpp.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clients := sqlite.NewClientService(db, kr)
	consents := sqlite.NewConsentService(db, kr)

	keys := redis.NewKeys("j:")
	store, err := redis.NewContextStore(rdb, keys, kr, 0)
	if err != nil {
		t.Fatal(err)
	}
	pool := bankctx.NewKeyPool(2, 1)
	poolCtx, stopPool := context.WithCancel(ctx)
	t.Cleanup(stopPool)
	pool.Start(poolCtx)
	var provider *bankctx.Provider
	bank, err := psd2.New(psd2.Options{BaseURL: env.APIURL, RateMargin: -1, HTTPClient: &http.Client{Timeout: 10 * time.Second},
		RetryBase: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond,
		OnRenew: func(ctx context.Context, c *psd2.Context) error { return provider.OnRenew(ctx, c) }})
	if err != nil {
		t.Fatal(err)
	}
	provider, err = bankctx.New(bankctx.Config{Bank: bank, Store: store, Locker: redis.NewLocker(rdb, keys),
		Tokens: consents, Keys: pool, CloseTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}

	user := bankctxtest.Person(t, env)
	// activeConsent makes an active consent of client with a live bunq
	// context in Redis, as the OAuth callback leaves it.
	activeConsent := func(clientID string) string {
		t.Helper()
		c, err := consents.CreateConsent(ctx, tpp.NewConsent{ClientID: clientID, UserRef: "u", Scopes: []tpp.Scope{tpp.ScopeAccounts},
			ReturnURL: "https://app.example/back", Actor: tpp.ActorClient(clientID)})
		if err != nil {
			t.Fatal(err)
		}
		token := reg.AccessToken(t, user.ID)
		if _, err := consents.TransitionConsent(ctx, tpp.ConsentTransition{ID: c.ID, To: tpp.ConsentActive, BunqUserID: user.ID,
			BunqUserName: user.DisplayName, AccessToken: token, Actor: tpp.ActorPSU}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := provider.Create(ctx, c.ID, token); err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	stored := func(id string) bool {
		t.Helper()
		_, err := store.Get(ctx, id)
		if errors.Is(err, tpp.ErrNotFound) {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		return true
	}
	newClient := func(name string) string {
		t.Helper()
		c, _, err := clients.CreateClient(ctx, tpp.NewClient{Name: name, ReturnURLs: []string{"https://app.example/back"}})
		if err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	a, b, keep := newClient("A"), newClient("B"), newClient("Keep")
	a1, a2, b1, k1 := activeConsent(a), activeConsent(a), activeConsent(b), activeConsent(keep)

	j := &janitor.Janitor{Consents: consents, Closes: consents, Sessions: provider, Clock: tpp.SystemClock{}}
	if res, err := j.Sweep(ctx); err != nil || res != (janitor.Result{}) {
		t.Fatalf("sweep before any revocation: %+v, %v", res, err)
	}

	// Client A is revoked: both its sessions end at the bank, both
	// contexts leave Redis; the other clients' consents are untouched.
	if _, err := clients.RevokeClient(ctx, a); err != nil {
		t.Fatal(err)
	}
	env.ResetStats(t)
	res, err := j.Sweep(ctx)
	if err != nil || res.Closed != 2 {
		t.Fatalf("sweep after revoking A: %+v, %v", res, err)
	}
	if n := env.Stats(t)[sessionDelete]; n != 2 {
		t.Errorf("the bank saw %d session deletes, want 2 (stats %v)", n, env.Stats(t))
	}
	if stored(a1) || stored(a2) || !stored(b1) || !stored(k1) {
		t.Errorf("contexts stored: a1 %v a2 %v b1 %v keep %v; want only b1 and keep", stored(a1), stored(a2), stored(b1), stored(k1))
	}
	env.ResetStats(t)
	if res, err := j.Sweep(ctx); err != nil || res != (janitor.Result{}) || env.Stats(t)[sessionDelete] != 0 {
		t.Fatalf("repeat sweep: %+v, %v, stats %v", res, err, env.Stats(t))
	}

	// Client B is revoked while the bank refuses session deletes: the
	// context is purged anyway, the failure is recorded, and the next
	// sweep finds nothing left to close and takes it off the queue.
	if _, err := clients.RevokeClient(ctx, b); err != nil {
		t.Fatal(err)
	}
	env.Fault(t, banktest.Fault{Method: http.MethodDelete, Path: "/v1/session/*", Kind: banktest.FaultStatus, Status: http.StatusInternalServerError})
	res, err = j.Sweep(ctx)
	if err != nil || res.Closed != 0 {
		t.Fatalf("sweep with the bank failing: %+v, %v", res, err)
	}
	if stored(b1) {
		t.Error("b1's context outlived a failed session delete")
	}
	if ids, err := consents.PendingCloses(ctx, 10); err != nil || len(ids) != 1 || ids[0] != b1 {
		t.Fatalf("queue after the failure = %v, %v; want [%s]", ids, err, b1)
	}
	env.ClearFaults(t)
	if res, err := j.Sweep(ctx); err != nil || res.Closed != 1 {
		t.Fatalf("sweep after the failure: %+v, %v", res, err)
	}
	if ids, _ := consents.PendingCloses(ctx, 10); len(ids) != 0 {
		t.Fatalf("queue = %v, want empty", ids)
	}
	if !stored(k1) {
		t.Error("the kept client's context is gone")
	}
	if c, err := consents.ConsentByID(ctx, k1); err != nil || c.Status != tpp.ConsentActive {
		t.Errorf("kept consent: %v, %v", c, err)
	}
}
