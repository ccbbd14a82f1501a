package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of Standard Webhooks. Go canonicalizes them on the wire
// (Webhook-Id); HTTP header names are case-insensitive.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix marks a symmetric Standard Webhooks secret.
const SecretPrefix = "whsec_"

// DefaultTolerance is how far a webhook-timestamp may be from the receiver's
// clock, either way, before Verify rejects it as a possible replay.
const DefaultTolerance = 5 * time.Minute

// Key sizes allowed by the spec for HMAC secrets: at least 192 bits, at most 512.
const (
	minKeyBytes = 24
	maxKeyBytes = 64
)

// signatureVersion is the Standard Webhooks identifier of HMAC-SHA256 signatures.
const signatureVersion = "v1"

// Errors returned by Verify and Sign. Match them with errors.Is.
var (
	ErrInvalidSecret       = errors.New("webhook: invalid signing secret")
	ErrMissingHeaders      = errors.New("webhook: missing webhook-id, webhook-timestamp or webhook-signature")
	ErrInvalidHeaders      = errors.New("webhook: malformed webhook headers")
	ErrTimestampTooOld     = errors.New("webhook: timestamp too old")
	ErrTimestampTooNew     = errors.New("webhook: timestamp too far in the future")
	ErrNoMatchingSignature = errors.New("webhook: no matching signature")
)

// NewSecret returns a fresh secret: "whsec_" + base64 of 32 random bytes.
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("webhook: random secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// ParseSecret decodes a "whsec_<base64>" secret into the HMAC key bytes. As
// the reference libraries do, the prefix may be left out.
func ParseSecret(secret string) ([]byte, error) {
	s := strings.TrimPrefix(secret, SecretPrefix)
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		// The error text of base64 quotes an offset, never the input: safe.
		return nil, fmt.Errorf("%w: not base64: %v", ErrInvalidSecret, err)
	}
	if len(key) < minKeyBytes || len(key) > maxKeyBytes {
		return nil, fmt.Errorf("%w: key is %d bytes, want %d to %d", ErrInvalidSecret, len(key), minKeyBytes, maxKeyBytes)
	}
	return key, nil
}

// Sign returns the signature "v1,<base64>" of one message for one secret.
// Put it (or several, space-separated, see SignatureHeader) in webhook-signature.
func Sign(secret, id string, ts time.Time, body []byte) (string, error) {
	key, err := ParseSecret(secret)
	if err != nil {
		return "", err
	}
	if err := checkID(id); err != nil {
		return "", err
	}
	return signatureVersion + "," + base64.StdEncoding.EncodeToString(mac(key, id, ts.Unix(), body)), nil
}

// SignatureHeader signs with every secret (the current one first, then those
// still being rotated out) and joins the signatures with spaces, so a
// receiver holding either secret accepts the message.
func SignatureHeader(secrets []string, id string, ts time.Time, body []byte) (string, error) {
	if len(secrets) == 0 {
		return "", fmt.Errorf("%w: no secret", ErrInvalidSecret)
	}
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		sig, err := Sign(s, id, ts, body)
		if err != nil {
			return "", err
		}
		sigs = append(sigs, sig)
	}
	return strings.Join(sigs, " "), nil
}

// Verify checks a received webhook: the headers must be present, the
// timestamp within tolerance of now (tolerance <= 0 means DefaultTolerance),
// and one of the v1 signatures must match body under secret. Signatures are
// compared in constant time. Pass the raw body exactly as received: JSON that
// was parsed and re-encoded will not verify.
func Verify(secret string, headers http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := ParseSecret(secret)
	if err != nil {
		return err
	}
	id := headers.Get(HeaderID)
	tsText := headers.Get(HeaderTimestamp)
	sigs := headers.Get(HeaderSignature)
	if id == "" || tsText == "" || sigs == "" {
		return ErrMissingHeaders
	}
	if err := checkID(id); err != nil {
		return err
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil || ts < 0 || strconv.FormatInt(ts, 10) != tsText {
		// Only canonical decimal: "+1" or "01" would be signed as
		// different text than the sender used.
		return fmt.Errorf("%w: webhook-timestamp %q is not unix seconds", ErrInvalidHeaders, tsText)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	at := time.Unix(ts, 0)
	if at.Before(now.Add(-tolerance)) {
		return ErrTimestampTooOld
	}
	if at.After(now.Add(tolerance)) {
		return ErrTimestampTooNew
	}
	want := mac(key, id, ts, body)
	for _, s := range strings.Fields(sigs) {
		version, enc, ok := strings.Cut(s, ",")
		if !ok || version != signatureVersion {
			continue // another scheme (v1a) or garbage: not ours to judge
		}
		got, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrNoMatchingSignature
}

func mac(key []byte, id string, ts int64, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write(strconv.AppendInt(nil, ts, 10))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// checkID refuses ids the signed content could not delimit: the spec asks
// that the id never contain '.', the separator of id, timestamp and body.
func checkID(id string) error {
	if id == "" || strings.ContainsAny(id, ". \t\r\n") {
		return fmt.Errorf("%w: webhook-id %q must be non-empty and free of '.' and spaces", ErrInvalidHeaders, id)
	}
	return nil
}
