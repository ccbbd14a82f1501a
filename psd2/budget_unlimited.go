package psd2

import (
	"context"
	"time"
)

// Unlimited admits every call at once: only for load tests against a bank
// without rate limits.
type Unlimited struct{}

// Wait returns at once, unless ctx has ended.
func (Unlimited) Wait(ctx context.Context, _ string, _ int, _ time.Duration) error { return ctx.Err() }
