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

// testServer is a Redis server a test can open clients of: a real
// redis-server (redistest) or the embedded one.
type testServer interface {
	Client(t testing.TB) goredis.UniversalClient
}

// embeddedServer adapts EmbeddedRedis to testServer.
type embeddedServer struct{ e *EmbeddedRedis }

func (s embeddedServer) Client(t testing.TB) goredis.UniversalClient {
	c := s.e.Client()
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// forEachServer runs test as parallel subtests against a real redis-server
// and against the embedded Redis of 'tpp demo', so a behaviour the stores
// rely on (expiry, scripts, TIME) cannot silently differ between them.
func forEachServer(t *testing.T, test func(t *testing.T, srv testServer)) {
	t.Helper()
	servers := []struct {
		name  string
		start func(t testing.TB) testServer
	}{
		{"redis-server", func(t testing.TB) testServer { return redistest.Start(t) }},
		{"embedded", func(t testing.TB) testServer {
			e := StartEmbedded()
			t.Cleanup(e.Close)
			return embeddedServer{e}
		}},
	}
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			test(t, s.start(t))
		})
	}
}
