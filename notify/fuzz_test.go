package notify

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzParseNotification: a bank callback body is either refused with
// ErrBadNotification or parsed into a notification that re-encodes to
// the same one; the user ids found in its object are positive and
// distinct (each names a consent owner to re-check, never a float).
func FuzzParseNotification(f *testing.F) {
	for _, s := range []string{
		`{"NotificationUrl":{"target_url":"https://tpp.example/callbacks/bunq","category":"OAUTH","event_type":"OAUTH_REVOKED","object":{"UserApiKey":{"id":7,"granted_by_user":{"UserPerson":{"id":1234}}}}}}`,
		`{"NotificationUrl":{"category":"DRAFT_PAYMENT","event_type":"DRAFT_PAYMENT_UPDATED","object":{"DraftPayment":{"id":99,"user_id":1234,"status":"ACCEPTED","entries":[{"amount":{"value":"12.50","currency":"EUR"}}]}}}}`,
		`{"NotificationUrl":{"category":"PAYMENT","object":{"A":{},"B":{}}}}`,
		`{"NotificationUrl":{"category":"","object":{}}}`,
		`{"NotificationUrl":null}`,
		`{"NotificationUrl":{"category":"OAUTH","object":{"UserApiKey":{"granted_by_user_id":1e30,"user_id":-4}}}}`,
		`{"NotificationUrl":{"category":"OAUTH","object":{"X":{"user_id":"12"}}}}`,
		`{}`, `[]`, ``, `{"NotificationUrl":{"category":"OAUTH"}} trailing`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := ParseNotification(body)
		if err != nil {
			if !errors.Is(err, ErrBadNotification) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if n.Category == "" {
			t.Fatal("a notification without a category was accepted")
		}
		if (n.ObjectType == "") != (n.Object == nil) && n.ObjectType != "" {
			t.Fatalf("object type %q without an object", n.ObjectType)
		}
		// Round trip through the wire shape.
		wire := map[string]any{"NotificationUrl": map[string]any{
			"target_url": n.TargetURL, "category": n.Category, "event_type": n.EventType,
			"object": objectOf(n),
		}}
		b, err := json.Marshal(wire)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, err := ParseNotification(b)
		if err != nil || again.Category != n.Category || again.EventType != n.EventType ||
			again.TargetURL != n.TargetURL || again.ObjectType != n.ObjectType {
			t.Fatalf("%+v re-parsed as %+v, %v", n, again, err)
		}
		ids := grantUserIDs(n.Object)
		seen := map[int64]bool{}
		for _, id := range ids {
			if id <= 0 || seen[id] {
				t.Fatalf("user ids %v: not positive or repeated", ids)
			}
			seen[id] = true
		}
	})
}

func objectOf(n Notification) map[string]json.RawMessage {
	if n.ObjectType == "" && n.Object == nil {
		return map[string]json.RawMessage{}
	}
	return map[string]json.RawMessage{n.ObjectType: n.Object}
}
