package oauth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/bankctx"
	"github.com/bunqtpp/tpp/bankctx/bankctxtest"
	"github.com/bunqtpp/tpp/internal/banktest"
)

func TestRevokeByClient(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.connect()
	ctxKey := "t:ctx:" + id
	if h.raw(ctxKey) == "" {
		t.Fatal("no context in Redis after activation")
	}
	h.env.ResetStats(t)
	st, out := h.call("DELETE", "/v1/consents/"+id, nil)
	if st != 200 || out["status"] != "revoked" || out["revoked_at"] == nil {
		t.Fatalf("delete: %d %v", st, out)
	}
	if n := h.env.Stats(t)["DELETE /v1/session/{id}"]; n != 1 {
		t.Fatalf("bank session deletes = %d (stats %v)", n, h.env.Stats(t))
	}
	if h.raw(ctxKey) != "" {
		t.Fatal("context still in Redis")
	}
	c := h.consent(id)
	if c.Status != tpp.ConsentRevoked || c.HasToken {
		t.Fatalf("consent %+v", c)
	}
	trail := h.trail(id)
	if strings.Join(trail, ";") != "pending>active psu;active>revoked client:"+h.client.ID {
		t.Fatalf("audit %v", trail)
	}
	// Idempotent: same answer, nothing new recorded.
	st, out2 := h.call("DELETE", "/v1/consents/"+id, nil)
	if st != 200 || out2["status"] != "revoked" || out2["revoked_at"] != out["revoked_at"] || len(h.trail(id)) != len(trail) {
		t.Fatalf("second delete: %d %v", st, out2)
	}
	// The context cannot come back.
	if _, err := h.provider.Get(context.Background(), c); tpp.ErrorCode(err) != tpp.EConsentNotActive {
		t.Fatalf("Get on revoked consent: %v", err)
	}
	// A pending consent can be revoked too.
	pid, _ := h.createConsent()
	if st, out := h.call("DELETE", "/v1/consents/"+pid, nil); st != 200 || out["status"] != "revoked" {
		t.Fatalf("revoke pending: %d %v", st, out)
	}
}

// A revocation whose bank session cannot be deleted (bunq down) still
// answers revoked and purges the context; the consent is queued for the
// janitor to retry the close.
func TestRevokeQueuesAFailedClose(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, nil, nil, func(h *harness, c *Config) { c.Closes = h.consents })
	id := h.connect()
	h.env.Fault(t, banktest.Fault{Method: "DELETE", Path: "/v1/session/*", Kind: banktest.FaultStatus, Status: 503})
	st, out := h.call("DELETE", "/v1/consents/"+id, nil)
	if st != 200 || out["status"] != "revoked" {
		t.Fatalf("delete with the bank down: %d %v", st, out)
	}
	if h.raw("t:ctx:"+id) != "" {
		t.Fatal("context still in Redis")
	}
	ctx := context.Background()
	ids, err := h.consents.PendingCloses(ctx, 10)
	if err != nil || len(ids) != 1 || ids[0] != id {
		t.Fatalf("close queue = %v, %v; want the revoked consent", ids, err)
	}
	var reason string
	if err := h.db.GetContext(ctx, &reason, `SELECT last_error FROM consent_closes WHERE consent_id = ?`, id); err != nil || !strings.Contains(reason, "503") {
		t.Fatalf("queued reason %q, %v", reason, err)
	}
	// Queueing again keeps one row, with the latest reason.
	if err := h.consents.QueueClose(ctx, id, "again"); err != nil {
		t.Fatal(err)
	}
	if ids, _ := h.consents.PendingCloses(ctx, 10); len(ids) != 1 {
		t.Fatalf("close queue after queueing twice = %v", ids)
	}
	// Only revoked consents are queued.
	live := h.connect()
	if err := h.consents.QueueClose(ctx, live, "test"); err != nil {
		t.Fatal(err)
	}
	if ids, _ := h.consents.PendingCloses(ctx, 10); len(ids) != 1 {
		t.Fatalf("an active consent was queued: %v", ids)
	}
}

