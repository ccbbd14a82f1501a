package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bunqtpp/tpp/notify"
	"github.com/bunqtpp/tpp/redis"
	"github.com/bunqtpp/tpp/seal"
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

// setting describes one configuration value.
type setting struct {
	flag, env, def, usage string
	secret                bool
	str                   *string
	dur                   *time.Duration
	boolean               *bool
	integer               *int
}

func (c *config) settings() []setting {
	return []setting{
		{flag: "bank", env: "TPP_BUNQ_ENV", def: "emulated", usage: "bunq environment: emulated (in-process emulated sandbox), sandbox, production, or a base URL such as http://127.0.0.1:5000", str: &c.BankEnv},
		{flag: "bank-oauth-url", env: "TPP_BUNQ_OAUTH_URL", def: "", usage: "bunq OAuth authorize URL; needed only when --bank is a base URL", str: &c.BankOAuthURL},
		{flag: "bank-token-url", env: "TPP_BUNQ_TOKEN_URL", def: "", usage: "bunq OAuth token URL; needed only when --bank is a base URL", str: &c.BankTokenURL},
		{flag: "emulated-addr", env: "TPP_EMULATED_ADDR", def: "127.0.0.1:5480", usage: "with --bank emulated: address of the emulated bank's API host; its OAuth and token hosts take the next two ports", str: &c.EmulatedAddr},
		{flag: "listen", env: "TPP_LISTEN", def: "127.0.0.1:8080", usage: "address of the public API and browser pages", str: &c.Listen},
		{flag: "metrics-listen", env: "TPP_METRICS_LISTEN", def: "127.0.0.1:9090", usage: "address of /metrics (keep it private); empty disables it", str: &c.MetricsListen},
		{flag: "public-url", env: "TPP_PUBLIC_URL", def: "", usage: "URL where browsers and the bank reach this service (OAuth redirect and callbacks); default http://<listen>", str: &c.PublicURL},
		{flag: "db", env: "TPP_DB_PATH", def: "data/tpp.db", usage: "SQLite database file, or a postgres:// URL (see --db-url)", str: &c.DBPath},
		{flag: "db-url", env: "TPP_DB_URL", def: "", usage: "PostgreSQL URL (postgres://user@host:5432/db?sslmode=verify-full); when set it is used instead of --db, and N replicas can share it (a password in it is masked when printed; PGPASSWORD works too)", str: &c.DBURL},
		{flag: "db-max-conns", env: "TPP_DB_MAX_CONNS", def: "20", usage: "PostgreSQL: connections this replica opens at most", integer: &c.DBMaxConns},
		{flag: "db-max-idle-conns", env: "TPP_DB_MAX_IDLE_CONNS", def: "10", usage: "PostgreSQL: idle connections this replica keeps", integer: &c.DBMaxIdle},
		{flag: "db-conn-lifetime", env: "TPP_DB_CONN_LIFETIME", def: "30m", usage: "PostgreSQL: a connection is replaced after this long", dur: &c.DBConnLifetime},
		{flag: "redis-url", env: "TPP_REDIS_URL", def: "", usage: "Redis URL (redis:// or rediss://); empty starts an embedded Redis, for dev and demo only", str: &c.RedisURL},
		{flag: "redis-sentinel", env: "TPP_REDIS_SENTINEL", def: "", usage: "Redis Sentinel as master@host:port,host:port (instead of --redis-url)", str: &c.RedisSentinel},
		{flag: "redis-cluster", env: "TPP_REDIS_CLUSTER", def: "", usage: "Redis Cluster node addresses host:port,host:port (instead of --redis-url)", str: &c.RedisCluster},
		{flag: "redis-password", env: "TPP_REDIS_PASSWORD", def: "", usage: "Redis password for --redis-sentinel and --redis-cluster (a --redis-url carries its own)", secret: true, str: &c.RedisPassword},
		{flag: "redis-ca", env: "TPP_REDIS_CA", def: "", usage: "PEM file of the CA certificates to trust for Redis over TLS (a rediss:// --redis-url); with --redis-sentinel or --redis-cluster it also turns TLS on; empty: the system's CAs", str: &c.RedisCA},
		{flag: "webhook-targets", env: "TPP_WEBHOOK_TARGETS", def: "auto", usage: "which webhook destinations are allowed: public (refuse private, loopback and link-local addresses), any, or auto (public against sandbox and production, any otherwise)", str: &c.WebhookHosts},
		{flag: "master-key", env: "TPP_MASTER_KEY", def: "", usage: "master keys sealing secrets at rest, \"id:hex\" items, current first (generate: openssl rand -hex 32)", secret: true, str: &c.MasterKey},
		{flag: "log-level", env: "TPP_LOG_LEVEL", def: "info", usage: "debug, info, warn or error", str: &c.LogLevel},
		{flag: "log-format", env: "TPP_LOG_FORMAT", def: "json", usage: "json or text", str: &c.LogFormat},
		{flag: "cache-ttl", env: "TPP_CACHE_TTL", def: "30s", usage: "how long account reads are cached", dur: &c.CacheTTL},
		{flag: "bank-rate-budget", env: "TPP_BANK_RATE_BUDGET", def: "shared", usage: "how calls are kept under bunq's rate limits: shared (in Redis, across replicas), local (this process only) or off (load tests against a bank without limits; refused for sandbox and production)", str: &c.RateBudget},
		{flag: "sign-all", env: "TPP_SIGN_ALL", def: "false", usage: "sign every bunq request, as bunq's SDKs do (costs ~1 ms CPU per call)", boolean: &c.SignAll},
		{flag: "accept-token-without-state", env: "TPP_ACCEPT_TOKEN_WITHOUT_STATE", def: "false", usage: "accept a bunq token answer without state; its code cannot be proven to belong to the callback's flow (see docs/OPERATIONS.md, Security model)", boolean: &c.AcceptTokenWithoutState},
		{flag: "permitted-ips", env: "TPP_PERMITTED_IPS", def: "", usage: "comma-separated IPs the bunq device registration is bound to (empty: the caller's IP)", str: &c.PermittedIPs},
		{flag: "bank-callback-auth", env: "TPP_BANK_CALLBACK_AUTH", def: "auto", usage: "how bank callbacks are authenticated: ip (source address in --bank-callback-cidrs), signature (X-Bunq-Server-Signature; the emulated bank's option, bunq does not sign), none, or auto (ip for production, none for sandbox and a base URL, signature for emulated); callbacks are always re-checked at the bank", str: &c.CallbackAuth},
		{flag: "bank-callback-cidrs", env: "TPP_BANK_CALLBACK_CIDRS", def: "", usage: "comma-separated source ranges accepted with --bank-callback-auth ip (default for production: bunq's 185.40.108.0/22)", str: &c.CallbackCIDRs},
		{flag: "poll-interval", env: "TPP_POLL_INTERVAL", def: "30s", usage: "how often pending payments are re-checked at the bank (covers lost callbacks)", dur: &c.PollInterval},
		{flag: "shutdown-grace", env: "TPP_SHUTDOWN_GRACE", def: "20s", usage: "how long in-flight requests may take to finish at shutdown", dur: &c.ShutdownGrace},
		{flag: "tpp-name", env: "TPP_NAME", def: "", usage: "the service's name on the consent pages (default Open Banking Connect; required for sandbox and production)", str: &c.TPPName},
		{flag: "tpp-legal-entity", env: "TPP_LEGAL_ENTITY", def: "", usage: "the company holding the PSD2 licence, shown on the consent pages (required for sandbox and production)", str: &c.TPPLegalEntity},
		{flag: "tpp-licence", env: "TPP_LICENCE", def: "", usage: "the licence, e.g. \"DNB licence R123456\", shown on the consent pages (required for sandbox and production)", str: &c.TPPLicence},
		{flag: "tpp-privacy-url", env: "TPP_PRIVACY_URL", def: "", usage: "the privacy policy's https URL, linked from the consent pages (required for sandbox and production)", str: &c.TPPPrivacyURL},
		{flag: "client-rate-limit", env: "TPP_CLIENT_RATE_LIMIT", def: "50/s", usage: "requests per fintech client to the /v1 API, shared by all replicas in Redis, as <n>/s, <n>/m or <n>/h; off disables it", str: &c.ClientRate},
		{flag: "client-rate-burst", env: "TPP_CLIENT_RATE_BURST", def: "", usage: "requests a client may send at once under --client-rate-limit (empty: twice the rate's n)", str: &c.ClientBurst},
	}
}

