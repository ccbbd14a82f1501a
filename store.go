package tpp

import (
	"context"
	"errors"
	"time"
)

// What the short-lived shared stores (Redis in production) hand to their
// consumers. The types live here so that services name them without
// depending on the adapter that keeps them.

// ErrNotFound is returned by a store when a key is missing or has expired.
var ErrNotFound = errors.New("not found")

// ErrUnreadable is returned when a stored value exists but cannot be opened
// (tampered with, copied from another owner, or sealed under a retired
// key). Callers treat it like ErrNotFound: rebuild and overwrite.
var ErrUnreadable = errors.New("stored value cannot be opened")

// ErrLocked is returned by a non-waiting lock attempt when someone else
// holds the lock.
var ErrLocked = errors.New("lock is held by someone else")

// ErrLockLost is returned by Lock.Release and Lock.Extend when the lock
// expired and may now belong to someone else.
var ErrLockLost = errors.New("lock was lost (expired)")

// Lock is a held cross-replica lock.
type Lock interface {
	// Release frees the lock if it is still ours; ErrLockLost if it expired.
	Release(ctx context.Context) error
	// Extend resets the lock's expiry to ttl from now if it is still ours;
	// ErrLockLost if it expired.
	Extend(ctx context.Context, ttl time.Duration) error
}

// OAuthState is what the OAuth flow remembers between redirect and callback.
type OAuthState struct {
	ConsentID string `json:"consent_id"`
	// BrowserHash is the hash of the browser-binding cookie; the oauth
	// package compares it in constant time.
	BrowserHash string    `json:"browser_hash"`
	CreatedAt   time.Time `json:"created_at"`
}

// ErrForeignBrowser is returned when an OAuth state exists but belongs to
// another browser: the state stays, for the browser that started the flow.
var ErrForeignBrowser = errors.New("oauth state belongs to another browser")

// AccessDecision is the outcome of counting one read against a consent's
// PSD2 access frequency.
type AccessDecision struct {
	Allowed bool
	// Limit is the number of reads allowed per window.
	Limit int
	// Remaining is how many more reads the window allows after this one.
	Remaining int
	// RetryAfter is, when refused, how long until the oldest read in the
	// window ages out and one more is allowed.
	RetryAfter time.Duration
}
