package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/internal/redistest"
	"github.com/bunqtpp/tpp/seal"
)

func TestContextStoreRoundTrip(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := context.Background()
		rdb := srv.Client(t)
		s, err := NewContextStore(rdb, NewKeys("acme"), testKeyring(t), 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "42"); !errors.Is(err, tpp.ErrNotFound) {
			t.Fatalf("Get of missing = %v, want tpp.ErrNotFound", err)
		}
		blob := []byte(`{"session_token":"abc"}`)
		if err := s.Put(ctx, "42", blob); err != nil {
			t.Fatal(err)
		}
		// Namespaced under the configured prefix, with no expiry.
		if ttl, err := rdb.PTTL(ctx, "acme:ctx:42").Result(); err != nil || ttl != -1 {
			t.Fatalf("PTTL acme:ctx:42 = %v, %v; want -1 (no expiry)", ttl, err)
		}
		got, err := s.Get(ctx, "42")
		if err != nil || !bytes.Equal(got, blob) {
			t.Fatalf("Get = %q, %v", got, err)
		}
		if err := s.Delete(ctx, "42"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "42"); !errors.Is(err, tpp.ErrNotFound) {
			t.Fatalf("Get after Delete = %v", err)
		}
		if err := s.Delete(ctx, "42"); err != nil {
			t.Fatalf("second Delete: %v", err)
		}
		if err := s.Put(ctx, "", blob); err == nil {
			t.Fatal("Put with empty consent id succeeded")
		}
	})
}

func TestContextStoreNeedsSealer(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		rdb := srv.Client(t)
		if _, err := NewContextStore(rdb, Keys{}, nil, 0); err == nil {
			t.Fatal("NewContextStore without a sealer succeeded")
		}
	})
}

// What reaches Redis must reveal nothing, and must only open for its owner.
func TestContextStoreSealsAtRest(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := context.Background()
		rdb := srv.Client(t)
		s, err := NewContextStore(rdb, Keys{}, testKeyring(t), 0)
		if err != nil {
			t.Fatal(err)
		}
		secrets := []string{
			"installation-token-8f2c1e", "session-token-77aa01",
			"-----BEGIN PRIVATE KEY-----", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
			"-----BEGIN PUBLIC KEY-----", "server_public_key",
		}
		blob := []byte(fmt.Sprintf(`{"installation_token":%q,"session_token":%q,"private_key":"%s\n%s\n-----END PRIVATE KEY-----","%s":"%s"}`,
			secrets[0], secrets[1], secrets[2], secrets[3], secrets[5], secrets[4]))
		if err := s.Put(ctx, "1", blob); err != nil {
			t.Fatal(err)
		}
		raw, err := rdb.Get(ctx, "tpp:ctx:1").Bytes()
		if err != nil {
			t.Fatal(err)
		}
		for _, sec := range secrets {
			if bytes.Contains(raw, []byte(sec)) {
				t.Errorf("raw Redis value contains %q", sec)
			}
		}
		for _, piece := range [][]byte{[]byte("token"), []byte("BEGIN"), []byte("KEY")} {
			if bytes.Contains(raw, piece) {
				t.Errorf("raw Redis value contains %q", piece)
			}
		}

		// Copied to consent 2's key, consent 1's context must not open.
		if err := rdb.Set(ctx, "tpp:ctx:2", raw, 0).Err(); err != nil {
			t.Fatal(err)
		}
		_, err = s.Get(ctx, "2")
		if !errors.Is(err, tpp.ErrUnreadable) || !errors.Is(err, seal.ErrOpen) {
			t.Fatalf("Get of copied value = %v, want tpp.ErrUnreadable wrapping seal.ErrOpen", err)
		}
		// Tampering is detected too.
		raw[len(raw)-1] ^= 1
		if err := rdb.Set(ctx, "tpp:ctx:1", raw, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "1"); !errors.Is(err, tpp.ErrUnreadable) {
			t.Fatalf("Get of tampered value = %v", err)
		}
	})
}

func TestContextStoreTTL(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := context.Background()
		rdb := srv.Client(t)
		s, err := NewContextStore(rdb, Keys{}, testKeyring(t), 500*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, "9", []byte("x")); err != nil {
			t.Fatal(err)
		}
		if ttl := rdb.PTTL(ctx, "tpp:ctx:9").Val(); ttl <= 0 || ttl > 500*time.Millisecond {
			t.Fatalf("PTTL = %s, want (0, 500ms]", ttl)
		}
		eventually(t, 3*time.Second, "context expires", func() bool {
			_, err := s.Get(ctx, "9")
			return errors.Is(err, tpp.ErrNotFound)
		})
	})
}

func TestContextStoreConcurrent(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := context.Background()
		kr := testKeyring(t)
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for i := range 20 {
			// Separate clients stand in for separate replicas.
			s, err := NewContextStore(srv.Client(t), Keys{}, kr, 0)
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				id := fmt.Sprint(i)
				for j := range 10 {
					want := []byte(fmt.Sprintf("ctx-%d-%d", i, j))
					if err := s.Put(ctx, id, want); err != nil {
						errs <- err
						return
					}
					got, err := s.Get(ctx, id)
					if err != nil || !bytes.Equal(got, want) {
						errs <- fmt.Errorf("consent %s: Get = %q, %v; want %q", id, got, err, want)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

// Redis down is an error, never "not found" (which would trigger a
// rebuild storm); after Redis comes back empty, contexts are not found and
// get rebuilt.
func TestContextStoreRedisDownThenBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := redistest.Start(t)
	s, err := NewContextStore(fastFailClient(t, srv), Keys{}, testKeyring(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "1", []byte("ctx")); err != nil {
		t.Fatal(err)
	}
	srv.Stop(t)
	if _, err := s.Get(ctx, "1"); err == nil || errors.Is(err, tpp.ErrNotFound) {
		t.Fatalf("Get with Redis down = %v, want a connection error", err)
	}
	if err := s.Put(ctx, "1", []byte("ctx")); err == nil {
		t.Fatal("Put with Redis down succeeded")
	}
	srv.Restart(t)
	if _, err := s.Get(ctx, "1"); !errors.Is(err, tpp.ErrNotFound) {
		t.Fatalf("Get after restart = %v, want tpp.ErrNotFound", err)
	}
	if err := s.Put(ctx, "1", []byte("rebuilt")); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(ctx, "1"); err != nil || string(v) != "rebuilt" {
		t.Fatalf("Get = %q, %v", v, err)
	}
}
