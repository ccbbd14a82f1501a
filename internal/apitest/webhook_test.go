package apitest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestValidateWebhook sends webhook requests to a real receiver and checks
// what the receiver got against the document.
func TestValidateWebhook(t *testing.T) {
	t.Parallel()
	v := NewValidator(t)
	type received struct {
		header http.Header
		body   []byte
	}
	got := make(chan received, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- received{r.Header.Clone(), b}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	key := []byte("0123456789abcdef0123456789abcdef")
	sign := func(id, ts, body string) string {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(id + "." + ts + "." + body))
		return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	consentEvent := `{"id":"evt_1","type":"consent.updated","created_at":"2026-11-22T09:31:12Z","data":` + consentJSON + `}`
	paymentEvent := `{"id":"evt_1","type":"payment.updated","created_at":"2026-11-22T10:16:40Z","data":` + paymentJSON + `}`

	tests := []struct {
		name   string
		body   string
		header map[string]string // overrides of the signed defaults
		want   string            // substring of the error; empty = valid
	}{
		{name: "consent event", body: consentEvent},
		{name: "payment event", body: paymentEvent},
		{name: "two signatures while rotating", body: consentEvent,
			header: map[string]string{"webhook-signature": sign("evt_1", "1795341600", consentEvent) + " " + sign("evt_1", "1795341601", consentEvent)}},
		{name: "missing signature", body: consentEvent, header: map[string]string{"webhook-signature": ""}, want: "missing webhook-signature"},
		{name: "signature without version", body: consentEvent, header: map[string]string{"webhook-signature": "K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="}, want: "header webhook-signature"},
		{name: "timestamp in RFC 3339", body: consentEvent, header: map[string]string{"webhook-timestamp": "2026-11-22T09:31:12Z"}, want: "header webhook-timestamp"},
		{name: "event id differs from webhook-id", body: consentEvent, header: map[string]string{"webhook-id": "evt_2"}, want: "differs from webhook-id"},
		{name: "unknown event type", body: strings.Replace(consentEvent, "consent.updated", "consent.deleted", 1), want: "WebhookEvent"},
		{name: "consent data under a payment event", body: strings.Replace(consentEvent, "consent.updated", "payment.updated", 1), want: "WebhookEvent"},
		{name: "timestamp instead of created_at",
			body: `{"id":"evt_1","type":"consent.updated","timestamp":"2026-11-22T09:31:12Z","data":` + consentJSON + `}`, want: "WebhookEvent"},
	}
	for _, tc := range tests {
		req, err := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader([]byte(tc.body)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("webhook-id", "evt_1")
		req.Header.Set("webhook-timestamp", "1795341600")
		req.Header.Set("webhook-signature", sign("evt_1", "1795341600", tc.body))
		for k, val := range tc.header {
			if val == "" {
				req.Header.Del(k)
			} else {
				req.Header.Set(k, val)
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		r := <-got
		err = v.ValidateWebhook(r.header, r.body)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: valid webhook rejected: %v", tc.name, err)
		case tc.want != "" && err == nil:
			t.Errorf("%s: invalid webhook accepted", tc.name)
		case tc.want != "" && !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s: error does not mention %q: %v", tc.name, tc.want, err)
		}
	}
}
