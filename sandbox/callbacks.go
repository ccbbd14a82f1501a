package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Callbacks: bunq POSTs {"NotificationUrl": {...}} to the URLs of matching
// notification filters. bunq documents no signature on callbacks (they come
// from known IP ranges), so they are unsigned unless Config.SignCallbacks or
// PUT /_sandbox/callback-signing turns signing on. A failed delivery is
// retried 5 more times one minute apart (6 tries in all, bunq's callback
// page), on the emulator's clock: tests move it with POST /_sandbox/clock.

const (
	callbackAttempts = 6
	callbackInterval = time.Minute
	// callbackPoll is how often a waiting retry looks at a clock that is not
	// moved through the control endpoint (Config.Clock set by a test).
	callbackPoll = 200 * time.Millisecond
)

// callbackRecord is one delivery attempt, as GET /_sandbox/callbacks shows it.
type callbackRecord struct {
	URL       string `json:"url"`
	Category  string `json:"category"`
	EventType string `json:"event_type"`
	Status    int    `json:"status"`
	Attempt   int    `json:"attempt"`
	Body      string `json:"body"`
}

// targetsLocked collects the distinct URLs of category filters for the
// given session-user ids and accounts.
func (b *Bank) targetsLocked(category string, userIDs []int64, accounts []*account) []string {
	seen := map[string]bool{}
	var out []string
	add := func(fs []notifFilter) {
		for _, f := range fs {
			if f.Category == category && !seen[f.Target] {
				seen[f.Target] = true
				out = append(out, f.Target)
			}
		}
	}
	for _, a := range accounts {
		if a != nil {
			add(a.notif)
		}
	}
	for _, id := range userIDs {
		add(b.st.notif[id])
	}
	return out
}

func (b *Bank) notifyDraftLocked(d *draftPayment, event string) {
	a := b.st.accounts[d.accountID]
	// bunq's filters are per user and per monetary account: the account's
	// holders, the account and the creating user (the grant's UserApiKey)
	// hear of it; the PSP's own user-level filter does not.
	ids := append([]int64{a.ownerID}, a.coOwners...)
	if g := b.st.grants[d.grantID]; g != nil {
		ids = append(ids, g.id)
	}
	b.sendLocked("DRAFT_PAYMENT", event, obj{"DraftPayment": b.st.renderDraft(d)}, b.targetsLocked("DRAFT_PAYMENT", ids, []*account{a}))
}

func (b *Bank) notifyPSPDraftLocked(d *pspDraft, event string) {
	b.sendLocked("DRAFT_PAYMENT", event, obj{"PaymentServiceProviderDraftPayment": b.st.renderPSPDraft(d)},
		b.targetsLocked("DRAFT_PAYMENT", []int64{d.pspID}, []*account{b.st.accountByIBAN(d.senderIBAN)}))
}

func (b *Bank) notifyGrantLocked(g *grant) {
	b.sendLocked("OAUTH", "OAUTH_AUTHORIZATION_REVOKED", obj{"UserApiKey": b.st.renderGrant(g)},
		b.targetsLocked("OAUTH", []int64{g.pspID, g.id}, nil))
}

func (b *Bank) sendLocked(category, event string, object obj, urls []string) {
	if b.ctx.Err() != nil {
		return // closed: no new deliveries
	}
	for _, u := range urls {
		body, err := json.Marshal(obj{"NotificationUrl": obj{
			"target_url": u, "category": category, "event_type": event, "object": object,
		}})
		if err != nil {
			continue
		}
		b.wg.Add(1)
		go b.deliver(u, category, event, body)
	}
}

func (b *Bank) deliver(target, category, event string, body []byte) {
	defer b.wg.Done()
	b.mu.Lock()
	sig := ""
	if b.signCB {
		sig = signBody(b.key, body)
	}
	b.mu.Unlock()
	for attempt := 1; attempt <= callbackAttempts; attempt++ {
		status := b.post(target, body, sig)
		b.mu.Lock()
		b.deliveries = append(b.deliveries, callbackRecord{URL: target, Category: category, EventType: event, Status: status, Attempt: attempt, Body: string(body)})
		due := b.now().Add(callbackInterval)
		b.mu.Unlock()
		if status/100 == 2 {
			return
		}
		if attempt < callbackAttempts && !b.waitUntil(due) {
			return
		}
	}
	b.log.Warn("sandbox: callback given up", "category", category, "event", event, "attempts", callbackAttempts)
}

// waitUntil waits until the emulator's clock reaches due; false when the
// bank closes first.
func (b *Bank) waitUntil(due time.Time) bool {
	for {
		b.mu.Lock()
		now, moved := b.now(), b.clockMoved
		b.mu.Unlock()
		if !now.Before(due) {
			return true
		}
		wait := min(due.Sub(now), callbackPoll)
		t := time.NewTimer(wait)
		select {
		case <-b.ctx.Done():
			t.Stop()
			return false
		case <-moved:
		case <-t.C:
		}
		t.Stop()
	}
}

// post sends one attempt and returns the HTTP status, 0 on a network error.
func (b *Bank) post(target string, body []byte, sig string) int {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "bunq-sandbox-emulator")
	if sig != "" {
		req.Header.Set("X-Bunq-Server-Signature", sig)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
