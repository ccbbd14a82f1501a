package redis

import (
	"context"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/internal/redistest"
)

func TestKeys(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		prefix, want string
	}{
		{"", "tpp:ctx:42"},
		{"tpp:", "tpp:ctx:42"},
		{"acme", "acme:ctx:42"},
		{"acme:prod:", "acme:prod:ctx:42"},
	} {
		if got := NewKeys(tc.prefix).Key("ctx", "42"); got != tc.want {
			t.Errorf("NewKeys(%q).Key = %q, want %q", tc.prefix, got, tc.want)
		}
	}
	if got := (Keys{}).Key("a", "b"); got != "tpp:a:b" {
		t.Errorf("zero Keys: %q", got)
	}
}

func TestNewClientURL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, raw := newRedis(t)

	rdb, err := NewClient(ctx, Config{URL: "redis://" + srv.Addr + "/3"})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if err := rdb.Set(ctx, "where", "db3", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// The path selected database 3: db 0 does not see the key.
	if n, _ := raw.Exists(ctx, "where").Result(); n != 0 {
		t.Fatal("key landed in db 0, want db 3")
	}
	db3 := goredis.NewClient(&goredis.Options{Addr: srv.Addr, DB: 3})
	defer db3.Close()
	if v, _ := db3.Get(ctx, "where").Result(); v != "db3" {
		t.Fatalf("db 3 has %q", v)
	}
	if err := (Health{Client: rdb}).Ping(ctx); err != nil {
		t.Fatalf("Health.Ping: %v", err)
	}
}

func TestNewClientErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, _ := newRedis(t)
	srv.Stop(t) // a port where nothing listens

	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"nothing set", Config{}, "exactly one of Config.URL"},
		{"two modes", Config{URL: "redis://127.0.0.1:1", ClusterAddrs: []string{"127.0.0.1:1"}}, "exactly one of"},
		{"bad scheme", Config{URL: "http://u:s3cret@127.0.0.1:1"}, "Config.URL http://u:xxxxx@127.0.0.1:1: scheme must be"},
		{"unparsable", Config{URL: "redis://u:s3cret@127.0.0.1:1/%zz"}, "Config.URL is not a valid URL"},
		{"no host", Config{URL: "redis:///0"}, "no host"},
		{"bad db", Config{URL: "redis://127.0.0.1:1/x"}, "Config.URL"},
		{"sentinel without master", Config{SentinelAddrs: []string{"127.0.0.1:26379"}}, "Config.SentinelMaster is required"},
		{"master without sentinels", Config{SentinelMaster: "m"}, "Config.SentinelAddrs is required"},
		{"bad sentinel addr", Config{SentinelMaster: "m", SentinelAddrs: []string{"nohost"}}, `Config.SentinelAddrs: "nohost" is not host:port`},
		{"cluster db", Config{ClusterAddrs: []string{"127.0.0.1:7000"}, DB: 2}, "Config.DB must be 0"},
		{"unknown option", Config{URL: "redis://127.0.0.1:1/0?password=s3cret&bogus=1"}, "Config.URL redis://127.0.0.1:1/0?…"},
		{"unreachable", Config{URL: "redis://:s3cret@" + srv.Addr + "/0", PingTimeout: 300 * time.Millisecond}, "cannot reach Redis at redis://:xxxxx@" + srv.Addr},
	} {
		_, err := NewClient(ctx, tc.cfg)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not mention %q", tc.name, err, tc.want)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: error leaks the password: %q", tc.name, err)
		}
	}
}

