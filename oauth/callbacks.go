package oauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/bankctx"
)

// Notification is one bunq notification callback (a NotificationUrl).
type Notification struct {
	Category   string // e.g. OAUTH, DRAFT_PAYMENT, PAYMENT
	EventType  string
	TargetURL  string
	ObjectType string          // the single key of "object", e.g. DraftPayment
	Object     json.RawMessage // the object itself
}

// Callbacks lets other packages handle the notification categories they
// own. OAUTH is handled here.
type Callbacks struct {
	// OnDraftPayment receives DRAFT_PAYMENT notifications (pisp). An error
	// makes the endpoint answer 500 so that bunq retries.
	OnDraftPayment func(ctx context.Context, n Notification) error
	// OnContinue runs as the user continues from our consent page to the
	// bank, before a state is made; an error stops the trip with an error
	// page. pisp makes a single payment's PSP draft here: bunq shows every
	// pending PSP draft on its page, so none may exist before its flow.
	OnContinue func(ctx context.Context, c *tpp.Consent) error
	// AfterBank runs after every trip back from the bank that this browser
	// started, whatever its outcome, before the browser is sent on. pisp
	// settles the PSP drafts bunq's page decided (all of them, not only
	// this consent's).
	AfterBank func(ctx context.Context, consentID, requestID string)
}

// MaxCallbackBytes caps a notification body; bunq's are a few KiB.
const MaxCallbackBytes = 64 << 10

// ErrBadNotification is a body that is not a notification.
var ErrBadNotification = errors.New("oauth: not a bunq notification")

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

// HandleNotification acts on a bank notification. OAUTH is only a hint
// that a grant was withdrawn: every consent it may concern is re-checked
// with the bank, and only those the bank refuses become revoked. Unknown
// categories are ignored.
func (s *Service) HandleNotification(ctx context.Context, n Notification, requestID string) error {
	switch n.Category {
	case "OAUTH":
		return s.checkGrants(ctx, n, requestID)
	case "DRAFT_PAYMENT":
		if s.hooks.OnDraftPayment != nil {
			return s.hooks.OnDraftPayment(ctx, n)
		}
	}
	return nil
}

// maxChecks bounds the bank calls one callback may cause.
const maxChecks = 20

// ActiveConsentLister lists the oldest-checked active consents of the TPP
// (sqlite.ConsentService). When the consent store has it, an OAUTH callback
// that names no bunq user falls back to re-checking up to maxChecks of them
// (bunq does not document the revocation payload).
type ActiveConsentLister interface {
	ActiveConsents(ctx context.Context, limit int) ([]*tpp.Consent, error)
}

func (s *Service) checkGrants(ctx context.Context, n Notification, requestID string) error {
	ids := grantUserIDs(n.Object)
	if len(ids) == 0 {
		return s.checkAllGrants(ctx, requestID)
	}
	checked := 0
	for _, uid := range ids {
		cs, err := s.consents.ConsentsByBunqUser(ctx, uid)
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
			if err := s.rechecks.take(uid); err != nil {
				return err
			}
			if err := s.recheck(ctx, c, requestID); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkAllGrants is the fallback for an OAUTH callback without a user id:
// a bounded re-check of the TPP's active consents, under the overall limit.
func (s *Service) checkAllGrants(ctx context.Context, requestID string) error {
	lister, ok := s.consents.(ActiveConsentLister)
	if !ok {
		s.log.WarnContext(ctx, "OAUTH callback names no bunq user and the store cannot list active consents: ignored")
		return nil
	}
	cs, err := lister.ActiveConsents(ctx, maxChecks)
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "OAUTH callback names no bunq user: re-checking active consents", "consents", len(cs))
	for _, c := range cs {
		if err := s.rechecks.take(0); err != nil {
			return err
		}
		if err := s.recheck(ctx, c, requestID); err != nil {
			return err
		}
	}
	return nil
}

// recheck revokes c if the bank no longer accepts its grant.
func (s *Service) recheck(ctx context.Context, c *tpp.Consent, requestID string) error {
	err := s.bank.Verify(ctx, c)
	if err == nil {
		s.log.InfoContext(ctx, "OAUTH callback: grant still valid", "consent_id", c.ID)
		return nil
	}
	if !errors.Is(err, bankctx.ErrGrantRevoked) {
		return fmt.Errorf("oauth: re-check consent %s with the bank: %w", c.ID, err)
	}
	_, terr := s.consents.TransitionConsent(ctx, tpp.ConsentTransition{
		ID: c.ID, From: c.Status, To: tpp.ConsentRevoked, Actor: tpp.ActorBank, RequestID: requestID,
		Detail: "grant withdrawn at bunq (OAUTH callback, confirmed with the bank)",
	})
	if terr != nil && tpp.ErrorCode(terr) != tpp.EConflict {
		return terr
	}
	if err := s.bank.Purge(ctx, c.ID); err != nil {
		return err
	}
	if terr == nil {
		s.log.InfoContext(ctx, "OAUTH callback: consent revoked by the bank", "consent_id", c.ID)
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
