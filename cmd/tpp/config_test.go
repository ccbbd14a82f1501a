package main

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/bunqtpp/tpp/redis"
)

func parseTestConfig(t *testing.T, env map[string]string, args ...string) (*config, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return parseConfig(fs, args, func(k string) string { return env[k] })
}

func TestConfigPrecedence(t *testing.T) {
	c, err := parseTestConfig(t, map[string]string{"TPP_LISTEN": "127.0.0.1:9000", "TPP_CACHE_TTL": "10s"}, "--cache-ttl", "45s")
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9000" {
		t.Errorf("env not applied: listen = %q", c.Listen)
	}
	if c.CacheTTL != 45*time.Second {
		t.Errorf("flag does not win over env: cache-ttl = %v", c.CacheTTL)
	}
	if c.PublicURL != "http://127.0.0.1:9000" {
		t.Errorf("public URL not derived from listen: %q", c.PublicURL)
	}
	if c.BankEnv != "emulated" || c.DBPath != "data/tpp.db" {
		t.Errorf("defaults not applied: %+v", c)
	}
}

func TestConfigErrorsNameTheSetting(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--bank", "ftp://x"}, "--bank ($TPP_BUNQ_ENV)"},
		{[]string{"--bank", "http://127.0.0.1:5000"}, "--bank-oauth-url"},
		{[]string{"--public-url", "not a url"}, "--public-url ($TPP_PUBLIC_URL)"},
		{[]string{"--cache-ttl", "soon"}, "--cache-ttl ($TPP_CACHE_TTL)"},
		{[]string{"--sign-all=maybe"}, "--sign-all ($TPP_SIGN_ALL)"},
		{[]string{"--redis-url", "ht tp://user:pw@x"}, "--redis-url ($TPP_REDIS_URL) is not a valid Redis URL"},
		{[]string{"--redis-url", "http://x:6379"}, "--redis-url ($TPP_REDIS_URL) is not a valid Redis URL"},
		{[]string{"--log-level", "loud"}, "--log-level ($TPP_LOG_LEVEL)"},
		{[]string{"--redis-url", "redis://a", "--redis-cluster", "b:1"}, "exclude each other"},
	}
	for _, tt := range tests {
		_, err := parseTestConfig(t, nil, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: err = %v, want it to name %q", tt.args, err, tt.want)
		}
	}
}

// TestBooleanSettingsArePlainFlags: a boolean flag needs no value, so the
// next flag is not taken for one.
func TestBooleanSettingsArePlainFlags(t *testing.T) {
	c, err := parseTestConfig(t, nil, "--sign-all", "--redis-url", "redis://127.0.0.1:6379/0")
	if err != nil {
		t.Fatal(err)
	}
	if !c.SignAll || c.RedisURL != "redis://127.0.0.1:6379/0" {
		t.Errorf("--sign-all --redis-url X: SignAll %v, RedisURL %q", c.SignAll, c.RedisURL)
	}
	c, err = parseTestConfig(t, map[string]string{"TPP_SIGN_ALL": "true"}, "--sign-all=false")
	if err != nil || c.SignAll {
		t.Errorf("--sign-all=false over TPP_SIGN_ALL=true: SignAll %v, err %v", c != nil && c.SignAll, err)
	}
	if _, err := parseTestConfig(t, map[string]string{"TPP_SIGN_ALL": "maybe"}); err == nil || !strings.Contains(err.Error(), "--sign-all ($TPP_SIGN_ALL)") {
		t.Errorf("TPP_SIGN_ALL=maybe: %v", err)
	}
}

func TestConfigErrorsDoNotRepeatARedisPassword(t *testing.T) {
	_, err := parseTestConfig(t, nil, "--redis-url", "ht tp://user:hunter2@x")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("err = %v", err)
	}
}

func TestConfigPrintMasksSecrets(t *testing.T) {
	key := strings.Repeat("ab", 32)
	c, err := parseTestConfig(t, map[string]string{"TPP_MASTER_KEY": "k2:" + key + ",k1:" + key, "TPP_REDIS_PASSWORD": "pw-cluster"},
		"--redis-url", "redis://user:hunter2@redis:6379/0?master_name=m&password=pw-in-query")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	c.print(&b)
	out := b.String()
	if strings.Contains(out, key) || strings.Contains(out, "hunter2") || strings.Contains(out, "pw-in-query") || strings.Contains(out, "pw-cluster") {
		t.Fatalf("printed configuration leaks a secret:\n%s", out)
	}
	if !strings.Contains(out, "k2:****,k1:****") || !strings.Contains(out, "redis://user:****@redis:6379/0?master_name=m&password=****") {
		t.Fatalf("masked values not shown as expected:\n%s", out)
	}
}

