package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/webhook"
)

// The test vector published with the Standard Webhooks reference libraries
// (libraries/*/ tests in github.com/standard-webhooks/standard-webhooks).
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorPayload   = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignMatchesSpecVector(t *testing.T) {
	t.Parallel()
	got, err := webhook.Sign(vectorSecret, vectorID, time.Unix(vectorTimestamp, 0), []byte(vectorPayload))
	if err != nil {
		t.Fatal(err)
	}
	if got != vectorSignature {
		t.Fatalf("Sign = %s, want the spec's %s", got, vectorSignature)
	}
	// The prefix is optional on input, as in the reference libraries.
	got2, err := webhook.Sign(strings.TrimPrefix(vectorSecret, "whsec_"), vectorID, time.Unix(vectorTimestamp, 0), []byte(vectorPayload))
	if err != nil || got2 != vectorSignature {
		t.Fatalf("Sign without prefix = %q, %v", got2, err)
	}
}

// independentSign is written from the spec's prose, not from Sign.
func independentSign(secret, id string, ts int64, body string) string {
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%d.%s", id, ts, body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func TestSignAgreesWithIndependentAndRootImplementations(t *testing.T) {
	t.Parallel()
	secret, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(1_800_000_000, 0)
	body := `{"type":"payment.updated","data":{"payment_id":"pay_1","status":"executed"}}`
	got, err := webhook.Sign(secret, "evt_abc", ts, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if want := independentSign(secret, "evt_abc", ts.Unix(), body); got != want {
		t.Fatalf("Sign = %s, independent = %s", got, want)
	}
	root, err := tpp.SignWebhook(secret, "evt_abc", ts, []byte(body))
	if err != nil || root != got {
		t.Fatalf("tpp.SignWebhook = %q, %v; webhook.Sign = %q", root, err, got)
	}
	// The root package's secrets parse here.
	if _, err := webhook.ParseSecret(tpp.NewWebhookSecret()); err != nil {
		t.Fatalf("ParseSecret(tpp.NewWebhookSecret()): %v", err)
	}
}

func signedHeaders(t *testing.T, secrets []string, id string, ts time.Time, body string) http.Header {
	t.Helper()
	sig, err := webhook.SignatureHeader(secrets, id, ts, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(webhook.HeaderID, id)
	h.Set(webhook.HeaderTimestamp, fmt.Sprint(ts.Unix()))
	h.Set(webhook.HeaderSignature, sig)
	return h
}

func TestVerify(t *testing.T) {
	t.Parallel()
	secret, _ := webhook.NewSecret()
	other, _ := webhook.NewSecret()
	now := time.Unix(1_800_000_000, 0)
	body := `{"type":"consent.updated"}`

	cases := []struct {
		name    string
		secret  string
		headers func() http.Header
		body    string
		now     time.Time
		want    error
	}{
		{"valid", secret, func() http.Header { return signedHeaders(t, []string{secret}, "evt_1", now, body) }, body, now, nil},
		{"tampered body", secret, func() http.Header { return signedHeaders(t, []string{secret}, "evt_1", now, body) },
			`{"type":"consent.updated "}`, now, webhook.ErrNoMatchingSignature},
		{"wrong secret", other, func() http.Header { return signedHeaders(t, []string{secret}, "evt_1", now, body) }, body, now, webhook.ErrNoMatchingSignature},
		{"tampered id", secret, func() http.Header {
			h := signedHeaders(t, []string{secret}, "evt_1", now, body)
			h.Set(webhook.HeaderID, "evt_2")
			return h
		}, body, now, webhook.ErrNoMatchingSignature},
		{"tampered timestamp", secret, func() http.Header {
			h := signedHeaders(t, []string{secret}, "evt_1", now, body)
			h.Set(webhook.HeaderTimestamp, fmt.Sprint(now.Unix()+1))
			return h
		}, body, now, webhook.ErrNoMatchingSignature},
		{"old timestamp", secret, func() http.Header {
			return signedHeaders(t, []string{secret}, "evt_1", now.Add(-5*time.Minute-time.Second), body)
		}, body, now, webhook.ErrTimestampTooOld},
		{"future timestamp", secret, func() http.Header {
			return signedHeaders(t, []string{secret}, "evt_1", now.Add(5*time.Minute+time.Second), body)
		}, body, now, webhook.ErrTimestampTooNew},
		{"edge of tolerance", secret, func() http.Header {
			return signedHeaders(t, []string{secret}, "evt_1", now.Add(-5*time.Minute), body)
		}, body, now, nil},
		{"rotation: old and new secret both sign", other, func() http.Header {
			return signedHeaders(t, []string{secret, other}, "evt_1", now, body)
		}, body, now, nil},
		{"several signatures, one valid among garbage", secret, func() http.Header {
			h := signedHeaders(t, []string{secret}, "evt_1", now, body)
			h.Set(webhook.HeaderSignature, "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v1a,xyz v1,!!! "+h.Get(webhook.HeaderSignature))
			return h
		}, body, now, nil},
		{"v1a only", secret, func() http.Header {
			h := signedHeaders(t, []string{secret}, "evt_1", now, body)
			h.Set(webhook.HeaderSignature, strings.Replace(h.Get(webhook.HeaderSignature), "v1,", "v1a,", 1))
			return h
		}, body, now, webhook.ErrNoMatchingSignature},
		{"missing signature", secret, func() http.Header {
			h := signedHeaders(t, []string{secret}, "evt_1", now, body)
			h.Del(webhook.HeaderSignature)
			return h
		}, body, now, webhook.ErrMissingHeaders},
		{"missing id", secret, func() http.Header {
			h := signedHeaders(t, []string{secret}, "evt_1", now, body)
			h.Del(webhook.HeaderID)
			return h
		}, body, now, webhook.ErrMissingHeaders},
		{"non-canonical timestamp", secret, func() http.Header {
			h := signedHeaders(t, []string{secret}, "evt_1", now, body)
			h.Set(webhook.HeaderTimestamp, "+"+h.Get(webhook.HeaderTimestamp))
			return h
		}, body, now, webhook.ErrInvalidHeaders},
		{"malformed secret", "whsec_short", func() http.Header { return signedHeaders(t, []string{secret}, "evt_1", now, body) }, body, now, webhook.ErrInvalidSecret},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := webhook.Verify(tc.secret, tc.headers(), []byte(tc.body), tc.now, 0)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestVerifyTolerance(t *testing.T) {
	t.Parallel()
	secret, _ := webhook.NewSecret()
	now := time.Unix(1_800_000_000, 0)
	h := signedHeaders(t, []string{secret}, "evt_1", now.Add(-time.Minute), "{}")
	if err := webhook.Verify(secret, h, []byte("{}"), now, 30*time.Second); !errors.Is(err, webhook.ErrTimestampTooOld) {
		t.Fatalf("30s tolerance, 1 min old: %v", err)
	}
	if err := webhook.Verify(secret, h, []byte("{}"), now, 2*time.Minute); err != nil {
		t.Fatalf("2 min tolerance, 1 min old: %v", err)
	}
}

func TestSignRejectsBadInput(t *testing.T) {
	t.Parallel()
	secret, _ := webhook.NewSecret()
	for _, id := range []string{"", "evt.1", "evt 1"} {
		if _, err := webhook.Sign(secret, id, time.Now(), nil); !errors.Is(err, webhook.ErrInvalidHeaders) {
			t.Errorf("Sign(id %q) = %v, want ErrInvalidHeaders", id, err)
		}
	}
	short := "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 16))
	for _, s := range []string{"", "whsec_", "whsec_not base64!", short} {
		if _, err := webhook.Sign(s, "evt_1", time.Now(), nil); !errors.Is(err, webhook.ErrInvalidSecret) {
			t.Errorf("Sign(secret %q) = %v, want ErrInvalidSecret", s, err)
		}
	}
	if _, err := webhook.SignatureHeader(nil, "evt_1", time.Now(), nil); !errors.Is(err, webhook.ErrInvalidSecret) {
		t.Errorf("SignatureHeader(no secrets) = %v", err)
	}
}

func TestSecretErrorsDoNotLeakTheSecret(t *testing.T) {
	t.Parallel()
	s := "whsec_c2VjcmV0LXNlY3JldA" // bad padding, and too short
	_, err := webhook.ParseSecret(s)
	if err == nil || strings.Contains(err.Error(), "c2VjcmV0") {
		t.Fatalf("ParseSecret error %v quotes the secret", err)
	}
}
