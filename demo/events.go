package demo

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/bunqtpp/tpp/webhook"
)

// Event is one verified webhook the TPP sent to the demo.
type Event struct {
	ID         string    // the webhook-id header
	Type       string    // consent.updated, consent.expiring or payment.updated
	Timestamp  string    // when the change happened, from the body
	ReceivedAt time.Time // when the demo received it
	Data       EventData
}

// EventData is the summary of the change a webhook reports.
type EventData struct {
	ConsentID      string `json:"consent_id"`
	PaymentID      string `json:"payment_id"`
	UserRef        string `json:"user_ref"`
	Kind           string `json:"kind"`
	Status         string `json:"status"`
	PreviousStatus string `json:"previous_status"`
	ErrorCode      string `json:"error_code"`
}

// maxEvents bounds the events kept in memory; the oldest go first.
const maxEvents = 100

// events keeps the recent webhooks, newest last, deduplicated by id:
// delivery is at least once, so the same event may arrive twice.
type events struct {
	mu   sync.Mutex
	list []Event
}

func (e *events) add(ev Event) (added bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, old := range e.list {
		if old.ID == ev.ID {
			return false
		}
	}
	e.list = append(e.list, ev)
	if len(e.list) > maxEvents {
		e.list = append([]Event(nil), e.list[len(e.list)-maxEvents:]...)
	}
	return true
}

// forConsents returns the events about any of the consents, newest first.
func (e *events) forConsents(ids map[string]bool, limit int) []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Event
	for i := len(e.list) - 1; i >= 0 && len(out) < limit; i-- {
		if ids[e.list[i].Data.ConsentID] {
			out = append(out, e.list[i])
		}
	}
	return out
}

// receiveWebhook verifies a webhook with the client's secret before it
// trusts a byte of it, then stores it. Only the signature proves the TPP
// sent it: the endpoint is public.
func (a *App) receiveWebhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	if err := webhook.Verify(a.cfg.WebhookSecret, r.Header, body, a.now(), 0); err != nil {
		a.log.Warn("demo: refused a webhook", "err", err)
		status := http.StatusBadRequest
		if errors.Is(err, webhook.ErrNoMatchingSignature) {
			status = http.StatusUnauthorized
		}
		http.Error(w, "webhook not verified", status)
		return
	}
	var in struct {
		Type      string    `json:"type"`
		Timestamp string    `json:"timestamp"`
		Data      EventData `json:"data"`
	}
	if err := json.Unmarshal(body, &in); err != nil || in.Type == "" {
		http.Error(w, "body is not a webhook event", http.StatusBadRequest)
		return
	}
	ev := Event{ID: r.Header.Get(webhook.HeaderID), Type: in.Type, Timestamp: in.Timestamp, ReceivedAt: a.now(), Data: in.Data}
	if a.events.add(ev) {
		a.log.Info("demo: webhook received", "type", ev.Type, "webhook_id", ev.ID)
	}
	w.WriteHeader(http.StatusNoContent)
}