// Secrets print as "****" whatever characters they hold: a Redis password
// with ':' or ',' is not a key list, one with '@' or '#' is not a URL.
func TestConfigPrintMasksAwkwardSecrets(t *testing.T) {
	key := strings.Repeat("cd", 32)
	for _, tc := range []struct {
		env  map[string]string
		args []string
		leak []string // must not be printed
		want string   // the setting's printed line, without its flag
	}{
		{env: map[string]string{"TPP_REDIS_PASSWORD": "qwz:jxk"}, args: []string{"--redis-cluster", "r1:6379,r2:6379"},
			leak: []string{"qwz", "jxk"}, want: "redis-password   ****"},
		{env: map[string]string{"TPP_REDIS_PASSWORD": "pqz:xyw,uvq:rtm@x"}, args: []string{"--redis-sentinel", "m@s1:26379"},
			leak: []string{"pqz", "xyw", "uvq", "rtm"}, want: "redis-password   ****"},
		{args: []string{"--redis-password", "k1:" + key}, leak: []string{key, "k1:"}, want: "redis-password   ****"},
		// A key written before its id shows neither.
		{env: map[string]string{"TPP_MASTER_KEY": key + ":k1,k2:" + key}, leak: []string{key},
			want: "master-key       ?:****,k2:****"},
		// Passwords in URLs: ':' is fine; an unescaped '#' makes the rest a
		// fragment, which hides the whole URL.
		{args: []string{"--redis-url", "redis://u:p:w:d@redis:6379/0"}, leak: []string{"p:w:d"},
			want: "redis-url        redis://u:****@redis:6379/0"},
		{args: []string{"--redis-url", "redis://:8123#9456@redis:6379/0"}, leak: []string{"8123", "9456"},
			want: "redis-url        ****"},
		{args: []string{"--redis-url", "redis://redis:6379/0?password=a:b,c&sentinel_password=d:e"}, leak: []string{"a:b", "d:e"},
			want: "redis-url        redis://redis:6379/0?password=****&sentinel_password=****"},
	} {
		c, err := parseTestConfig(t, tc.env, tc.args...)
		if err != nil {
			t.Fatalf("%v %v: %v", tc.env, tc.args, err)
		}
		var b strings.Builder
		c.print(&b)
		out := b.String()
		for _, l := range tc.leak {
			if strings.Contains(out, l) {
				t.Errorf("%v %v: printed configuration shows %q:\n%s", tc.env, tc.args, l, out)
			}
		}
		if !strings.Contains(out, "  "+tc.want+"\n") {
			t.Errorf("%v %v: want the line %q in\n%s", tc.env, tc.args, tc.want, out)
		}
	}
}

func TestWebhookTargets(t *testing.T) {
	for _, tt := range []struct {
		bank, targets string
		deny          bool
	}{
		{"production", "auto", true},
		{"sandbox", "auto", true},
		{"emulated", "auto", false},
		{"production", "any", false},
		{"emulated", "public", true},
	} {
		c, err := parseTestConfig(t, brandingEnv, "--bank", tt.bank, "--webhook-targets", tt.targets)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.webhookDenyPrivate(); got != tt.deny {
			t.Errorf("bank %s, targets %s: deny private = %v, want %v", tt.bank, tt.targets, got, tt.deny)
		}
	}
	if _, err := parseTestConfig(t, nil, "--webhook-targets", "internal"); err == nil || !strings.Contains(err.Error(), "--webhook-targets") {
		t.Errorf("bad value accepted: %v", err)
	}
}

// brandingEnv is the branding sandbox and production require.
var brandingEnv = map[string]string{"TPP_NAME": "Acme Connect", "TPP_LEGAL_ENTITY": "Acme B.V.", "TPP_LICENCE": "DNB licence R1", "TPP_PRIVACY_URL": "https://acme.example/privacy"}

// TestBrandingRequiredForRealBanks: sandbox and production need to say who
// runs the TPP; the emulated bank does not.
func TestBrandingRequiredForRealBanks(t *testing.T) {
	for _, bank := range []string{"sandbox", "production"} {
		_, err := parseTestConfig(t, nil, "--bank", bank)
		for _, want := range []string{"--tpp-name ($TPP_NAME)", "--tpp-legal-entity", "--tpp-licence", "--tpp-privacy-url"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("--bank %s without branding: err = %v, want it to name %s", bank, err, want)
			}
		}
		if _, err := parseTestConfig(t, brandingEnv, "--bank", bank); err != nil {
			t.Errorf("--bank %s with branding: %v", bank, err)
		}
	}
	if _, err := parseTestConfig(t, nil); err != nil {
		t.Errorf("emulated without branding: %v", err)
	}
	if _, err := parseTestConfig(t, nil, "--tpp-privacy-url", "privacy.html"); err == nil || !strings.Contains(err.Error(), "--tpp-privacy-url") {
		t.Errorf("a relative privacy URL: %v", err)
	}
}

