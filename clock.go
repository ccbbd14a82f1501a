package tpp

import "time"

// Clock tells the time. Services take one so tests can move time forward
// (session expiry, consent re-authentication, state lifetimes) without sleeping.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns the current time.
func (SystemClock) Now() time.Time { return time.Now() }