// parseConfig fills c from defaults, then getenv, then args.
func parseConfig(fs *flag.FlagSet, args []string, getenv func(string) string) (*config, error) {
	c := &config{}
	raw := map[string]*string{}
	for _, s := range c.settings() {
		v := s.def
		if e := getenv(s.env); e != "" {
			v = e
		}
		val := v
		raw[s.flag] = &val
		if s.boolean != nil {
			// A plain --sign-all means true, as with any boolean flag;
			// --sign-all=false turns it off again.
			fs.Var(boolFlag{&val}, s.flag, s.usage+" ($"+s.env+")")
			continue
		}
		fs.StringVar(raw[s.flag], s.flag, v, s.usage+" ($"+s.env+")")
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	for _, s := range c.settings() {
		v := strings.TrimSpace(*raw[s.flag])
		switch {
		case s.str != nil:
			*s.str = v
		case s.dur != nil:
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return nil, fmt.Errorf("setting --%s ($%s) = %q is not a duration such as 30s or 5m", s.flag, s.env, v)
			}
			*s.dur = d
		case s.integer != nil:
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("setting --%s ($%s) = %q must be a whole number of at least 1", s.flag, s.env, v)
			}
			*s.integer = n
		case s.integer != nil:
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("setting --%s ($%s) = %q must be a whole number of at least 1", s.flag, s.env, v)
			}
			*s.integer = n
		case s.boolean != nil:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("setting --%s ($%s) = %q must be true or false", s.flag, s.env, v)
			}
			*s.boolean = b
		}
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.Listen
	}
	return c, c.validate()
}

