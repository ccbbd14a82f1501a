package notify

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/bankctx"
	"github.com/bunqtpp/tpp/psd2"
)

func postCallback(t *testing.T, url, body, sig string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/bank/callbacks", strings.NewReader(body))
	if sig != "" {
		req.Header.Set("X-Bunq-Server-Signature", sig)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func revocationBody(bunqUser int64) string {
	return fmt.Sprintf(`{"NotificationUrl":{"target_url":"x","category":"OAUTH","event_type":"OAUTH_AUTHORIZATION_REVOKED",
		"object":{"UserApiKey":{"id":1,"granted_by_user":{"UserPerson":{"id":%d}}}}}}`, bunqUser)
}

// TestCallbackAuthBySourceRange: with --bank-callback-auth ip, a callback
// from outside the ranges is refused before any bank call; from inside,
// bunq's real (unsigned) callbacks revoke.
func TestCallbackAuthBySourceRange(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cidr   string
		status int
	}{{"185.40.108.0/22", http.StatusUnauthorized}, {"127.0.0.0/8", http.StatusOK}} {
		h := newHarnessWith(t, nil, nil, func(_ *harness, c *Config) {
			c.Auth, c.CIDRs = AuthIP, []netip.Prefix{netip.MustParsePrefix(tc.cidr)}
		})
		id := h.connect()
		c := h.consent(id)
		h.env.ResetStats(t)
		if got := postCallback(t, h.srv.URL, revocationBody(c.BunqUserID), ""); got != tc.status {
			t.Fatalf("cidr %s: status %d, want %d", tc.cidr, got, tc.status)
		}
		if tc.status == http.StatusUnauthorized {
			for k, n := range h.env.Stats(t) {
				if !strings.HasPrefix(k, "GET /_sandbox") && n > 0 {
					t.Fatalf("refused callback caused bank calls: %v", h.env.Stats(t))
				}
			}
			continue
		}
		// The bank's own unsigned callback comes from loopback: it revokes.
		h.env.RevokeGrant(t, c.BunqUserID, h.bank.ClientID)
		h.waitStatus(id, tpp.ConsentRevoked)
	}
}

// TestCallbackRechecksAreBounded: forged callbacks (accepted with auth
// none) cause a bounded number of bank re-checks: per user, overall, and
// never twice a minute for one consent. Over a limit they answer 503, so a
// real callback is retried by bunq a minute later.
func TestCallbackRechecksAreBounded(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, nil, nil, func(_ *harness, c *Config) {
		c.Auth, c.RechecksPerMinute, c.UserRechecksPerMinute = AuthNone, 2, 1
	})
	a, b := h.connect(), h.connect() // one bunq user, two consents
	user := h.consent(a).BunqUserID
	h.env.ResetStats(t)
	sessions := func() int { return h.env.Stats(t)["POST /v1/session-server"] }
	for i := range 3 {
		if got := postCallback(t, h.srv.URL, revocationBody(user), ""); got != 503 {
			t.Fatalf("callback %d: %d, want 503 (1 re-check per user and minute)", i, got)
		}
	}
	if n := sessions(); n != 1 {
		t.Fatalf("session-server calls %d, want 1", n)
	}
	// A minute later: an OAUTH callback without a user id re-checks the
	// active consents under the overall limit (2).
	h.clock.Advance(time.Minute)
	if got := postCallback(t, h.srv.URL, `{"NotificationUrl":{"category":"OAUTH","event_type":"OAUTH_AUTHORIZATION_REVOKED","object":null}}`, ""); got != 200 {
		t.Fatalf("callback without user id: %d", got)
	}
	if n := sessions(); n != 3 {
		t.Fatalf("session-server calls %d after the fallback, want 3", n)
	}
	for _, id := range []string{a, b} {
		if got := h.consent(id); got.Status != tpp.ConsentActive {
			t.Fatalf("forged callbacks changed consent %s to %s", id, got.Status)
		}
	}
}

// TestReplayedSignedCallbackIsHarmless (issue 10's regression test): a
// genuine signed revocation callback, replayed after the user authorized
// again, re-checks the new consent at the bank and leaves it active.
func TestReplayedSignedCallbackIsHarmless(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var body, sig string
	capture := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		body, sig = string(b), r.Header.Get("X-Bunq-Server-Signature")
		mu.Unlock()
	}))
	defer capture.Close()
	h := newHarnessWith(t, nil, nil, func(h *harness, c *Config) {
		key, err := bankctx.ServerKey(h.bank.Context)
		if err != nil {
			t.Fatal(err)
		}
		c.Auth, c.Key = AuthSignature, key
	})
	h.env.SetCallbackSigning(t, true)
	// A second OAUTH target (bunq allows 2 per category) records the bank's
	// signed callback as an attacker on the path would.
	if _, err := h.psd2.CreateNotificationFilters(context.Background(), h.bank.Context, []psd2.NotificationFilter{
		{Category: psd2.CategoryOAuth, NotificationTarget: h.srv.URL + "/bank/callbacks"},
		{Category: psd2.CategoryOAuth, NotificationTarget: capture.URL},
	}); err != nil {
		t.Fatal(err)
	}
	first := h.connect()
	user := h.consent(first).BunqUserID
	h.env.RevokeGrant(t, user, h.bank.ClientID)
	h.waitStatus(first, tpp.ConsentRevoked)
	second := h.connect() // the user authorizes again
	mu.Lock()
	replay, replaySig := body, sig
	mu.Unlock()
	if replaySig == "" || !strings.Contains(replay, `"OAUTH"`) {
		t.Fatalf("captured no signed callback: %q", replay)
	}
	for range 3 {
		if got := postCallback(t, h.srv.URL, replay, replaySig); got != 200 && got != 503 {
			t.Fatalf("replay answered %d", got)
		}
	}
	if got := h.consent(second); got.Status != tpp.ConsentActive {
		t.Fatalf("replayed callback moved the new consent to %s", got.Status)
	}
}
