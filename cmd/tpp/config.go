package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/bunqtpp/tpp/notify"
	"github.com/bunqtpp/tpp/postgres"
	"github.com/bunqtpp/tpp/redis"
	"github.com/bunqtpp/tpp/seal"
	"github.com/bunqtpp/tpp/settings"
	"github.com/bunqtpp/tpp/storage"
)

// config is the typed configuration of 'tpp serve' and 'tpp demo'. Every
// field is a setting with a flag and a TPP_ environment variable; flags win
// over the environment, the environment over defaults.
type config struct {
	BankEnv        string // emulated | sandbox | production | a base URL
	BankOAuthURL   string // authorize page; derived for sandbox and production
	BankTokenURL   string // token endpoint; derived for sandbox and production
	EmulatedAddr   string // first of three consecutive ports of the emulated bank
	Listen         string
	MetricsListen  string
	PublicURL      string
	DBPath         string
	DBURL          string // PostgreSQL; wins over DBPath
	DBMaxConns     int
	DBMaxIdle      int
	DBConnLifetime time.Duration
	RedisURL       string
	RedisSentinel  string // master@host:port,host:port
	RedisCluster   string // host:port,host:port
	RedisPassword  string // for Sentinel and Cluster; a URL carries its own
	RedisCA        string // PEM file of CAs to trust for Redis TLS
	WebhookHosts   string // private | public | auto
	RateBudget     string // shared | local | off
	MasterKey      string
	LogLevel       string
	LogFormat      string
	CacheTTL       time.Duration
	SignAll        bool
	// AcceptTokenWithoutState accepts bunq token answers that name no
	// state (see docs/OPERATIONS.md, Security model).
	AcceptTokenWithoutState bool
	PermittedIPs            string
	CallbackAuth            string // ip | signature | none | auto
	CallbackCIDRs           string // comma-separated CIDRs for CallbackAuth ip
	PollInterval            time.Duration
	ShutdownGrace           time.Duration
	// Who runs this TPP, shown on the consent pages.
	TPPName, TPPLegalEntity, TPPLicence, TPPPrivacyURL string
	// ClientRate is "<n>/<s|m|h>" or "off"; ClientBurst an integer (empty:
	// twice the rate). Parsed by clientLimit.
	ClientRate  string
	ClientBurst string
}

