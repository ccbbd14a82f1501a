package api

import (
	"context"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/bunqtpp/tpp"
)

// RateDecision is a rate limiter's answer for one request.
type RateDecision struct {
	Allowed    bool
	Limit      int // requests allowed at once (the burst)
	Remaining  int
	RetryAfter time.Duration // when refused: until the next request is allowed
	ResetAfter time.Duration // until the full burst is available again
}

// RateLimiter counts one request of a client (redis.ClientRateLimiter
// through a small adapter in cmd/tpp).
type RateLimiter func(ctx context.Context, clientID string) (RateDecision, error)

// redisDownRetry is the Retry-After of a request refused because the
// shared count could not be read.
const redisDownRetry = 2 * time.Second

// RateLimit limits each authenticated client's requests; it must run after
// Authenticate. Every answer carries the client's limit in the IETF draft's
// RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset headers, and
// policy (e.g. "50;w=1;burst=100") in RateLimit-Policy. (Account reads
// replace RateLimit-Limit and -Remaining with their stricter PSD2 window
// and drop RateLimit-Reset; RateLimit-Policy stays the client's.) Over the
// limit: 429 rate_limited with Retry-After. When the count cannot be read
// (Redis down) the request is refused with 503 service_unavailable and
// Retry-After rather than served unlimited: the limit protects the other
// clients, and without Redis most requests would fail anyway.
func RateLimit(allow RateLimiter, policy string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if limit(c, allow, policy) {
			c.Next()
		}
	}
}

// limit counts the request and reports whether it may go on; a refusal is
// written here.
func limit(c *gin.Context, allow RateLimiter, policy string) bool {
	cl := clientOf(c)
	if cl == nil {
		Error(c, tpp.Errorf(tpp.EInternal, "rate limit without an authenticated client"))
		return false
	}
	d, err := allow(c.Request.Context(), cl.ID)
	if err != nil {
		Error(c, &tpp.Error{Code: tpp.EServiceUnavailable, Message: "the request rate cannot be checked right now; retry shortly", Err: err, RetryAfter: redisDownRetry})
		return false
	}
	h := c.Writer.Header()
	h.Set("RateLimit-Policy", policy)
	h.Set("RateLimit-Limit", strconv.Itoa(d.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(d.Remaining))
	h.Set("RateLimit-Reset", strconv.Itoa(ceilSeconds(d.ResetAfter)))
	if !d.Allowed {
		Error(c, &tpp.Error{Code: tpp.ERateLimited, Message: "too many requests from this client; retry after Retry-After seconds", RetryAfter: d.RetryAfter})
		return false
	}
	return true
}

// ceilSeconds rounds d up to whole seconds.
func ceilSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}