// boolFlag is a boolean flag kept as text until parseConfig checks it, so a
// bad value from the environment gets the same error as one from a flag.
type boolFlag struct{ v *string }

func (b boolFlag) String() string {
	if b.v == nil {
		return ""
	}
	return *b.v
}
func (b boolFlag) Set(s string) error { *b.v = s; return nil }
func (b boolFlag) IsBoolFlag() bool   { return true }

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
	if c.DBURL != "" && !isPostgresURL(c.DBURL) {
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
	if c.ClientRate == "off" {
		return l, false, nil
	}
	n, unit, ok := strings.Cut(c.ClientRate, "/")
	periods := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}
	rate, rerr := strconv.Atoi(n)
	if !ok || rerr != nil || rate < 1 || periods[unit] == 0 {
		return l, false, fmt.Errorf("setting --client-rate-limit ($TPP_CLIENT_RATE_LIMIT) = %q: use <n>/s, <n>/m or <n>/h with n >= 1 (e.g. 50/s), or off", c.ClientRate)
	}
	l = redis.ClientLimit{Rate: rate, Period: periods[unit], Burst: 2 * rate}
	if c.ClientBurst != "" {
		b, err := strconv.Atoi(c.ClientBurst)
		if err != nil || b < 1 {
			return l, false, fmt.Errorf("setting --client-rate-burst ($TPP_CLIENT_RATE_BURST) = %q: use a whole number >= 1, or leave it empty", c.ClientBurst)
		}
		l.Burst = b
	}
	return l, true, nil
}

