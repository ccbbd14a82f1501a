package main

import (
	"context"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// A revoked consent leaves no account data in Redis: revoking it deletes
// its cached answers (tpp:cache:aisp:<id>:*, with their index) and its
// PSD2 access window (tpp:access:<id>), as well as its bunq context.
func TestE2ERevocationPurgesRedis(t *testing.T) {
	t.Parallel()
	h := startHarness(t)
	ctx := context.Background()
	id := h.activeConsent(t, "accounts")
	other := h.activeConsent(t, "accounts")

	for _, c := range []string{id, other} {
		// Unattended reads: each is counted in the window and cached.
		if st, body := h.api(http.MethodGet, "/v1/consents/"+c+"/accounts", nil); st != http.StatusOK {
			t.Fatalf("accounts of %s: %d %v", c, st, body)
		}
	}
	cached := func(c string) []string {
		var found []string
		iter := h.RDB.Scan(ctx, 0, "tpp:cache*:aisp:"+c+"*", 100).Iterator()
		for iter.Next(ctx) {
			found = append(found, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
		return found
	}
	window := func(c string) bool { return h.RDB.Exists(ctx, "tpp:access:"+c).Val() == 1 }
	if len(cached(id)) == 0 || !window(id) {
		t.Fatalf("before revocation: cached %v, access window %v; want both", cached(id), window(id))
	}

	if st, c := h.api(http.MethodDelete, "/v1/consents/"+id, nil); st != http.StatusOK || c.str("status") != "revoked" {
		t.Fatalf("DELETE: %d %v", st, c)
	}
	if keys := cached(id); len(keys) > 0 {
		t.Errorf("the revoked consent's cached answers are still in Redis: %v", keys)
	}
	if window(id) {
		t.Error("the revoked consent's access window is still in Redis")
	}
	if h.contextStored(id) {
		t.Error("the revoked consent's bunq context is still in Redis")
	}
	// The other consent keeps what it had.
	if len(cached(other)) == 0 || !window(other) {
		t.Errorf("another consent lost its cache (%v) or window (%v)", cached(other), window(other))
	}
}

// One fintech over its API rate limit gets 429 rate_limited with
// Retry-After and the RateLimit headers; another client is not affected.
// With Redis down the limit cannot be checked: 503 service_unavailable
// with Retry-After, never unlimited service.
func TestE2EClientRateLimit(t *testing.T) {
	t.Parallel()
	// One request per hour with bursts of 3: nothing refills meanwhile.
	h := newHarness(t, harnessOptions{serveFlags: []string{"--client-rate-limit", "1/h", "--client-rate-burst", "3"}})
	h.serve(t)
	otherKey, _ := h.createClient("Other Fintech", h.ReturnURL)

	for i := 1; i <= 3; i++ {
		r := h.apiAs(h.APIKey, http.MethodGet, "/v1/consents", nil, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("request %d within the burst: %d %v", i, r.Status, r.Body)
		}
		if got, want := r.Header.Get("RateLimit-Remaining"), strconv.Itoa(3-i); got != want {
			t.Errorf("request %d: RateLimit-Remaining %q, want %s", i, got, want)
		}
	}
	r := h.apiAs(h.APIKey, http.MethodGet, "/v1/consents", nil, nil)
	if r.Status != http.StatusTooManyRequests || r.Body.str("code") != "rate_limited" {
		t.Fatalf("4th request: %d %v, want 429 rate_limited", r.Status, r.Body)
	}
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 3600 {
		t.Errorf("Retry-After = %q", r.Header.Get("Retry-After"))
	}
	for name, want := range map[string]string{"RateLimit-Policy": "1;w=3600;burst=3", "RateLimit-Limit": "3", "RateLimit-Remaining": "0"} {
		if got := r.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if r.Header.Get("RateLimit-Reset") == "" {
		t.Error("no RateLimit-Reset")
	}
	if r := h.apiAs(otherKey, http.MethodGet, "/v1/consents", nil, nil); r.Status != http.StatusOK {
		t.Fatalf("another client was limited too: %d %v", r.Status, r.Body)
	}

	h.Redis.Stop(t)
	r = h.apiAs(otherKey, http.MethodGet, "/v1/consents", nil, nil)
	if r.Status != http.StatusServiceUnavailable || r.Body.str("code") != "service_unavailable" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("with Redis down: %d %v (Retry-After %q), want 503 service_unavailable", r.Status, r.Body, r.Header.Get("Retry-After"))
	}
	h.Redis.Restart(t)
}

// The whole service on a Redis that speaks only TLS and wants a password:
// rediss:// with --redis-ca reaches it, a consent flow and account reads
// work through it, and the password never reaches the logs (checked by the
// harness when the test ends).
func TestE2ERedisTLSAndPassword(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{redisTLS: true, redisPassword: "tls-pw-" + hex.EncodeToString(randomBytes(t, 12))})
	h.serve(t)
	id := h.activeConsent(t, "accounts")
	if !h.contextStored(id) {
		t.Fatal("no bunq context stored over TLS")
	}
	if st, body := h.api(http.MethodGet, "/v1/consents/"+id+"/accounts", nil); st != http.StatusOK {
		t.Fatalf("accounts over a TLS Redis: %d %v", st, body)
	}
	if !strings.Contains(h.logs.String(), "rediss://") {
		t.Error("the effective configuration does not show the rediss:// URL")
	}
}
