// Package stacktest is the lower half that the test harnesses of oauth,
// pisp, aisp/cbpii (aisptest) and cmd/tpp build the same way: a clock the
// test moves, a log buffer many goroutines write to, a rate budget that
// never waits, a client that checks every API exchange against the OpenAPI
// document, and Stack, the TPP's components on real dependencies (the
// emulated bank, redis-server, a SQLite file).
//
// It imports none of the service packages (oauth, pisp, aisp, cbpii): the
// tests of oauth are inside package oauth, and an import of oauth here
// would be a cycle. Each harness adds its own service and routes on top.
package stacktest

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/bunqtpp/tpp/internal/apitest"
)

// Clock is a tpp.Clock that the test moves forward. It is safe for
// concurrent use.
type Clock struct {
	mu sync.Mutex
	at time.Time // a frozen clock's time
	// running: Now is the wall clock plus offset, so time still passes
	// (rate windows drain, bank sessions age) and Advance jumps ahead.
	running bool
	offset  time.Duration
}

// NewClock returns a clock that stands at start until it is moved, so a
// test sees exact times.
func NewClock(start time.Time) *Clock { return &Clock{at: start} }

// RunningClock returns a clock that runs with the wall clock (UTC) and
// that Advance moves ahead of it.
func RunningClock() *Clock { return &Clock{running: true} }

// Now implements tpp.Clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return time.Now().UTC().Add(c.offset)
	}
	return c.at
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		c.offset += d
	} else {
		c.at = c.at.Add(d)
	}
}

// LogBuffer collects output written from many goroutines (a server's
// logs), for assertions and failure messages.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Unlimited is a psd2.Budget that admits every bank call at once. The
// emulator enforces no rate limits unless asked, and the client's own
// pacing (3 GETs per endpoint per 3 s) would only make the tests slow; the
// pacing is psd2's to test.
type Unlimited struct{}

// Wait returns at once (ctx's error, if it has ended).
func (Unlimited) Wait(ctx context.Context, _ string, _ int, _ time.Duration) error {
	return ctx.Err()
}

// APIClient returns an HTTP client whose every exchange v checks against
// the OpenAPI document, failing t on a mismatch.
func APIClient(t testing.TB, v *apitest.Validator) *http.Client {
	return &http.Client{Transport: v.Transport(t, nil), Timeout: 30 * time.Second}
}
