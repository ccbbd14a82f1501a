package api

import (
	"context"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/bunqtpp/tpp"
)

// Authenticator resolves an API key to its fintech client. It returns an
// EUnauthorized error for a malformed, unknown, wrong or revoked key, and
// compares secrets in constant time.
type Authenticator interface {
	Authenticate(ctx context.Context, apiKey string) (*tpp.FintechClient, error)
}

// Authenticate requires "Authorization: Bearer <api key>" and puts the
// client on the request. Every failure answers the same 401, so a caller
// cannot tell an unknown key from a revoked one.
func Authenticate(a Authenticator) gin.HandlerFunc {
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

// ClientFromGin returns the authenticated client of a request, or nil.
func ClientFromGin(c *gin.Context) *tpp.FintechClient {
	if v, ok := c.Get(ctxClient); ok {
		return v.(*tpp.FintechClient)
	}
	return nil
}