// settings lists every setting of the config.
func (c *config) settings() []settings.Setting {
	list := []settings.Setting{
		{Flag: "bank", Env: "TPP_BUNQ_ENV", Default: "emulated", Usage: "bunq environment: emulated (in-process emulated sandbox), sandbox, production, or a base URL such as http://127.0.0.1:5000", Str: &c.BankEnv},
		{Flag: "bank-oauth-url", Env: "TPP_BUNQ_OAUTH_URL", Default: "", Usage: "bunq OAuth authorize URL; needed only when --bank is a base URL", Str: &c.BankOAuthURL},
		{Flag: "bank-token-url", Env: "TPP_BUNQ_TOKEN_URL", Default: "", Usage: "bunq OAuth token URL; needed only when --bank is a base URL", Str: &c.BankTokenURL},
		{Flag: "emulated-addr", Env: "TPP_EMULATED_ADDR", Default: "127.0.0.1:5480", Usage: "with --bank emulated: address of the emulated bank's API host; its OAuth and token hosts take the next two ports", Str: &c.EmulatedAddr},
		{Flag: "listen", Env: "TPP_LISTEN", Default: "127.0.0.1:8080", Usage: "address of the public API and browser pages", Str: &c.Listen},
		{Flag: "metrics-listen", Env: "TPP_METRICS_LISTEN", Default: "127.0.0.1:9090", Usage: "address of /metrics (keep it private); empty disables it", Str: &c.MetricsListen},
		{Flag: "public-url", Env: "TPP_PUBLIC_URL", Default: "", Usage: "URL where browsers and the bank reach this service (OAuth redirect and callbacks); default http://<listen>", Str: &c.PublicURL},
		{Flag: "db", Env: "TPP_DB_PATH", Default: "data/tpp.db", Usage: "SQLite database file, or a postgres:// URL (see --db-url)", Str: &c.DBPath},
		{Flag: "db-url", Env: "TPP_DB_URL", Default: "", Usage: "PostgreSQL URL (postgres://user@host:5432/db?sslmode=verify-full); when set it is used instead of --db, and N replicas can share it (a password in it is masked when printed; PGPASSWORD works too)", Str: &c.DBURL},
		{Flag: "db-max-conns", Env: "TPP_DB_MAX_CONNS", Default: "20", Usage: "PostgreSQL: connections this replica opens at most", Int: &c.DBMaxConns},
		{Flag: "db-max-idle-conns", Env: "TPP_DB_MAX_IDLE_CONNS", Default: "10", Usage: "PostgreSQL: idle connections this replica keeps", Int: &c.DBMaxIdle},
		{Flag: "db-conn-lifetime", Env: "TPP_DB_CONN_LIFETIME", Default: "30m", Usage: "PostgreSQL: a connection is replaced after this long", Dur: &c.DBConnLifetime},
		{Flag: "redis-url", Env: "TPP_REDIS_URL", Default: "", Usage: "Redis URL (redis:// or rediss://); empty starts an embedded Redis, for dev and demo only", Str: &c.RedisURL},
		{Flag: "redis-sentinel", Env: "TPP_REDIS_SENTINEL", Default: "", Usage: "Redis Sentinel as master@host:port,host:port (instead of --redis-url)", Str: &c.RedisSentinel},
		{Flag: "redis-cluster", Env: "TPP_REDIS_CLUSTER", Default: "", Usage: "Redis Cluster node addresses host:port,host:port (instead of --redis-url)", Str: &c.RedisCluster},
		{Flag: "redis-password", Env: "TPP_REDIS_PASSWORD", Default: "", Usage: "Redis password for --redis-sentinel and --redis-cluster (a --redis-url carries its own)", Str: &c.RedisPassword},
		{Flag: "redis-ca", Env: "TPP_REDIS_CA", Default: "", Usage: "PEM file of the CA certificates to trust for Redis over TLS (a rediss:// --redis-url); with --redis-sentinel or --redis-cluster it also turns TLS on; empty: the system's CAs", Str: &c.RedisCA},
		{Flag: "webhook-targets", Env: "TPP_WEBHOOK_TARGETS", Default: "auto", Usage: "which webhook destinations are allowed: public (refuse private, loopback and link-local addresses), any, or auto (public against sandbox and production, any otherwise)", Str: &c.WebhookHosts},
		{Flag: "master-key", Env: "TPP_MASTER_KEY", Default: "", Usage: "master keys sealing secrets at rest, \"id:hex\" items, current first (generate: openssl rand -hex 32)", Str: &c.MasterKey},
		{Flag: "log-level", Env: "TPP_LOG_LEVEL", Default: "info", Usage: "debug, info, warn or error", Str: &c.LogLevel},
		{Flag: "log-format", Env: "TPP_LOG_FORMAT", Default: "json", Usage: "json or text", Str: &c.LogFormat},
		{Flag: "cache-ttl", Env: "TPP_CACHE_TTL", Default: "30s", Usage: "how long account reads are cached", Dur: &c.CacheTTL},
		{Flag: "bank-rate-budget", Env: "TPP_BANK_RATE_BUDGET", Default: "shared", Usage: "how calls are kept under bunq's rate limits: shared (in Redis, across replicas), local (this process only) or off (load tests against a bank without limits; refused for sandbox and production)", Str: &c.RateBudget},
		{Flag: "sign-all", Env: "TPP_SIGN_ALL", Default: "false", Usage: "sign every bunq request, as bunq's SDKs do (costs ~1 ms CPU per call)", Bool: &c.SignAll},
		{Flag: "accept-token-without-state", Env: "TPP_ACCEPT_TOKEN_WITHOUT_STATE", Default: "false", Usage: "accept a bunq token answer without state; its code cannot be proven to belong to the callback's flow (see docs/OPERATIONS.md, Security model)", Bool: &c.AcceptTokenWithoutState},
		{Flag: "permitted-ips", Env: "TPP_PERMITTED_IPS", Default: "", Usage: "comma-separated IPs the bunq device registration is bound to (empty: the caller's IP)", Str: &c.PermittedIPs},
		{Flag: "bank-callback-auth", Env: "TPP_BANK_CALLBACK_AUTH", Default: "auto", Usage: "how bank callbacks are authenticated: ip (source address in --bank-callback-cidrs), signature (X-Bunq-Server-Signature; the emulated bank's option, bunq does not sign), none, or auto (ip for production, none for sandbox and a base URL, signature for emulated); callbacks are always re-checked at the bank", Str: &c.CallbackAuth},
		{Flag: "bank-callback-cidrs", Env: "TPP_BANK_CALLBACK_CIDRS", Default: "", Usage: "comma-separated source ranges accepted with --bank-callback-auth ip (default for production: bunq's 185.40.108.0/22)", Str: &c.CallbackCIDRs},
		{Flag: "poll-interval", Env: "TPP_POLL_INTERVAL", Default: "30s", Usage: "how often pending payments are re-checked at the bank (covers lost callbacks)", Dur: &c.PollInterval},
		{Flag: "shutdown-grace", Env: "TPP_SHUTDOWN_GRACE", Default: "20s", Usage: "how long in-flight requests may take to finish at shutdown", Dur: &c.ShutdownGrace},
		{Flag: "tpp-name", Env: "TPP_NAME", Default: "", Usage: "the service's name on the consent pages (default Open Banking Connect; required for sandbox and production)", Str: &c.TPPName},
		{Flag: "tpp-legal-entity", Env: "TPP_LEGAL_ENTITY", Default: "", Usage: "the company holding the PSD2 licence, shown on the consent pages (required for sandbox and production)", Str: &c.TPPLegalEntity},
		{Flag: "tpp-licence", Env: "TPP_LICENCE", Default: "", Usage: "the licence, e.g. \"DNB licence R123456\", shown on the consent pages (required for sandbox and production)", Str: &c.TPPLicence},
		{Flag: "tpp-privacy-url", Env: "TPP_PRIVACY_URL", Default: "", Usage: "the privacy policy's https URL, linked from the consent pages (required for sandbox and production)", Str: &c.TPPPrivacyURL},
		{Flag: "client-rate-limit", Env: "TPP_CLIENT_RATE_LIMIT", Default: "50/s", Usage: "requests per fintech client to the /v1 API, shared by all replicas in Redis, as <n>/s, <n>/m or <n>/h; off disables it", Str: &c.ClientRate},
		{Flag: "client-rate-burst", Env: "TPP_CLIENT_RATE_BURST", Default: "", Usage: "requests a client may send at once under --client-rate-limit (empty: twice the rate's n)", Str: &c.ClientBurst},
	}
	for i := range list {
		list[i].Mask = maskFor(list[i].Flag)
	}
	return list
}

