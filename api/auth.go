package api

import (
	"context"
	"crypto/sha256"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/bunqtpp/tpp"
)

// Authenticator resolves an API key to its fintech client. It returns an
// EUnauthorized error for a malformed, unknown, wrong or revoked key, and
// compares secrets in constant time.
type Authenticator interface {
	Authenticate(ctx context.Context, apiKey string) (*tpp.FintechClient, error)
}

// AuthCacheTTL is how long a process reuses a successful API-key check.
// Revoking a client or rotating its key (tpp clients, possibly another
// process) thus takes effect within it on every replica; refusals are
// never reused.
const AuthCacheTTL = time.Second

// Authenticate requires "Authorization: Bearer <api key>" and puts the
// client on the request (Client reads it). It is attached once, to the
// /v1 group every fintech API route is mounted on (cmd/tpp), and
// authenticate below is the only place a fintech request is authenticated. Every failure answers the same 401, so a caller
// cannot tell an unknown key from a revoked one. A key a accepted less than
// AuthCacheTTL ago is accepted again without asking a, which otherwise
// costs a database read per request.
func Authenticate(a Authenticator) gin.HandlerFunc {
	return authenticate(newAuthCache(a, AuthCacheTTL, time.Now), nil)
}

// AuthenticateLimited is Authenticate followed by RateLimit(allow, policy)
// in one handler, for routes that take a single authentication handler.
func AuthenticateLimited(a Authenticator, allow RateLimiter, policy string) gin.HandlerFunc {
	return authenticate(newAuthCache(a, AuthCacheTTL, time.Now), func(c *gin.Context) bool { return limit(c, allow, policy) })
}

// authenticate checks the API key; then, if set, admit decides whether the
// request goes on (it writes the refusal itself).
func authenticate(a Authenticator, admit func(*gin.Context) bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		h := c.GetHeader("Authorization")
		scheme, key, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(key) == "" {
			c.Header("WWW-Authenticate", `Bearer realm="tpp"`)
			Error(c, tpp.Errorf(tpp.EUnauthorized, "send your API key as \"Authorization: Bearer <key>\""))
			return
		}
		client, err := a.Authenticate(c.Request.Context(), strings.TrimSpace(key))
		if err != nil {
			if tpp.ErrorCode(err) == tpp.EUnauthorized {
				c.Header("WWW-Authenticate", `Bearer realm="tpp", error="invalid_token"`)
				Error(c, tpp.Errorf(tpp.EUnauthorized, "the API key is not valid"))
				return
			}
			Error(c, err)
			return
		}
		c.Set(ctxClient, client)
		c.Request = c.Request.WithContext(WithClient(c.Request.Context(), client))
		if admit != nil && !admit(c) {
			return
		}
		c.Next()
	}
}

type clientKey struct{}

// WithClient returns ctx carrying the authenticated client.
func WithClient(ctx context.Context, cl *tpp.FintechClient) context.Context {
	return context.WithValue(ctx, clientKey{}, cl)
}

// ClientFromContext returns the authenticated client, or nil.
func ClientFromContext(ctx context.Context) *tpp.FintechClient {
	cl, _ := ctx.Value(clientKey{}).(*tpp.FintechClient)
	return cl
}

// Client returns the fintech client of a request to a route of the
// authenticated group (see Authenticate): set there before any handler
// runs, so handlers never check for it. Outside the group it panics, which
// the engine answers 500: a route mounted without authentication must not
// be served.
func Client(c *gin.Context) *tpp.FintechClient {
	return c.MustGet(ctxClient).(*tpp.FintechClient)
}

// clientOf returns the authenticated client of a request, or nil (for
// middleware that also runs outside the authenticated group).
func clientOf(c *gin.Context) *tpp.FintechClient {
	if v, ok := c.Get(ctxClient); ok {
		return v.(*tpp.FintechClient)
	}
	return nil
}

// authCache remembers accepted keys for ttl, by the SHA-256 of the whole
// key (id and secret), so only the very key that was accepted matches and
// no secret is kept.
type authCache struct {
	a   Authenticator
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	m  map[[sha256.Size]byte]authEntry
}

type authEntry struct {
	client  tpp.FintechClient
	expires time.Time
}

// maxAuthCache bounds the cache: one entry per live key of a fintech.
const maxAuthCache = 4096

func newAuthCache(a Authenticator, ttl time.Duration, now func() time.Time) *authCache {
	return &authCache{a: a, ttl: ttl, now: now, m: map[[sha256.Size]byte]authEntry{}}
}

func (ac *authCache) Authenticate(ctx context.Context, apiKey string) (*tpp.FintechClient, error) {
	sum := sha256.Sum256([]byte(apiKey))
	now := ac.now()
	ac.mu.Lock()
	e, ok := ac.m[sum]
	ac.mu.Unlock()
	if ok && now.Before(e.expires) {
		return cloneClient(&e.client), nil
	}
	cl, err := ac.a.Authenticate(ctx, apiKey)
	ac.mu.Lock()
	defer ac.mu.Unlock()
	if err != nil {
		delete(ac.m, sum)
		return nil, err
	}
	if len(ac.m) >= maxAuthCache {
		for k, e := range ac.m {
			if !now.Before(e.expires) {
				delete(ac.m, k)
			}
		}
		if len(ac.m) >= maxAuthCache {
			clear(ac.m) // only ever this full under a flood of distinct valid keys
		}
	}
	ac.m[sum] = authEntry{client: *cloneClient(cl), expires: now.Add(ac.ttl)}
	return cl, nil
}

// cloneClient copies cl, so that no request can change what another sees.
func cloneClient(cl *tpp.FintechClient) *tpp.FintechClient {
	c := *cl
	c.ReturnURLs = slices.Clone(cl.ReturnURLs)
	if cl.RevokedAt != nil {
		t := *cl.RevokedAt
		c.RevokedAt = &t
	}
	return &c
}

// BudgetShare is the fintech client a bank call is made for, for
// psd2.NewFairBudget: the API request's client, or "" for work without
// one, such as the browser flow and background jobs, which share one turn.
func BudgetShare(ctx context.Context) string {
	if cl := ClientFromContext(ctx); cl != nil {
		return cl.ID
	}
	return ""
}
