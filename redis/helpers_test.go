package redis

import (
	"bytes"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bunqtpp/tpp/internal/redistest"
	"github.com/bunqtpp/tpp/seal"
)

// newRedis starts a private redis-server for the test and returns a client.
func newRedis(t testing.TB) (*redistest.Server, goredis.UniversalClient) {
	t.Helper()
	srv := redistest.Start(t)
	return srv, srv.Client(t)
}

// fastFailClient does not retry, so tests with Redis down finish quickly.
func fastFailClient(t testing.TB, srv *redistest.Server) goredis.UniversalClient {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr, MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func testKeyring(t testing.TB) *seal.Keyring {
	t.Helper()
	k, err := seal.NewKeyring(seal.Key{ID: "k1", Key: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// eventually polls cond every 10 ms until it holds or limit passes.
func eventually(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within %s", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