// maskFor is how a setting's printed value hides secrets.
func maskFor(flag string) func(string) string {
	switch {
	case flag == "master-key":
		return seal.MaskKeyIDs // key ids help operators; the keys stay hidden
	case flag == "redis-password":
		return settings.Secret
	case strings.HasPrefix(flag, "redis-"), flag == "db", flag == "db-url":
		return settings.URLPassword
	}
	return nil
}

// parseConfig fills c from defaults, then getenv, then args.
func parseConfig(fs *flag.FlagSet, args []string, getenv func(string) string) (*config, error) {
	c := &config{}
	if err := settings.Parse(fs, c.settings(), args, getenv); err != nil {
		return nil, err
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.Listen
	}
	return c, c.validate()
}

// validate checks settings that can be checked without I/O and names the
// setting and the fix in every error.
func (c *config) validate() error {
	var errs []error
	switch c.BankEnv {
	case "emulated", "sandbox", "production":
	default:
		if !isHTTPURL(c.BankEnv) {
			errs = append(errs, fmt.Errorf("setting --bank ($TPP_BUNQ_ENV) = %q: use emulated, sandbox, production or an http(s) base URL", c.BankEnv))
		} else if !isHTTPURL(c.BankOAuthURL) || !isHTTPURL(c.BankTokenURL) {
			errs = append(errs, errors.New("settings --bank-oauth-url ($TPP_BUNQ_OAUTH_URL) and --bank-token-url ($TPP_BUNQ_TOKEN_URL) are required http(s) URLs when --bank is a base URL"))
		}
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		errs = append(errs, fmt.Errorf("setting --public-url ($TPP_PUBLIC_URL) = %q: use an absolute http(s) URL without query, e.g. https://tpp.example.com", c.PublicURL))
	}
	if c.Listen == "" {
		errs = append(errs, errors.New("setting --listen ($TPP_LISTEN) is empty: use host:port, e.g. 127.0.0.1:8080"))
	}
	if c.DBPath == "" && c.DBURL == "" {
		errs = append(errs, errors.New("setting --db ($TPP_DB_PATH) is empty: give a file path, e.g. data/tpp.db"))
	}
	if c.DBURL != "" && !storage.IsPostgresURL(c.DBURL) {
		errs = append(errs, errors.New("setting --db-url ($TPP_DB_URL) must be a postgres:// URL"))
	}
	if c.DBMaxIdle > c.DBMaxConns {
		c.DBMaxIdle = c.DBMaxConns
	}
	n := 0
	for _, v := range []string{c.RedisURL, c.RedisSentinel, c.RedisCluster} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		errs = append(errs, errors.New("settings --redis-url, --redis-sentinel and --redis-cluster exclude each other: set one"))
	}
	if c.RedisURL != "" {
		// The value is not repeated: it may hold a password.
		if u, err := url.Parse(c.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			errs = append(errs, errors.New("setting --redis-url ($TPP_REDIS_URL) is not a valid Redis URL: use redis://host:6379/0, or rediss://user:password@host:6380/0 for TLS"))
		}
	}
	if n == 0 && c.RedisCA != "" {
		errs = append(errs, errors.New("setting --redis-ca ($TPP_REDIS_CA) needs a Redis to trust it for: set --redis-url (rediss://), --redis-sentinel or --redis-cluster"))
	}
	switch c.RateBudget {
	case "shared", "local":
	case "off":
		if c.BankEnv == "sandbox" || c.BankEnv == "production" {
			errs = append(errs, fmt.Errorf("setting --bank-rate-budget ($TPP_BANK_RATE_BUDGET) = off is refused for --bank %s: bunq would answer 429s", c.BankEnv))
		}
	default:
		errs = append(errs, fmt.Errorf("setting --bank-rate-budget ($TPP_BANK_RATE_BUDGET) = %q: use shared, local or off", c.RateBudget))
	}
	if _, _, err := c.clientLimit(); err != nil {
		errs = append(errs, err)
	}
	if _, _, err := c.callbackAuth(); err != nil {
		errs = append(errs, err)
	}
	switch c.WebhookHosts {
	case "auto", "public", "any":
	default:
		errs = append(errs, fmt.Errorf("setting --webhook-targets ($TPP_WEBHOOK_TARGETS) = %q: use public, any or auto", c.WebhookHosts))
	}
	errs = append(errs, c.validateBranding()...)
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("setting --log-level ($TPP_LOG_LEVEL) = %q: use debug, info, warn or error", c.LogLevel))
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		errs = append(errs, fmt.Errorf("setting --log-format ($TPP_LOG_FORMAT) = %q: use json or text", c.LogFormat))
	}
	return errors.Join(errs...)
}

