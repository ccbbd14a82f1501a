// Package notify receives bunq's notification callbacks (POST
// /bank/callbacks) and hands each category to the service that owns it:
// OAUTH revocations to the consents (package oauth re-checks each grant
// with the bank), DRAFT_PAYMENT to the payments (package pisp). Callbacks
// are authenticated by source range or signature (auth.go), and every one
// is only a hint that is re-checked at the bank at a bounded rate.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"

	"github.com/bunqtpp/tpp"
)

// Notification is one bunq notification callback (a NotificationUrl).
type Notification struct {
	Category   string // e.g. OAUTH, DRAFT_PAYMENT, PAYMENT
	EventType  string
	TargetURL  string
	ObjectType string          // the single key of "object", e.g. DraftPayment
	Object     json.RawMessage // the object itself
}

// MaxCallbackBytes caps a notification body; bunq's are a few KiB.
const MaxCallbackBytes = 64 << 10

// ErrBadNotification is a body that is not a notification.
var ErrBadNotification = errors.New("notify: not a bunq notification")

// ParseNotification decodes {"NotificationUrl": {...}}.
func ParseNotification(body []byte) (Notification, error) {
	var env struct {
		NotificationURL *struct {
			TargetURL string                     `json:"target_url"`
			Category  string                     `json:"category"`
			EventType string                     `json:"event_type"`
			Object    map[string]json.RawMessage `json:"object"`
		} `json:"NotificationUrl"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // no floats, even for amounts inside objects
	if err := dec.Decode(&env); err != nil || env.NotificationURL == nil || env.NotificationURL.Category == "" {
		return Notification{}, ErrBadNotification
	}
	n := Notification{Category: env.NotificationURL.Category, EventType: env.NotificationURL.EventType, TargetURL: env.NotificationURL.TargetURL}
	if len(env.NotificationURL.Object) == 1 {
		for k, v := range env.NotificationURL.Object {
			n.ObjectType, n.Object = k, v
		}
	}
	return n, nil
}

// Handle acts on a bank notification. OAUTH is only a hint that a grant
// was withdrawn: every consent it may concern is re-checked with the bank
// (Grants), and only those the bank refuses become revoked. DRAFT_PAYMENT
// goes to Drafts. Unknown categories are ignored.
func (h *Handler) Handle(ctx context.Context, n Notification, requestID string) error {
	switch n.Category {
	case "OAUTH":
		return h.checkGrants(ctx, n, requestID)
	case "DRAFT_PAYMENT":
		if h.drafts != nil {
			return h.drafts.OnDraftPayment(ctx, n.ObjectType, n.Object, requestID)
		}
	}
	return nil
}

// maxChecks bounds the bank calls one callback may cause.
const maxChecks = 20

// ActiveConsentLister lists the oldest-checked active consents of the TPP
// (*sqlite.ConsentService). When the consent store has it, an OAUTH callback
// that names no bunq user falls back to re-checking up to maxChecks of them
// (bunq does not document the revocation payload).
type ActiveConsentLister interface {
	ActiveConsents(ctx context.Context, limit int) ([]*tpp.Consent, error)
}

func (h *Handler) checkGrants(ctx context.Context, n Notification, requestID string) error {
	ids := grantUserIDs(n.Object)
	if len(ids) == 0 {
		return h.checkAllGrants(ctx, requestID)
	}
	checked := 0
	for _, uid := range ids {
		cs, err := h.consents.ConsentsByBunqUser(ctx, uid)
		if err != nil {
			return err
		}
		for _, c := range cs {
			// Only active consents hold a usable grant; the others cannot
			// act at the bank whatever it says.
			if c.Status != tpp.ConsentActive {
				continue
			}
			if checked >= maxChecks {
				return nil
			}
			checked++
			if err := h.rechecks.take(uid); err != nil {
				return err
			}
			if err := h.grants.RecheckGrant(ctx, c, requestID); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkAllGrants is the fallback for an OAUTH callback without a user id:
// a bounded re-check of the TPP's active consents, under the overall limit.
func (h *Handler) checkAllGrants(ctx context.Context, requestID string) error {
	lister, ok := h.consents.(ActiveConsentLister)
	if !ok {
		h.log.WarnContext(ctx, "OAUTH callback names no bunq user and the store cannot list active consents: ignored")
		return nil
	}
	cs, err := lister.ActiveConsents(ctx, maxChecks)
	if err != nil {
		return err
	}
	h.log.InfoContext(ctx, "OAUTH callback names no bunq user: re-checking active consents", "consents", len(cs))
	for _, c := range cs {
		if err := h.rechecks.take(0); err != nil {
			return err
		}
		if err := h.grants.RecheckGrant(ctx, c, requestID); err != nil {
			return err
		}
	}
	return nil
}

// grantUserIDs finds the bunq user ids a notification object names: the
// granting user of a UserApiKey-like object, else the object's own user
// fields. Numbers are read as json.Number: nothing becomes a float.
func grantUserIDs(obj json.RawMessage) []int64 {
	if len(obj) == 0 {
		return nil
	}
	var o map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(obj))
	dec.UseNumber()
	if dec.Decode(&o) != nil {
		return nil
	}
	var out []int64
	add := func(raw json.RawMessage) {
		var n json.Number
		if json.Unmarshal(raw, &n) == nil {
			if v, err := n.Int64(); err == nil && v > 0 {
				for _, x := range out {
					if x == v {
						return
					}
				}
				out = append(out, v)
			}
		}
	}
	if g, ok := o["granted_by_user"]; ok {
		var anchored map[string]map[string]json.RawMessage
		if json.Unmarshal(g, &anchored) == nil {
			for _, u := range anchored {
				add(u["id"])
			}
		}
	}
	for _, k := range []string{"user_id", "granted_by_user_id"} {
		if v, ok := o[k]; ok {
			add(v)
		}
	}
	return out
}
