package tpp

import (
	"encoding/json"
	"testing"
	"time"
)

// TestSignWebhook uses the test vector of the Standard Webhooks reference
// libraries.
func TestSignWebhook(t *testing.T) {
	t.Parallel()
	got, err := SignWebhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
		time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("signature = %s, want %s", got, want)
	}
	if _, err := SignWebhook("whsec_***", "id", time.Now(), nil); err == nil {
		t.Fatal("malformed secret accepted")
	}
}

func TestWebhookRetryDelay(t *testing.T) {
	t.Parallel()
	prev := time.Duration(0)
	n := 0
	for a := 1; ; a++ {
		d, ok := WebhookRetryDelay(a)
		if !ok {
			break
		}
		if d < prev {
			t.Fatalf("delay after attempt %d shrinks", a)
		}
		prev = d
		n++
	}
	if n != 7 {
		t.Fatalf("%d retries", n)
	}
	if _, ok := WebhookRetryDelay(0); ok {
		t.Fatal("attempt 0 has a delay")
	}
}

func TestWebhookPayload(t *testing.T) {
	t.Parallel()
	b, err := WebhookPayload(EventConsentUpdated, 7, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		ConsentEventData{ConsentID: "con_1", Status: "active", PreviousStatus: "pending"})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	if m["type"] != "consent.updated" || m["timestamp"] != "2026-01-02T03:04:05Z" || m["data"].(map[string]any)["consent_id"] != "con_1" || m["sequence"] != 7.0 {
		t.Fatalf("payload %s", b)
	}
}
