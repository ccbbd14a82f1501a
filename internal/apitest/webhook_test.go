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
	"time"

	"github.com/bunqtpp/tpp"
)

// TestValidateWebhook sends webhook requests to a real receiver and checks
// what the receiver got against the document.
// consentEventData and paymentEventData are the data of the root
// package's ConsentEventData and PaymentEventData as they encode.
const (
	consentEventData = `{"consent_id":"con_4p2fzq7ksmw5x3c9ddn2h6yrta","user_ref":"user-4711","status":"active","previous_status":"pending"}`
	paymentEventData = `{"payment_id":"pay_1","consent_id":"con_1","kind":"draft","status":"executed","previous_status":"pending"}`
)

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
	// The shape tpp.WebhookPayload builds, from the root package's event data.
	consentEvent := `{"type":"consent.updated","timestamp":"2026-11-22T09:31:12.482913Z","sequence":1,"data":` + consentEventData + `}`
	paymentEvent := `{"type":"payment.updated","timestamp":"2026-11-22T10:16:40.118204Z","sequence":2,"data":` + paymentEventData + `}`

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
		{name: "missing webhook-id", body: consentEvent, header: map[string]string{"webhook-id": ""}, want: "missing webhook-id"},
		{name: "event id in the body", body: `{"id":"evt_1",` + consentEvent[1:], want: "WebhookEvent"},
		{name: "payment event with a rejection", body: strings.Replace(paymentEvent, `"previous_status":"pending"`, `"previous_status":"pending","error_code":"bank_rejected"`, 1)},
		{name: "payment event of unknown kind", body: strings.Replace(paymentEvent, `"kind":"draft"`, `"kind":"scheduled"`, 1), want: "WebhookEvent"},
		{name: "payment event without payment_id", body: strings.Replace(paymentEvent, `"payment_id":"pay_1",`, ``, 1), want: "WebhookEvent"},
		{name: "full resource as data", body: `{"type":"payment.updated","timestamp":"2026-11-22T10:16:40Z","sequence":3,"data":` + paymentJSON + `}`, want: "WebhookEvent"},
		{name: "unknown event type", body: strings.Replace(consentEvent, "consent.updated", "consent.deleted", 1), want: "WebhookEvent"},
		{name: "consent data under a payment event", body: strings.Replace(consentEvent, "consent.updated", "payment.updated", 1), want: "WebhookEvent"},
		{name: "created_at instead of timestamp",
			body: `{"type":"consent.updated","created_at":"2026-11-22T09:31:12Z","data":` + consentEventData + `}`, want: "WebhookEvent"},
		{name: "timestamp not RFC 3339", body: strings.Replace(consentEvent, "2026-11-22T09:31:12.482913Z", "1795341600", 1), want: "WebhookEvent"},
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

// TestRootPayloadsMatchDocument holds the document to what the root package
// actually sends: tpp.WebhookPayload with its event data types.
func TestRootPayloadsMatchDocument(t *testing.T) {
	t.Parallel()
	v := NewValidator(t)
	at := time.Date(2026, 11, 22, 10, 16, 40, 118204000, time.UTC)
	cases := []struct {
		name string
		typ  string
		data any
	}{
		{"consent activated", tpp.EventConsentUpdated, tpp.ConsentEventData{ConsentID: "con_1", UserRef: "u-1", Status: "active", PreviousStatus: "pending"}},
		{"consent rejected", tpp.EventConsentUpdated, tpp.ConsentEventData{ConsentID: "con_1", UserRef: "u-1", Status: "rejected", PreviousStatus: "pending", ErrorCode: "access_denied"}},
		{"payment executed", tpp.EventPaymentUpdated, tpp.PaymentEventData{PaymentID: "pay_1", ConsentID: "con_1", Kind: string(tpp.PaymentDraft), Status: "executed", PreviousStatus: "pending"}},
		{"single payment failed", tpp.EventPaymentUpdated, tpp.PaymentEventData{PaymentID: "pay_1", ConsentID: "con_1", Kind: string(tpp.PaymentSingle), Status: "failed", PreviousStatus: "pending", ErrorCode: "bank_unavailable"}},
		{"payment without previous status", tpp.EventPaymentUpdated, tpp.PaymentEventData{PaymentID: "pay_1", ConsentID: "con_1", Kind: string(tpp.PaymentDraft), Status: "pending"}},
	}
	for _, tc := range cases {
		body, err := tpp.WebhookPayload(tc.typ, 1, at, tc.data)
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		h.Set("Content-Type", "application/json")
		h.Set("webhook-id", "evt_1")
		h.Set("webhook-timestamp", "1795341600")
		sig, err := tpp.SignWebhook("whsec_"+base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")), "evt_1", at, body)
		if err != nil {
			t.Fatal(err)
		}
		h.Set("webhook-signature", sig)
		if err := v.ValidateWebhook(h, body); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
