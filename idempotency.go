package tpp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// IdempotencyTTL is how long a key is remembered.
const IdempotencyTTL = 24 * time.Hour

// IdempotencyClaimTimeout is how long an in-flight key whose request has
// recorded no payment keeps its claim. The payment is stored within the
// request's work (bounded to a minute) before anything reaches the bank, so
// a claim this old without one belongs to a process that died between the
// claim and the insert: nothing was sent, and a retry takes the key over
// instead of waiting 24 hours.
const IdempotencyClaimTimeout = 2 * time.Minute

// IdempotencyState is the state of an idempotency record.
type IdempotencyState string

// Idempotency states.
const (
	// IdempotencyInFlight: the first request with the key is running (or
	// died after it may have reached the bank). Repeats get
	// EIdempotencyInFlight until it completes, is released or expires:
	// failing closed is safer than paying twice.
	IdempotencyInFlight IdempotencyState = "in_flight"
	// IdempotencyDone: the response is stored and is replayed.
	IdempotencyDone IdempotencyState = "done"
)

// IdempotencyRecord remembers one Idempotency-Key of one client.
type IdempotencyRecord struct {
	ClientID       string
	Key            string
	Fingerprint    string
	State          IdempotencyState
	ResponseStatus int
	ResponseBody   []byte
	CreatedAt      time.Time
	ExpiresAt      time.Time
}

// IdempotencyStore keeps idempotency records.
type IdempotencyStore interface {
	// BeginIdempotent claims (clientID, key) for a request with the given
	// fingerprint. It returns the new in-flight record and true when the
	// caller must do the work; the stored done record and false when the
	// caller must replay it. A key used with another fingerprint fails with
	// EIdempotencyKeyReused, a key still in flight with EIdempotencyInFlight.
	// An expired record counts as absent.
	BeginIdempotent(ctx context.Context, clientID, key, fingerprint string) (*IdempotencyRecord, bool, error)
	// CompleteIdempotent stores the response of an in-flight record.
	CompleteIdempotent(ctx context.Context, clientID, key string, status int, body []byte) error
	// ReleaseIdempotent forgets an in-flight record whose request failed
	// without any effect, so the key can be retried.
	ReleaseIdempotent(ctx context.Context, clientID, key string) error
	// PurgeIdempotency deletes records expired before now.
	PurgeIdempotency(ctx context.Context, now time.Time) (int64, error)
}

// ValidIdempotencyKey reports whether key is acceptable: 1 to 255 visible
// ASCII characters.
func ValidIdempotencyKey(key string) bool {
	if key == "" || len(key) > 255 {
		return false
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x21 || key[i] > 0x7e {
			return false
		}
	}
	return true
}

// RequestFingerprint returns the hex SHA-256 of method, path and the body in
// canonical form. A JSON body is re-encoded with sorted keys and no
// insignificant space (numbers keep their literal spelling, never passing
// through a float), so formatting alone does not make a request different.
// A body that is not JSON is hashed as is.
func RequestFingerprint(method, path string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(method))
	h.Write([]byte{0})
	h.Write([]byte(path))
	h.Write([]byte{0})
	h.Write(canonicalJSON(body))
	return hex.EncodeToString(h.Sum(nil))
}

func canonicalJSON(body []byte) []byte {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return body
	}
	out, err := json.Marshal(v)
	if err != nil {
		return body
	}
	return out
}
