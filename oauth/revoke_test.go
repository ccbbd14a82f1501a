package oauth

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/bunqtpp/tpp"
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
