package tpp

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Webhook event types.
const (
	EventConsentUpdated = "consent.updated"
	EventPaymentUpdated = "payment.updated"
	// EventConsentExpiring warns ConsentExpiringNotice before an active
	// consent's re-authentication date, once per authorization period.
	EventConsentExpiring = "consent.expiring"
)

// ConsentExpiringNotice is how long before reauth_due_at the
// consent.expiring event is sent: time for the fintech to bring the user
// back before access stops.
const ConsentExpiringNotice = 7 * 24 * time.Hour

// WebhookEvent is a notification for a fintech client, stored in the
// outbox in the same transaction as the change it reports.
type WebhookEvent struct {
	ID        string // "evt_…", sent as the webhook-id header
	ClientID  string
	Type      string
	Payload   []byte // the exact JSON body that is signed and sent
	CreatedAt time.Time
}

// webhookBody is the Standard Webhooks payload shape, plus sequence.
type webhookBody struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	// Sequence numbers a client's events 1, 2, 3, … in the order they
	// were recorded. Deliveries are not ordered (a retried event arrives
	// after later ones): receivers order by sequence.
	Sequence int64 `json:"sequence"`
	Data     any   `json:"data"`
}

// WebhookPayload builds the JSON body of a client's event number seq.
func WebhookPayload(typ string, seq int64, at time.Time, data any) ([]byte, error) {
	return json.Marshal(webhookBody{Type: typ, Timestamp: at.UTC().Format(time.RFC3339Nano), Sequence: seq, Data: data})
}

// ConsentEventData is the data of a consent.updated event.
type ConsentEventData struct {
	ConsentID      string `json:"consent_id"`
	UserRef        string `json:"user_ref"`
	Status         string `json:"status"`
	PreviousStatus string `json:"previous_status"`
	ErrorCode      string `json:"error_code,omitempty"`
}

// ConsentExpiringData is the data of a consent.expiring event.
type ConsentExpiringData struct {
	ConsentID   string `json:"consent_id"`
	UserRef     string `json:"user_ref"`
	ReauthDueAt string `json:"reauth_due_at"` // RFC 3339
}

// PaymentEventData is the data of a payment.updated event.
type PaymentEventData struct {
	PaymentID      string `json:"payment_id"`
	ConsentID      string `json:"consent_id"`
	Kind           string `json:"kind"`
	Status         string `json:"status"`
	PreviousStatus string `json:"previous_status,omitempty"`
	ErrorCode      string `json:"error_code,omitempty"`
}

// WebhookDelivery is a claimed attempt to send an event.
type WebhookDelivery struct {
	Event      WebhookEvent
	URL        string // the client's webhook URL at claim time
	Attempt    int    // 1 for the first attempt
	LeaseToken string // proves the claim when marking the outcome
	LeaseUntil time.Time
}

// WebhookOutbox is the durable queue of webhook deliveries. Delivery is at
// least once: a worker that dies mid-send loses its lease and the delivery
// is claimed again.
type WebhookOutbox interface {
	// EnqueueEvent stores an event for a client outside any other change.
	EnqueueEvent(ctx context.Context, clientID, typ string, data any) (*WebhookEvent, error)
	// ClaimDeliveries leases up to limit due deliveries for lease; no other
	// worker gets them until the lease ends.
	ClaimDeliveries(ctx context.Context, limit int, lease time.Duration) ([]*WebhookDelivery, error)
	// MarkDelivered records success. It fails with EConflict when the lease
	// was lost (another worker owns the delivery now).
	MarkDelivered(ctx context.Context, eventID, leaseToken string) error
	// MarkFailed records a failed attempt and schedules the next one after
	// WebhookRetryDelay, or abandons the delivery after the last.
	MarkFailed(ctx context.Context, eventID, leaseToken, reason string) error
	// ScheduleRetry is MarkFailed with the caller's next attempt time (for
	// jitter or a receiver's Retry-After); the zero time abandons it.
	ScheduleRetry(ctx context.Context, eventID, leaseToken, reason string, next time.Time) error
	// Events lists a client's events, newest first.
	Events(ctx context.Context, clientID string, p PageRequest) (Page[*WebhookEvent], error)
}

// webhookRetryDelays is the delay before attempt n+2 after attempt n+1
// failed (the Standard Webhooks reference schedule). After the last, the
// delivery is abandoned.
var webhookRetryDelays = [...]time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

// WebhookRetryDelay returns how long to wait after failed attempt number
// attempt (1-based) and whether another attempt should be made at all.
func WebhookRetryDelay(attempt int) (time.Duration, bool) {
	if attempt < 1 || attempt > len(webhookRetryDelays) {
		return 0, false
	}
	return webhookRetryDelays[attempt-1], true
}

// SignWebhook returns the Standard Webhooks "webhook-signature" header value
// for a message: "v1," + base64(HMAC-SHA256(key, id.timestamp.payload)),
// where key is the base64 part of the "whsec_" secret.
func SignWebhook(secret, id string, ts time.Time, payload []byte) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) == 0 {
		return "", Errorf(EInternal, "webhook secret is malformed")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + strconv.FormatInt(ts.Unix(), 10) + "."))
	mac.Write(payload)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}
