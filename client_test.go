package tpp

import (
	"strings"
	"testing"
)

func TestValidateClientURL(t *testing.T) {
	t.Parallel()
	cases := []struct {
		url string
		ok  bool
	}{
		{"https://fintech.example/return", true},
		{"https://fintech.example:8443/a/b?x=1", true},
		{"http://localhost:3000/cb", true},
		{"http://127.0.0.1/cb", true},
		{"http://[::1]:8080/cb", true},
		{"http://fintech.example/cb", false},
		{"http://localhost.evil.example/cb", false},
		{"http://127.0.0.2/cb", false},
		{"https://fintech.example/cb#frag", false},
		{"https://fintech.example/cb#", false},
		{"https://user:pw@fintech.example/cb", false},
		{"/relative", false},
		{"fintech.example/cb", false},
		{"ftp://fintech.example/", false},
		{"javascript:alert(1)", false},
		{"https:///nohost", false},
		{"", false},
	}
	for _, tc := range cases {
		err := ValidateClientURL(tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateClientURL(%q) = %v, want ok=%v", tc.url, err, tc.ok)
		}
	}
}

func TestAllowsReturnURLExactMatch(t *testing.T) {
	t.Parallel()
	c := &FintechClient{ReturnURLs: []string{"https://a.example/cb"}}
	for u, want := range map[string]bool{
		"https://a.example/cb":       true,
		"https://a.example/cb/":      false,
		"https://a.example/cb?x=1":   false,
		"https://A.example/cb":       false,
		"https://a.example/cb/../cb": false,
	} {
		if got := c.AllowsReturnURL(u); got != want {
			t.Errorf("AllowsReturnURL(%q) = %v", u, got)
		}
	}
}

func TestAPIKeyFormat(t *testing.T) {
	t.Parallel()
	k := NewAPIKey()
	s := k.String()
	if !strings.HasPrefix(s, "tpp_") || strings.Count(s, "_") != 2 {
		t.Fatalf("key %q", s)
	}
	got, err := ParseAPIKey(s)
	if err != nil || got != k {
		t.Fatalf("ParseAPIKey = %+v, %v", got, err)
	}
	if len(k.Secret) < 52 { // 32 bytes of base32
		t.Fatalf("secret too short: %d", len(k.Secret))
	}
	if string(k.Hash()) == k.Secret || len(k.Hash()) != 32 {
		t.Fatal("hash is not SHA-256")
	}
	for _, bad := range []string{"", "tpp_", "tpp__", s[4:], "tpq_" + s[4:], s + "x", s[:len(s)-1] + "!", strings.ToUpper(s)} {
		if _, err := ParseAPIKey(bad); ErrorCode(err) != EUnauthorized {
			t.Errorf("ParseAPIKey(%q) = %v", bad, err)
		}
	}
	if NewAPIKey() == k {
		t.Fatal("two keys are equal")
	}
}

func TestNewWebhookSecret(t *testing.T) {
	t.Parallel()
	s := NewWebhookSecret()
	if !strings.HasPrefix(s, "whsec_") || len(s) != 6+44 || s == NewWebhookSecret() {
		t.Fatalf("secret %q", s)
	}
}

func TestNewClientRefusesInvisibleFormatting(t *testing.T) {
	for _, name := range []string{"Acme\u202E", "Ac\u200Dme", "\u2066Acme\u2069", "Acme\nBank"} {
		err := NewClient{Name: name, ReturnURLs: []string{"https://x.example/r"}}.Validate()
		if ErrorCode(err) != EInvalid {
			t.Errorf("%q: %v, want %s", name, err, EInvalid)
		}
	}
	if err := (NewClient{Name: "Acme Café", ReturnURLs: []string{"https://x.example/r"}}).Validate(); err != nil {
		t.Fatal(err)
	}
}

// Regression (issue 10 item 6): return URLs that a browser would follow
// somewhere other than where they seem to lead are refused at
// registration.
func TestReturnURLVariantsRefusedAtRegistration(t *testing.T) {
	t.Parallel()
	for _, u := range []string{
		"//evil.example/cb",                            // scheme-relative
		"https:evil.example/cb",                        // no authority
		"https:\\\\evil.example\\cb",                   // backslashes for slashes
		"https://fintech.example\\@evil.example/cb",    // backslash before userinfo
		"https://evil.example\\.fintech.example/cb",    // backslash in the host
		"https://fintech.example/cb\\..\\..\\x",        // backslash path walk
		"https://fintech.example%2F%2Fevil.example/cb", // encoded slashes in the host
		"https://fintech.example%2f@evil.example/cb",   // encoded slash before userinfo
		"https://fintech.example@evil.example/cb",      // userinfo
		"https://fintech.example/cb#@evil.example",     // fragment
		"https://fintech.example/cb ",                  // trailing space
		" https://fintech.example/cb",                  // leading space
		"https://fintech.example/c\tb",                 // tab
		"http://fintech.example/cb",                    // plain http off loopback
		"javascript://fintech.example/%0aalert(1)",     // not http(s)
		"https://fintech.example/cb\x00.evil.example",  // NUL
	} {
		err := (NewClient{Name: "Acme", ReturnURLs: []string{u}}).Validate()
		if ErrorCode(err) != EInvalidReturnURL {
			t.Errorf("return URL %q at registration: %v, want %s", u, err, EInvalidReturnURL)
		}
	}
}