// validateBranding requires who runs the TPP where real people see the
// pages (sandbox and production); the emulated bank and a base URL may
// leave it out.
func (c *config) validateBranding() []error {
	var errs []error
	if c.TPPPrivacyURL != "" && !isHTTPURL(c.TPPPrivacyURL) {
		errs = append(errs, fmt.Errorf("setting --tpp-privacy-url ($TPP_PRIVACY_URL) = %q: use an http(s) URL", c.TPPPrivacyURL))
	}
	if c.BankEnv != "sandbox" && c.BankEnv != "production" {
		return errs
	}
	for _, s := range []struct{ v, flag, env string }{
		{c.TPPName, "--tpp-name", "$TPP_NAME"},
		{c.TPPLegalEntity, "--tpp-legal-entity", "$TPP_LEGAL_ENTITY"},
		{c.TPPLicence, "--tpp-licence", "$TPP_LICENCE"},
		{c.TPPPrivacyURL, "--tpp-privacy-url", "$TPP_PRIVACY_URL"},
	} {
		if s.v == "" {
			errs = append(errs, fmt.Errorf("setting %s (%s) is required for --bank %s: the consent pages tell people who runs this service", s.flag, s.env, c.BankEnv))
		}
	}
	return errs
}

// clientLimit parses --client-rate-limit and --client-rate-burst; on is
// false when the limit is off.
func (c *config) clientLimit() (l redis.ClientLimit, on bool, err error) {
	return redis.ParseClientLimit(c.ClientRate, c.ClientBurst)
}

