package notify

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
)

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
	if c.HasToken {
		t.Fatal("revoked consent keeps its token")
	}
	// The context is purged right after the revocation is recorded.
	for deadline := time.Now().Add(5 * time.Second); h.raw("t:ctx:"+id) != ""; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("revoked consent keeps its context")
		}
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
	drafts := &draftRecorder{}
	h := newHarnessWith(t, nil, nil, func(_ *harness, c *Config) { c.Drafts = drafts })
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
	drafts.mu.Lock()
	defer drafts.mu.Unlock()
	draft := drafts.got
	if len(draft) != 1 || draft[0].ObjectType != "DraftPayment" {
		t.Fatalf("draft hook got %+v", draft)
	}
	var obj map[string]any
	if err := json.Unmarshal(draft[0].Object, &obj); err != nil || obj["id"] == nil {
		t.Fatalf("draft object %s", draft[0].Object)
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
		c.Key = key
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

// draftRecorder is the DRAFT_PAYMENT receiver of TestBankCallbackRejectsCheaply.
type draftRecorder struct {
	mu  sync.Mutex
	got []Notification
}

func (r *draftRecorder) OnDraftPayment(_ context.Context, objectType string, object json.RawMessage, _ string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, Notification{ObjectType: objectType, Object: object})
	return nil
}
