package redistest

import (
	"context"
	goredis "github.com/redis/go-redis/v9"
	"strings"
	"testing"
	"time"
)

func TestStartStopRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := Start(t)
	c := s.Client(t)
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET = %q, %v", got, err)
	}
	if s.URL != "redis://"+s.Addr+"/0" || s.Addr == "127.0.0.1:6379" {
		t.Fatalf("unexpected address %q / %q", s.Addr, s.URL)
	}

	s.Stop(t)
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := c.Ping(short).Err(); err == nil {
		t.Fatal("PING succeeded against a stopped server")
	}

	addr := s.Addr
	s.Restart(t)
	if s.Addr != addr {
		t.Fatalf("restart moved the server from %s to %s", addr, s.Addr)
	}
	// The same client reconnects; data is gone because persistence is off.
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after restart: %v", err)
	}
	if n, err := c.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS after restart = %d, %v; want 0", n, err)
	}
}

func TestServersAreIsolated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := Start(t), Start(t)
	if a.Addr == b.Addr {
		t.Fatalf("two servers share %s", a.Addr)
	}
	if err := a.Client(t).Set(ctx, "k", "a", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.Client(t).Exists(ctx, "k").Result(); n != 0 {
		t.Fatal("a key written to one server is visible on the other")
	}
	a.FlushAll(t)
	if n, _ := a.Client(t).Exists(ctx, "k").Result(); n != 0 {
		t.Fatal("FlushAll left the key")
	}
}

func TestSentinel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := Start(t)
	addr := s.StartSentinel(t, "mymaster")
	c := goredis.NewClient(&goredis.Options{Addr: addr})
	defer c.Close()
	got, err := c.Do(ctx, "SENTINEL", "get-master-addr-by-name", "mymaster").StringSlice()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || "127.0.0.1:"+got[1] != s.Addr {
		t.Fatalf("sentinel reports master %v, want %s", got, s.Addr)
	}
}

func TestCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := StartCluster(t)
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: []string{s.Addr}})
	defer c.Close()
	for _, k := range []string{"a", "b", "c", "{x}1"} {
		if err := c.Set(ctx, k, k, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// Cluster rules apply: keys in different slots cannot share a command.
	if err := s.Client(t).MGet(ctx, "a", "b").Err(); err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Fatalf("MGET across slots = %v, want CROSSSLOT", err)
	}
}

// A port already served by another redis-server must not be mistaken for
// a successful start.
func TestAnswersChecksProcess(t *testing.T) {
	t.Parallel()
	s := Start(t)
	s.mu.Lock()
	pid := s.cmd.Process.Pid
	s.mu.Unlock()
	if !answers(s.Addr, pid) {
		t.Fatal("server does not answer with its own pid")
	}
	if answers(s.Addr, pid+1) {
		t.Fatal("server answers for another pid")
	}
}