func TestNewClientClusterAgainstStandalone(t *testing.T) {
	t.Parallel()
	srv, _ := newRedis(t)
	// A standalone server refuses cluster commands: NewClient must say so
	// rather than hand back a client that fails later.
	_, err := NewClient(context.Background(), Config{ClusterAddrs: []string{srv.Addr}, PingTimeout: 2 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "cannot reach Redis at cluster "+srv.Addr) {
		t.Fatalf("err = %v", err)
	}
}

func TestHealthDown(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	h := Health{Client: fastFailClient(t, srv)}
	if err := h.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.Stop(t)
	if err := h.Ping(context.Background()); err == nil {
		t.Fatal("Ping succeeded with Redis down")
	}
	srv.Restart(t)
	if err := h.Ping(context.Background()); err != nil {
		t.Fatalf("Ping after restart: %v", err)
	}
}

// The embedded Redis must run every script the stores use, or `tpp demo`
// breaks at the first request.
func TestEmbedded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, closeFn, err := Embedded(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	keys := NewKeys("")

	aw, err := NewAccessWindow(rdb, keys, 2, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, true, false} {
		d, err := aw.Allow(ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed != want {
			t.Fatalf("embedded Allow #%d = %+v", i+1, d)
		}
	}
	if err := NewRateBudget(rdb, keys).Wait(ctx, "k", 5, time.Second); err != nil {
		t.Fatal(err)
	}
	lk, err := NewLocker(rdb, keys).TryAcquire(ctx, "x", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := lk.Extend(ctx, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := lk.Release(ctx); err != nil {
		t.Fatal(err)
	}
	ss := NewStateStore(rdb, keys, 0, nil)
	if err := ss.Put(ctx, "s", tpp.OAuthState{ConsentID: "c1", BrowserHash: "b"}); err != nil {
		t.Fatal(err)
	}
	if st, err := ss.Take(ctx, "s", "b"); err != nil || st.ConsentID != "c1" {
		t.Fatalf("Take = %+v, %v", st, err)
	}
}

func TestNewClientSentinel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, raw := newRedis(t)
	sentinel := srv.StartSentinel(t, "primary")
	rdb, err := NewClient(ctx, Config{SentinelMaster: "primary", SentinelAddrs: []string{sentinel}})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if err := rdb.Set(ctx, "via-sentinel", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v := raw.Get(ctx, "via-sentinel").Val(); v != "1" {
		t.Fatalf("master has %q, want the value written through Sentinel", v)
	}
	viaURL, err := NewClient(ctx, Config{URL: "redis://" + sentinel + "?master_name=primary"})
	if err != nil {
		t.Fatalf("sentinel URL: %v", err)
	}
	defer viaURL.Close()
	if v := viaURL.Get(ctx, "via-sentinel").Val(); v != "1" {
		t.Fatalf("through the sentinel URL: %q", v)
	}
	if _, err := NewClient(ctx, Config{SentinelMaster: "unknown", SentinelAddrs: []string{sentinel}, PingTimeout: time.Second}); err == nil ||
		!strings.Contains(err.Error(), `sentinel master "unknown"`) {
		t.Fatalf("unknown master: %v", err)
	}
}

// Every store works on Redis Cluster: each command and script touches one
// hash slot.
func TestStoresOnCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	node := redistest.StartCluster(t)
	rdb, err := NewClient(ctx, Config{ClusterAddrs: []string{node.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	keys := NewKeys("")

	cs, err := NewContextStore(rdb, keys, testKeyring(t), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.Put(ctx, "1", []byte("ctx")); err != nil {
		t.Fatal(err)
	}
	if v, err := cs.Get(ctx, "1"); err != nil || string(v) != "ctx" {
		t.Fatalf("context Get = %q, %v", v, err)
	}
	ss := NewStateStore(rdb, keys, 0, nil)
	if err := ss.Put(ctx, "s", tpp.OAuthState{ConsentID: "1", BrowserHash: "b"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ss.Take(ctx, "s", "b"); err != nil {
		t.Fatal(err)
	}
	lk, err := NewLocker(rdb, keys).Acquire(ctx, "l", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := lk.Extend(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := lk.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := NewRateBudget(rdb, keys).Wait(ctx, "r", 1, time.Second); err != nil {
		t.Fatal(err)
	}
	aw, err := NewAccessWindow(rdb, keys, 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := aw.Allow(ctx, "1"); err != nil || !d.Allowed {
		t.Fatalf("Allow = %+v, %v", d, err)
	}
	var cacheErrs []error
	c := NewCache(rdb, keys, CacheOptions{OnError: func(_ string, err error) { cacheErrs = append(cacheErrs, err) }})
	for range 2 {
		if _, _, err := c.GetOrLoad(ctx, "k", time.Minute, false, func(context.Context) ([]byte, error) { return []byte("v"), nil }); err != nil {
			t.Fatal(err)
		}
	}
	grouped := NewCache(rdb, keys, CacheOptions{GroupFields: 2, OnError: func(_ string, err error) { cacheErrs = append(cacheErrs, err) }})
	for _, k := range []string{"aisp:1:accounts", "aisp:1:account:x", "aisp:1:tx:y"} {
		if _, _, err := grouped.GetOrLoad(ctx, k, time.Minute, false, func(context.Context) ([]byte, error) { return []byte("v"), nil }); err != nil {
			t.Fatal(err)
		}
	}
	if len(cacheErrs) > 0 {
		t.Fatalf("cache errors on cluster: %v", cacheErrs)
	}
	if err := grouped.PurgeGroup(ctx, "aisp:1"); err != nil {
		t.Fatalf("PurgeGroup on cluster: %v", err)
	}
	if err := aw.Reset(ctx, "1"); err != nil {
		t.Fatalf("access window Reset on cluster: %v", err)
	}
	if err := (Health{Client: rdb}).Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// A TLS Redis with a password: the client connects with rediss://, the
// password and the test CA; without the CA, with the wrong password, or
// over plain redis:// it is refused at NewClient.
func TestNewClientTLSAndPassword(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := redistest.StartTLS(t, "s3cret-pw")
	rdb, err := NewClient(ctx, Config{URL: srv.URL, TLS: srv.TLSConfig()})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if err := NewRateBudget(rdb, Keys{}).Wait(ctx, "k", 1, time.Second); err != nil {
		t.Fatalf("a store over TLS: %v", err)
	}
	plain := strings.Replace(srv.URL, "rediss://", "redis://", 1)
	wrongPW := strings.Replace(srv.URL, "s3cret-pw", "guess", 1)
	for name, cfg := range map[string]Config{
		"without the CA":   {URL: srv.URL},
		"wrong password":   {URL: wrongPW, TLS: srv.TLSConfig()},
		"plain redis://":   {URL: plain, PingTimeout: time.Second},
		"CA with redis://": {URL: plain, TLS: srv.TLSConfig()},
	} {
		c, err := NewClient(ctx, cfg)
		if err == nil {
			c.Close()
			t.Errorf("%s: connected", name)
			continue
		}
		if strings.Contains(err.Error(), "s3cret-pw") || strings.Contains(err.Error(), "guess") {
			t.Errorf("%s: the error shows the password: %v", name, err)
		}
	}
}
