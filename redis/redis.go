// Package redis keeps what is hot and shared between TPP replicas in Redis:
// sealed per-consent bunq contexts, OAuth state, rate budgets, PSD2 access
// windows, caches and locks. SQLite stays the source of truth; everything
// here can be rebuilt, so losing Redis costs latency, never data. (One
// exception to keep in mind: access windows restart empty after a Redis
// loss, so a consent may get up to 4 more unattended reads that day.)
//
// Key layout, under a configurable prefix (default "tpp:", see Keys) so
// several deployments can share one Redis:
//
//	<prefix>ctx:<consent id>               sealed bunq context (ContextStore)
//	<prefix>oauth:state:<sha256 of state>  JSON tpp.OAuthState, single use (StateStore)
//	<prefix>lock:<name>                    lock token (Locker; Cache uses "cache:<key>")
//	<prefix>rate:<key>                     sorted set of admissions (RateBudget)
//	<prefix>access:<consent id>            sorted set of unattended reads (AccessWindow)
//	<prefix>cache:<key>                    cached value, sealed if a Sealer is set (Cache)
//	<prefix>cacheidx:<group>               sorted set of a group's cache keys (Cache.PurgeGroup)
//
// Every command and script touches one key, so all of it works on Redis
// Cluster as well as on a single server or behind Sentinel.
package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Sealer encrypts values before they reach Redis and opens them after.
// *seal.Keyring satisfies it. ad binds a value to its owner.
type Sealer interface {
	Seal(plaintext, ad []byte) ([]byte, error)
	Open(ciphertext, ad []byte) ([]byte, error)
}

// DefaultPrefix starts every key unless configured otherwise.
const DefaultPrefix = "tpp:"

// Keys names Redis keys under one prefix. The zero value uses DefaultPrefix.
type Keys struct {
	prefix string
}

// NewKeys returns a namer for prefix. An empty prefix means DefaultPrefix; a
// missing trailing ':' is added.
func NewKeys(prefix string) Keys {
	if prefix != "" && !strings.HasSuffix(prefix, ":") {
		prefix += ":"
	}
	return Keys{prefix: prefix}
}

// Prefix returns the prefix every key starts with.
func (k Keys) Prefix() string {
	if k.prefix == "" {
		return DefaultPrefix
	}
	return k.prefix
}

// Key joins parts with ':' under the prefix: Key("ctx", "42") is "tpp:ctx:42".
func (k Keys) Key(parts ...string) string {
	return k.Prefix() + strings.Join(parts, ":")
}

// Config says how to reach Redis. Set exactly one of URL, SentinelAddrs or
// ClusterAddrs.
type Config struct {
	// URL is redis://[user:password@]host:port[/db] or rediss:// for TLS,
	// with go-redis's query options (dial_timeout=3s, pool_size=20, ...).
	// With a master_name parameter it names Sentinels instead:
	// redis://sentinel1:26379?master_name=m&addr=sentinel2:26379&password=…
	// (the user info then authenticates to the sentinels, password= to Redis).
	URL string

	// SentinelMaster and SentinelAddrs select a Sentinel-managed primary.
	SentinelMaster string
	SentinelAddrs  []string
	// SentinelPassword authenticates to the sentinels themselves, if needed.
	SentinelPassword string

	// ClusterAddrs are seed addresses of a Redis Cluster.
	ClusterAddrs []string

	// Username, Password and DB apply to Sentinel and Cluster modes; a URL
	// carries its own. DB must be 0 for Cluster.
	Username string
	Password string
	DB       int
	// TLS turns TLS on for Sentinel and Cluster modes. With a URL it
	// needs rediss:// and replaces the URL's default TLS settings (to
	// trust a private CA, say), keeping the host as the server name.
	TLS *tls.Config

	// PingTimeout bounds the connectivity check in NewClient (default 5 s).
	PingTimeout time.Duration
}

// NewClient validates cfg, connects and pings Redis. Errors name the setting
// at fault and never contain a password.
func NewClient(ctx context.Context, cfg Config) (goredis.UniversalClient, error) {
	modes := 0
	for _, set := range []bool{cfg.URL != "", len(cfg.SentinelAddrs) > 0 || cfg.SentinelMaster != "", len(cfg.ClusterAddrs) > 0} {
		if set {
			modes++
		}
	}
	if modes != 1 {
		return nil, errors.New("redis: set exactly one of Config.URL, Config.SentinelAddrs (with SentinelMaster) or Config.ClusterAddrs")
	}

	var (
		rdb   goredis.UniversalClient
		where string
		err   error
	)
	switch {
	case cfg.URL != "":
		rdb, where, err = urlClient(cfg)
	case cfg.SentinelMaster != "" || len(cfg.SentinelAddrs) > 0:
		rdb, where, err = sentinelClient(cfg)
	default:
		rdb, where, err = clusterClient(cfg)
	}
	if err != nil {
		return nil, err
	}

	timeout := cfg.PingTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("redis: cannot reach Redis at %s: %w", where, err)
	}
	return rdb, nil
}

