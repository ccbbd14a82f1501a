package main

import (
	"context"
	"net/http"
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