// callbackAuth resolves --bank-callback-auth and --bank-callback-cidrs:
// auto is ip with bunq's production range for production, signature for the
// emulated bank (started with callback signing on) and none otherwise (bunq's
// sandbox calls from changing AWS addresses, so a range cannot be named).
func (c *config) callbackAuth() (string, []netip.Prefix, error) {
	mode := c.CallbackAuth
	if mode == "auto" || mode == "" {
		switch c.BankEnv {
		case "production":
			mode = notify.AuthIP
		case "emulated":
			mode = notify.AuthSignature
		default:
			mode = notify.AuthNone
		}
	}
	var cidrs []netip.Prefix
	for _, f := range strings.Split(c.CallbackCIDRs, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return "", nil, fmt.Errorf("setting --bank-callback-cidrs ($TPP_BANK_CALLBACK_CIDRS): %q is not a CIDR such as 185.40.108.0/22", f)
		}
		cidrs = append(cidrs, p.Masked())
	}
	switch mode {
	case notify.AuthIP:
		if len(cidrs) == 0 && c.BankEnv == "production" {
			cidrs = []netip.Prefix{notify.BunqProductionRange}
		}
		if len(cidrs) == 0 {
			return "", nil, errors.New("setting --bank-callback-auth ($TPP_BANK_CALLBACK_AUTH) = ip needs --bank-callback-cidrs ($TPP_BANK_CALLBACK_CIDRS) outside production")
		}
	case notify.AuthSignature, notify.AuthNone:
	default:
		return "", nil, fmt.Errorf("setting --bank-callback-auth ($TPP_BANK_CALLBACK_AUTH) = %q: use ip, signature, none or auto", c.CallbackAuth)
	}
	return mode, cidrs, nil
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
		var v string
		switch {
		case s.str != nil:
			v = *s.str
		case s.dur != nil:
			v = s.dur.String()
		case s.integer != nil:
			v = strconv.Itoa(*s.integer)
		case s.boolean != nil:
			v = strconv.FormatBool(*s.boolean)
		}
		shown := maskSetting(s, v)
		if s.flag == "master-key" && v == "" && c.BankEnv == "emulated" {
			// Never an empty line while a key seals the secrets.
			shown = "(not set: a development key, kept in " + filepath.Join(filepath.Dir(c.DBPath), "master.key") + ")"
		}
		fmt.Fprintf(w, "  %-16s %s\n", s.flag, shown)
	}
}

// maskSetting returns v as it may be printed. Each rule is final: a
// secret is never parsed as something else (a password holding ':' or ','
// is not a key list, nor a URL).
func maskSetting(s setting, v string) string {
	switch {
	case v == "":
		return v
	case s.flag == "master-key":
		return maskKeyIDs(v) // key ids help operators; the keys stay hidden
	case s.secret:
		return "****"
	case strings.HasPrefix(s.flag, "redis-"), s.flag == "db", s.flag == "db-url":
		return maskURLPassword(v)
	}
	return v
}

// maskKeyIDs shows only the key ids of a master key list. Anything that is
// not a well-formed id (say, a key written before its id) shows as "?".
func maskKeyIDs(v string) string {
	var ids []string
	for _, item := range strings.Split(v, ",") {
		id, _, ok := strings.Cut(strings.TrimSpace(item), ":")
		if !ok || seal.ValidKeyID(id) != nil { // a key written before its id never passes
			id = "?"
		}
		ids = append(ids, id+":****")
	}
	return strings.Join(ids, ",")
}

// maskURLPassword masks a password in a URL's user info and in its query
// (Sentinel URLs carry the Redis password as password=...). A value that
// does not parse, or parses with a fragment (a password holding an
// unescaped '#' splits there), prints as "****".
func maskURLPassword(v string) string {
	u, err := url.Parse(v)
	if err != nil || u.Fragment != "" || strings.Contains(v, "#") {
		return "****"
	}
	if q := u.Query(); q.Has("password") || q.Has("sentinel_password") {
		for _, k := range []string{"password", "sentinel_password"} {
			if q.Has(k) {
				q.Set(k, "MASKED")
			}
		}
		u.RawQuery = q.Encode()
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "MASKED")
		}
	}
	return strings.ReplaceAll(strings.ReplaceAll(u.String(), ":MASKED@", ":****@"), "=MASKED", "=****")
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