func TestRateBudgetOffOnlyAgainstOwnBank(t *testing.T) {
	for _, bank := range []string{"sandbox", "production"} {
		if _, err := parseTestConfig(t, nil, "--bank", bank, "--bank-rate-budget", "off"); err == nil || !strings.Contains(err.Error(), "--bank-rate-budget") {
			t.Errorf("--bank %s --bank-rate-budget off: err = %v, want a refusal", bank, err)
		}
	}
	if _, err := parseTestConfig(t, nil, "--bank-rate-budget", "off"); err != nil {
		t.Errorf("off against the emulated bank: %v", err)
	}
}

func TestVersionFlag(t *testing.T) {
	var out, errs strings.Builder
	if err := run(t.Context(), []string{"--version"}, &out, &errs); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasPrefix(got, "tpp ") || !strings.Contains(got, "go1.") {
		t.Errorf("tpp --version printed %q", got)
	}
}

func TestConfigPrintNamesTheDevelopmentKey(t *testing.T) {
	c, err := parseTestConfig(t, nil, "--db", "demo-data/tpp.db")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	c.print(&b)
	if !strings.Contains(b.String(), "master-key       (not set: a development key, kept in demo-data/master.key)") {
		t.Errorf("start-up shows the master key as:\n%s", b.String())
	}
}

func TestClientRateLimitSetting(t *testing.T) {
	for _, tt := range []struct {
		rate, burst string
		want        redis.ClientLimit
		on          bool
	}{
		{"50/s", "", redis.ClientLimit{Rate: 50, Period: time.Second, Burst: 100}, true},
		{"600/m", "20", redis.ClientLimit{Rate: 600, Period: time.Minute, Burst: 20}, true},
		{"off", "", redis.ClientLimit{}, false},
	} {
		c, err := parseTestConfig(t, map[string]string{"TPP_CLIENT_RATE_LIMIT": tt.rate}, "--client-rate-burst", tt.burst)
		if err != nil {
			t.Fatal(err)
		}
		got, on, err := c.clientLimit()
		if err != nil || on != tt.on || got != tt.want {
			t.Errorf("%s burst %q = %+v on=%v %v, want %+v on=%v", tt.rate, tt.burst, got, on, err, tt.want, tt.on)
		}
	}
	for _, args := range [][]string{{"--client-rate-limit", "50"}, {"--client-rate-limit", "0/s"}, {"--client-rate-limit", "5/d"}, {"--client-rate-burst", "-1"}} {
		if _, err := parseTestConfig(t, nil, args...); err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("%v: err = %v, want a refusal naming the setting", args, err)
		}
	}
}

// TestCallbackAuthDefaults: --bank-callback-auth auto is ip with bunq's
// production range for production, none for bunq's sandbox (changing AWS
// addresses) and a base URL, signature for the in-process emulated bank.
func TestCallbackAuthDefaults(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		mode  string
		cidrs string
		err   string
	}{
		{[]string{"--bank", "production"}, "ip", "185.40.108.0/22", ""},
		{[]string{"--bank", "sandbox"}, "none", "", ""},
		{[]string{"--bank", "emulated"}, "signature", "", ""},
		{[]string{"--bank", "production", "--bank-callback-cidrs", "10.0.0.0/8, 192.0.2.7/32"}, "ip", "10.0.0.0/8 192.0.2.7/32", ""},
		{[]string{"--bank", "sandbox", "--bank-callback-auth", "ip"}, "", "", "--bank-callback-cidrs"},
		{[]string{"--bank", "sandbox", "--bank-callback-auth", "ip", "--bank-callback-cidrs", "nope"}, "", "", "not a CIDR"},
		{[]string{"--bank-callback-auth", "hmac"}, "", "", "use ip, signature, none or auto"},
	} {
		branding := map[string]string{"TPP_NAME": "Acme", "TPP_LEGAL_ENTITY": "Acme B.V.", "TPP_LICENCE": "DNB R1", "TPP_PRIVACY_URL": "https://acme.example/privacy"}
		c, err := parseTestConfig(t, branding, tc.args...)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: err %v, want %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		mode, cidrs, err := c.callbackAuth()
		var got []string
		for _, p := range cidrs {
			got = append(got, p.String())
		}
		if err != nil || mode != tc.mode || strings.Join(got, " ") != tc.cidrs {
			t.Errorf("%v: %s %v %v, want %s %s", tc.args, mode, got, err, tc.mode, tc.cidrs)
		}
	}
}
