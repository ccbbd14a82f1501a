package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/bunqtpp/tpp"
)

// keyStore is an Authenticator whose keys can be revoked, counting checks.
type keyStore struct {
	mu     sync.Mutex
	keys   map[string]*tpp.FintechClient
	checks int
}

func (s *keyStore) Authenticate(_ context.Context, apiKey string) (*tpp.FintechClient, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks++
	cl, ok := s.keys[apiKey]
	if !ok {
		return nil, tpp.Errorf(tpp.EUnauthorized, "API key is invalid or revoked")
	}
	c := *cl
	return &c, nil
}

func (s *keyStore) set(key string, cl *tpp.FintechClient) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cl == nil {
		delete(s.keys, key)
		return
	}
	s.keys[key] = cl
}

func (s *keyStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checks
}

// TestAuthCacheRevocation: an accepted key is reused for the TTL only, so a
// revocation (or key rotation) takes effect once it has passed; refusals
// and other keys are never served from the cache.
func TestAuthCacheRevocation(t *testing.T) {
	const key, other = "tpp_key1_secret1", "tpp_key1_secret2"
	store := &keyStore{keys: map[string]*tpp.FintechClient{
		key: {ID: "cli_1", Status: tpp.ClientActive, ReturnURLs: []string{"https://app.example/return"}},
	}}
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	ac := newAuthCache(store, time.Second, clock)

	e := gin.New()
	var seen *tpp.FintechClient
	e.GET("/x", authenticate(ac, nil), func(c *gin.Context) {
		seen = Client(c)
		c.Status(http.StatusNoContent)
	})
	get := func(k string) int {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, "/x", nil)
		req.Header.Set("Authorization", "Bearer "+k)
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		return rec.Code
	}

	if code := get(key); code != http.StatusNoContent || store.count() != 1 || seen.ID != "cli_1" {
		t.Fatalf("first request: %d after %d checks, client %+v", code, store.count(), seen)
	}
	// A handler changing its client must not change what the next sees.
	seen.ReturnURLs[0] = "https://evil.example"
	if code := get(key); code != http.StatusNoContent || store.count() != 1 {
		t.Fatalf("second request within the TTL: %d after %d checks, want no new check", code, store.count())
	}
	if seen.ReturnURLs[0] != "https://app.example/return" {
		t.Fatalf("the cached client was changed through a request: %v", seen.ReturnURLs)
	}
	// Another secret with the same key id is checked, and refused.
	if code := get(other); code != http.StatusUnauthorized || store.count() != 2 {
		t.Fatalf("another secret: %d after %d checks", code, store.count())
	}

	// Revoked: still accepted until the TTL has passed, then refused.
	store.set(key, nil)
	now = now.Add(999 * time.Millisecond)
	if code := get(key); code != http.StatusNoContent {
		t.Fatalf("revoked key within the TTL: %d", code)
	}
	now = now.Add(time.Millisecond)
	if code := get(key); code != http.StatusUnauthorized || store.count() != 3 {
		t.Fatalf("revoked key after the TTL: %d after %d checks, want 401 after a check", code, store.count())
	}
	// A refusal is not remembered: a key valid again is accepted at once.
	store.set(key, &tpp.FintechClient{ID: "cli_1", Status: tpp.ClientActive})
	if code := get(key); code != http.StatusNoContent || store.count() != 4 {
		t.Fatalf("key valid again: %d after %d checks", code, store.count())
	}
}

// A full cache drops expired entries first and never grows past its bound.
func TestAuthCacheBounded(t *testing.T) {
	store := &keyStore{keys: map[string]*tpp.FintechClient{}}
	now := time.Unix(1_700_000_000, 0)
	ac := newAuthCache(store, time.Second, func() time.Time { return now })
	for i := range maxAuthCache + 10 {
		k := "tpp_k_" + time.Duration(i).String()
		store.set(k, &tpp.FintechClient{ID: k})
		if _, err := ac.Authenticate(context.Background(), k); err != nil {
			t.Fatal(err)
		}
		if i == maxAuthCache/2 {
			now = now.Add(2 * time.Second) // the first half expires
		}
		if n := len(ac.m); n > maxAuthCache {
			t.Fatalf("%d entries, bound %d", n, maxAuthCache)
		}
	}
	if n := len(ac.m); n < maxAuthCache/2 {
		t.Fatalf("%d entries left: live ones were dropped while expired ones could go", n)
	}
}