// urlClient makes the client of Config.URL: one server, or Sentinels when
// the URL has a master_name. where names the server for errors, without
// the password.
func urlClient(cfg Config) (rdb goredis.UniversalClient, where string, err error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		// url.Parse errors quote the whole URL, password included.
		return nil, "", errors.New("redis: Config.URL is not a valid URL")
	}
	where = redactURL(u)
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, "", fmt.Errorf("redis: Config.URL %s: scheme must be redis:// or rediss://", where)
	}
	if u.Host == "" {
		return nil, "", fmt.Errorf("redis: Config.URL %s: no host", where)
	}
	if u.Query().Has("master_name") {
		// A Sentinel URL: the host (and any addr= parameters) are sentinels.
		opts, err := goredis.ParseFailoverURL(cfg.URL)
		if err != nil {
			return nil, "", fmt.Errorf("redis: Config.URL %s: %w", where, err)
		}
		where = fmt.Sprintf("sentinel master %q via %s", opts.MasterName, strings.Join(opts.SentinelAddrs, ","))
		if opts.TLSConfig, err = urlTLS(opts.TLSConfig, cfg.TLS, where); err != nil {
			return nil, "", err
		}
		return goredis.NewFailoverClient(opts), where, nil
	}
	opts, err := goredis.ParseURL(cfg.URL)
	if err != nil {
		return nil, "", fmt.Errorf("redis: Config.URL %s: %w", where, err)
	}
	if opts.TLSConfig, err = urlTLS(opts.TLSConfig, cfg.TLS, where); err != nil {
		return nil, "", err
	}
	return goredis.NewClient(opts), where, nil
}

// sentinelClient makes the client of Config.SentinelMaster via
// Config.SentinelAddrs.
func sentinelClient(cfg Config) (rdb goredis.UniversalClient, where string, err error) {
	if cfg.SentinelMaster == "" {
		return nil, "", errors.New("redis: Config.SentinelMaster is required with Config.SentinelAddrs")
	}
	if len(cfg.SentinelAddrs) == 0 {
		return nil, "", errors.New("redis: Config.SentinelAddrs is required with Config.SentinelMaster")
	}
	if err := validAddrs("SentinelAddrs", cfg.SentinelAddrs); err != nil {
		return nil, "", err
	}
	if cfg.DB < 0 {
		return nil, "", fmt.Errorf("redis: Config.DB %d is negative", cfg.DB)
	}
	where = fmt.Sprintf("sentinel master %q via %s", cfg.SentinelMaster, strings.Join(cfg.SentinelAddrs, ","))
	return goredis.NewUniversalClient(&goredis.UniversalOptions{
		MasterName:       cfg.SentinelMaster,
		Addrs:            cfg.SentinelAddrs,
		SentinelPassword: cfg.SentinelPassword,
		Username:         cfg.Username,
		Password:         cfg.Password,
		DB:               cfg.DB,
		TLSConfig:        cfg.TLS,
	}), where, nil
}

// clusterClient makes the client of the Redis Cluster seeded by
// Config.ClusterAddrs.
func clusterClient(cfg Config) (rdb goredis.UniversalClient, where string, err error) {
	if err := validAddrs("ClusterAddrs", cfg.ClusterAddrs); err != nil {
		return nil, "", err
	}
	if cfg.DB != 0 {
		return nil, "", errors.New("redis: Config.DB must be 0 with Config.ClusterAddrs (Redis Cluster has one database)")
	}
	return goredis.NewUniversalClient(&goredis.UniversalOptions{
		Addrs:         cfg.ClusterAddrs,
		IsClusterMode: true,
		Username:      cfg.Username,
		Password:      cfg.Password,
		TLSConfig:     cfg.TLS,
	}), "cluster " + strings.Join(cfg.ClusterAddrs, ","), nil
}

// urlTLS applies Config.TLS to the TLS settings parsed from a URL (nil for
// redis://).
func urlTLS(parsed, custom *tls.Config, where string) (*tls.Config, error) {
	if custom == nil {
		return parsed, nil
	}
	if parsed == nil {
		return nil, fmt.Errorf("redis: Config.URL %s: TLS settings (a CA) need a rediss:// URL", where)
	}
	c := custom.Clone()
	if c.ServerName == "" {
		c.ServerName = parsed.ServerName
	}
	if c.MinVersion == 0 {
		c.MinVersion = parsed.MinVersion
	}
	return c, nil
}

// redactURL returns u without its password and query (which may carry
// password= too), fit for error messages and logs.
func redactURL(u *url.URL) string {
	c := *u
	c.RawQuery, c.Fragment = "", ""
	r := c.Redacted()
	if u.RawQuery != "" {
		r += "?…"
	}
	return r
}

func validAddrs(field string, addrs []string) error {
	for _, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" || port == "" {
			return fmt.Errorf("redis: Config.%s: %q is not host:port", field, a)
		}
	}
	return nil
}

// Health reports whether Redis answers, for /readyz.
type Health struct {
	Client goredis.UniversalClient
}

// Ping returns nil if Redis answers PING before ctx ends (or within 2 s if
// ctx has no deadline).
func (h Health) Ping(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
	}
	if err := h.Client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: ping: %w", err)
	}
	return nil
}
