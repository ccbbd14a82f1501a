package api

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/logging"
)

const (
	ctxRequestID  = "tpp.request_id"
	ctxBaseLogger = "tpp.base_logger"
	ctxLogger     = "tpp.logger"
	ctxClient     = "tpp.client"
)

// HeaderRequestID carries the request id in both directions.
const HeaderRequestID = "X-Request-Id"

// MaxBodyBytes is the largest request body the API reads.
const MaxBodyBytes = 64 << 10

type requestIDKey struct{}

// RequestIDFromContext returns the API request id stored in ctx, so services
// can write it into audit records without knowing about gin.
func RequestIDFromContext(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey{}).(string)
	return s
}

// WithRequestID returns ctx carrying a request id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// NewID returns prefix followed by 26 random base32 characters (130 bits).
func NewID(prefix string) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // the OS has no entropy: nothing is safe to do
	}
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// validRequestID accepts client-supplied ids that are safe to log and echo.
func validRequestID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// RequestID keeps a valid incoming X-Request-Id or makes one, sets it on the
// response, and puts a logger carrying it on the request (made when first
// asked for: most requests log nothing at the configured level).
func RequestIDMiddleware(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader(HeaderRequestID)
		if !validRequestID(id) {
			id = NewID("req_")
		}
		c.Set(ctxRequestID, id)
		c.Set(ctxBaseLogger, log)
		c.Request = c.Request.WithContext(WithRequestID(c.Request.Context(), id))
		c.Header(HeaderRequestID, id)
		c.Next()
	}
}

// APIPrefix starts every path of the fintech API.
const APIPrefix = "/v1"

// NoStoreAPI marks every answer under /v1 (resources, problems and 404s
// alike) Cache-Control: no-store: they hold account data, payment states and
// authorize URLs that no shared or browser cache may keep. Set before the
// handler runs, so an abort or a panic keeps it too.
func NoStoreAPI() gin.HandlerFunc {
	return func(c *gin.Context) {
		if p := c.Request.URL.Path; p == APIPrefix || strings.HasPrefix(p, APIPrefix+"/") {
			c.Header("Cache-Control", "no-store")
		}
		c.Next()
	}
}

// RequestID returns the request's id.
func RequestID(c *gin.Context) string {
	return c.GetString(ctxRequestID)
}

// Observer receives one call per finished request, for metrics. route is
// "METHOD /pattern", e.g. "GET /v1/consents/:id".
type Observer func(route string, status int, d time.Duration)

// AccessLog logs each request once it is done. The path is logged without
// its query when the query may carry secrets (OAuth callbacks do).
func AccessLog(observe Observer) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		d := time.Since(start)
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		status := c.Writer.Status()
		if observe != nil {
			method := c.Request.Method
			switch method {
			case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
			default:
				method = "OTHER" // clients choose the method: keep metric labels bounded
			}
			observe(method+" "+route, status, d)
		}
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		}
		ctx := c.Request.Context()
		if !logEnabled(ctx, c, level) {
			return // spare the URL parsing and the logger
		}
		Logger(c).LogAttrs(ctx, level, "http request",
			slog.String("method", c.Request.Method),
			slog.String("route", route),
			slog.String("path", logging.RedactURL(c.Request.URL.RequestURI())),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(d.Microseconds())/1000),
			slog.String("client_id", clientIDForLog(c)),
		)
	}
}

func clientIDForLog(c *gin.Context) string {
	if cl := ClientFromGin(c); cl != nil {
		return cl.ID
	}
	return ""
}

// Recover turns a panic into a 500 problem, logging the panic value.
func Recover() gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				Error(c, fmt.Errorf("panic: %v", r))
			}
		}()
		c.Next()
	}
}

// LimitBody caps request bodies at MaxBodyBytes.
func LimitBody() gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.ContentLength > MaxBodyBytes {
			Error(c, tpp.Errorf(tpp.EBodyTooLarge, "request body is larger than %d bytes", MaxBodyBytes))
			return
		}
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, MaxBodyBytes)
		c.Next()
	}
}

// DecodeJSON reads the request body into v strictly: unknown fields, trailing
// data, an empty body and bodies over the limit are errors with stable codes.
func DecodeJSON(c *gin.Context, v any) error {
	dec := json.NewDecoder(c.Request.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var ute *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &mbe):
			return tpp.Errorf(tpp.EBodyTooLarge, "request body is larger than %d bytes", MaxBodyBytes)
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return tpp.Errorf(tpp.EInvalid, "request body is empty; send a JSON object")
		case errors.As(err, &ute):
			return tpp.Errorf(tpp.EInvalid, "field %q must be a %s", ute.Field, ute.Type.Kind())
		case errors.As(err, &se):
			return tpp.Errorf(tpp.EInvalid, "request body is not valid JSON (at byte %d)", se.Offset)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return tpp.Errorf(tpp.EInvalid, "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
		default:
			return tpp.Errorf(tpp.EInvalid, "request body is not valid JSON")
		}
	}
	if dec.More() {
		return tpp.Errorf(tpp.EInvalid, "request body must hold exactly one JSON object")
	}
	return nil
}
