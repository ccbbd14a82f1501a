package logging

import (
	"bytes"
	"strings"
	"testing"
)

func TestRedaction(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, Options{})
	log.Info("token exchange",
		"url", "https://api-oauth.sandbox.bunq.com/v1/token?grant_type=authorization_code&code=c0de123&client_id=abc&client_secret=s3cr3t",
		"access_token", "at-very-secret",
		"X-Bunq-Client-Authentication", "sess-token-1",
		"path", "/oauth/callback?code=c0de456&state=st4te",
		"consent_id", "con_1",
	)
	out := buf.String()
	for _, secret := range []string{"c0de123", "s3cr3t", "at-very-secret", "sess-token-1", "c0de456", "st4te"} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains secret %q: %s", secret, out)
		}
	}
	for _, keep := range []string{"client_id=abc", "grant_type=authorization_code", "con_1", "/oauth/callback"} {
		if !strings.Contains(out, keep) {
			t.Errorf("log lost non-secret %q: %s", keep, out)
		}
	}
}

func TestRedactURLUnparseable(t *testing.T) {
	if got := RedactURL("http://[::1"); got != Redacted {
		t.Fatalf("RedactURL(bad) = %q, want %q", got, Redacted)
	}
}

// The error code attribute is what operators search for; the OAuth code is
// a secret wherever it appears.
func TestErrorCodeIsLoggedOAuthCodeIsNot(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, Options{})
	log.Info("request refused", "code", "invalid_iban", "auth_code", "c0de789", "authorization_code", "c0de790",
		"url", "https://tpp.example/oauth/callback?code=c0de791&state=s")
	out := buf.String()
	if !strings.Contains(out, `"code":"invalid_iban"`) {
		t.Errorf("error code redacted: %s", out)
	}
	for _, secret := range []string{"c0de789", "c0de790", "c0de791"} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains OAuth code %q: %s", secret, out)
		}
	}
}