// waitStatus polls until the consent reaches want.
func (h *harness) waitStatus(id string, want tpp.ConsentStatus) *tpp.Consent {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := h.consent(id)
		if c.Status == want {
			return c
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("consent %s is %s, want %s", id, c.Status, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRevokeAtBankViaCallback(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.connect()
	keep := h.connect() // same user, second consent: it gets revoked too (same client at bunq)
	user := bankctxtest.Person(t, h.env)
	h.env.RevokeGrant(t, user.ID, h.bank.ClientID)
	defer func() {
		if t.Failed() {
			t.Logf("callbacks %+v\nlogs %s", h.env.Callbacks(t), h.logs.String())
		}
	}()
	c := h.waitStatus(id, tpp.ConsentRevoked)
	if c.HasToken || h.raw("t:ctx:"+id) != "" {
		t.Fatal("revoked consent keeps token or context")
	}
	h.waitStatus(keep, tpp.ConsentRevoked)
	tr := h.trail(id)
	if tr[len(tr)-1] != "active>revoked bank" {
		t.Fatalf("audit %v", tr)
	}
	// The callback arrived over HTTP and was answered 200.
	var ok bool
	for deadline := time.Now().Add(5 * time.Second); !ok && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, cb := range h.env.Callbacks(t) {
			if cb.Category == "OAUTH" && strings.HasSuffix(cb.URL, "/bank/callbacks") && cb.Status == 200 {
				ok = true
			}
		}
	}
	if !ok {
		t.Fatalf("no delivered OAUTH callback: %+v", h.env.Callbacks(t))
	}
}

// An OAUTH callback is only a hint: when the bank still accepts the grant,
// nothing changes (a forged callback cannot revoke consents).
func TestForgedOAuthCallbackIsRechecked(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.connect()
	c := h.consent(id)
	body := fmt.Sprintf(`{"NotificationUrl":{"target_url":"x","category":"OAUTH","event_type":"OAUTH_AUTHORIZATION_REVOKED",
		"object":{"UserApiKey":{"id":1,"granted_by_user":{"UserPerson":{"id":%d}}}}}}`, c.BunqUserID)
	for range 2 {
		res, err := http.Post(h.srv.URL+"/bank/callbacks", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("callback status %d", res.StatusCode)
		}
	}
	if got := h.consent(id); got.Status != tpp.ConsentActive {
		t.Fatalf("forged callback changed consent to %s", got.Status)
	}
}

func TestBankCallbackRejectsCheaply(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var draft []Notification
	var mu sync.Mutex
	h.svc.hooks.OnDraftPayment = func(_ context.Context, n Notification) error {
		mu.Lock()
		draft = append(draft, n)
		mu.Unlock()
		return nil
	}
	post := func(body []byte) int {
		res, err := http.Post(h.srv.URL+"/bank/callbacks", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if st := post([]byte("not json")); st != 400 {
		t.Errorf("garbage: %d", st)
	}
	if st := post([]byte(`{"NotificationUrl":{}}`)); st != 400 {
		t.Errorf("no category: %d", st)
	}
	if st := post(bytes.Repeat([]byte("x"), MaxCallbackBytes+1)); st != 413 {
		t.Errorf("oversized: %d", st)
	}
	if st := post([]byte(`{"NotificationUrl":{"category":"MUTATION","object":{"Payment":{"id":1}}}}`)); st != 200 {
		t.Errorf("unknown category: %d", st)
	}
	if st := post([]byte(`{"NotificationUrl":{"category":"OAUTH","object":{"UserApiKey":{"id":1,"granted_by_user":{"UserPerson":{"id":424242}}}}}}`)); st != 200 {
		t.Errorf("OAUTH for unknown user: %d", st)
	}
	if st := post([]byte(`{"NotificationUrl":{"category":"DRAFT_PAYMENT","event_type":"DRAFT_PAYMENT_ACCEPTED","object":{"DraftPayment":{"id":7,"amount":{"value":"1.10"}}}}}`)); st != 200 {
		t.Errorf("draft payment: %d", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(draft) != 1 || draft[0].ObjectType != "DraftPayment" || draft[0].EventType != "DRAFT_PAYMENT_ACCEPTED" {
		t.Fatalf("draft hook got %+v", draft)
	}
	var obj map[string]any
	if err := json.Unmarshal(draft[0].Object, &obj); err != nil || obj["id"] == nil {
		t.Fatalf("draft object %s", draft[0].Object)
	}
}

func TestRecoveryAfterFlushAll(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.connect()
	ctx := context.Background()
	c := h.consent(id)
	before, err := h.provider.Get(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	h.env.ResetStats(t)
	after, err := h.provider.Get(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	st := h.env.Stats(t)
	if st["POST /v1/installation"] != 1 || st["POST /v1/device-server"] != 1 || st["POST /v1/session-server"] != 1 {
		t.Fatalf("rebuild calls %v", st)
	}
	if after.InstallationID() == before.InstallationID() || h.rebuilds.get() != 1 {
		t.Fatalf("not rebuilt: installation %d→%d, rebuilds %d", before.InstallationID(), after.InstallationID(), h.rebuilds.get())
	}
	// The rebuilt context works and is stored again.
	if err := h.provider.Verify(ctx, c); err != nil {
		t.Fatal(err)
	}
	if h.raw("t:ctx:"+id) == "" {
		t.Fatal("rebuilt context not stored")
	}
}

func TestConcurrentGetRebuildsOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.connect()
	ctx := context.Background()
	c := h.consent(id)
	if err := h.rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	h.env.ResetStats(t)
	var wg sync.WaitGroup
	insts := make([]int64, 20)
	errs := make([]error, 20)
	for i := range 20 {
		wg.Go(func() {
			bc, err := h.provider.Get(ctx, c)
			errs[i] = err
			if err == nil {
				insts[i] = bc.InstallationID()
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Get %d: %v", i, err)
		}
		if insts[i] != insts[0] {
			t.Fatalf("Get %d saw installation %d, Get 0 saw %d", i, insts[i], insts[0])
		}
	}
	if n := h.env.Stats(t)["POST /v1/session-server"]; n != 1 {
		t.Fatalf("session-server calls = %d, want 1", n)
	}
	if h.rebuilds.get() != 1 {
		t.Fatalf("rebuilds = %d", h.rebuilds.get())
	}
}

// With the bank's key configured, unsigned or forged callbacks are refused
// before any work, and the bank's own signed callbacks still revoke.
func TestSignedCallbacks(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, nil, nil, func(h *harness, c *Config) {
		key, err := bankctx.ServerKey(h.bank.Context)
		if err != nil {
			t.Fatal(err)
		}
		c.CallbackKey = key
	})
	id := h.connect()
	c := h.consent(id)
	body := fmt.Sprintf(`{"NotificationUrl":{"category":"OAUTH","object":{"UserApiKey":{"id":1,"granted_by_user":{"UserPerson":{"id":%d}}}}}}`, c.BunqUserID)
	h.env.ResetStats(t)
	for _, sig := range []string{"", "bm90IGEgc2lnbmF0dXJl"} {
		req, _ := http.NewRequest("POST", h.srv.URL+"/bank/callbacks", strings.NewReader(body))
		if sig != "" {
			req.Header.Set("X-Bunq-Server-Signature", sig)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("signature %q: status %d", sig, res.StatusCode)
		}
	}
	for k, n := range h.env.Stats(t) {
		if !strings.HasPrefix(k, "GET /_sandbox") && n > 0 {
			t.Fatalf("forged callback caused bank calls: %v", h.env.Stats(t))
		}
	}
	h.env.SetCallbackSigning(t, true) // the emulator's option; bunq does not sign
	h.env.RevokeGrant(t, c.BunqUserID, h.bank.ClientID)
	h.waitStatus(id, tpp.ConsentRevoked)
}