// callbackAuth resolves --bank-callback-auth and --bank-callback-cidrs.
func (c *config) callbackAuth() (string, []netip.Prefix, error) {
	return notify.ResolveCallbackAuth(c.CallbackAuth, c.BankEnv, c.CallbackCIDRs)
}

// webhookDenyPrivate tells whether webhooks to private, loopback and
// link-local addresses are refused (SSRF protection for a hosted TPP).
func (c *config) webhookDenyPrivate() bool {
	switch c.WebhookHosts {
	case "public":
		return true
	case "any":
		return false
	}
	return c.BankEnv == "sandbox" || c.BankEnv == "production"
}

// print writes the effective configuration with secrets masked.
func (c *config) print(w io.Writer) {
	fmt.Fprintln(w, "effective configuration:")
	for _, s := range c.settings() {
		shown := s.Shown()
		if s.Flag == "master-key" && shown == "" && c.BankEnv == "emulated" {
			// Never an empty line while a key seals the secrets.
			shown = "(not set: a development key, kept in " + filepath.Join(filepath.Dir(c.DBPath), "master.key") + ")"
		}
		fmt.Fprintf(w, "  %-16s %s\n", s.Flag, shown)
	}
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// database returns which store the settings select and its path or URL:
// --db-url ($TPP_DB_URL), or --db when it is a postgres:// URL, selects
// PostgreSQL; a plain path stays SQLite.
func (c *config) database() (kind, target string) {
	switch {
	case c.DBURL != "":
		return "postgres", c.DBURL
	case storage.IsPostgresURL(c.DBPath):
		return "postgres", c.DBPath
	}
	return "sqlite", c.DBPath
}

// pool returns the PostgreSQL pool settings.
func (c *config) pool() postgres.Pool {
	return postgres.Pool{MaxOpen: c.DBMaxConns, MaxIdle: c.DBMaxIdle, MaxLifetime: c.DBConnLifetime}
}

// storage returns the database the settings select.
func (c *config) storage() storage.Config {
	kind, target := c.database()
	return storage.Config{Kind: kind, Target: target, Pool: c.pool()}
}
