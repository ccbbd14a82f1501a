// Package api is the HTTP frame of the fintech API: the gin engine, its
// middleware (request ids, access logs, body limits, API-key authentication)
// and the one place that maps application errors to HTTP problem responses
// (RFC 9457). The resources themselves live with their services (oauth for
// consents, aisp, pisp, cbpii), which register their routes on the engine.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/bunqtpp/tpp"
)

// Problem is an RFC 9457 problem document with the API's stable code.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Code      string `json:"code"`
	RequestID string `json:"request_id,omitempty"`
	// Extra members for some codes: reauthorize_url, from
	// tpp.Error.ReauthorizeURL.
	Extra map[string]any `json:"-"`
}

// ProblemContentType is the media type of error responses.
const ProblemContentType = "application/problem+json"

// statuses maps every error code to its HTTP status. It is the only such
// mapping in the service.
var statuses = map[string]int{
	tpp.EInvalid:                http.StatusBadRequest,
	tpp.EInvalidIBAN:            http.StatusBadRequest,
	tpp.EInvalidAmount:          http.StatusBadRequest,
	tpp.EInvalidCurrency:        http.StatusBadRequest,
	tpp.EInvalidDescription:     http.StatusBadRequest,
	tpp.EInvalidReturnURL:       http.StatusBadRequest,
	tpp.EInvalidScope:           http.StatusBadRequest,
	tpp.EInvalidCursor:          http.StatusBadRequest,
	tpp.EIdempotencyKeyRequired: http.StatusBadRequest,
	tpp.EUnauthorized:           http.StatusUnauthorized,
	tpp.ENotFound:               http.StatusNotFound,
	tpp.EConsentNotFound:        http.StatusNotFound,
	tpp.EAccountNotFound:        http.StatusNotFound,
	tpp.EPaymentNotFound:        http.StatusNotFound,
	tpp.EMethodNotAllowed:       http.StatusMethodNotAllowed,
	tpp.EConflict:               http.StatusConflict,
	tpp.EConsentNotActive:       http.StatusConflict,
	tpp.EPaymentNotCancellable:  http.StatusConflict,
	tpp.EPaymentInProgress:      http.StatusConflict,
	tpp.EIdempotencyInFlight:    http.StatusConflict,
	tpp.EBodyTooLarge:           http.StatusRequestEntityTooLarge,
	tpp.EIdempotencyKeyReused:   http.StatusUnprocessableEntity,
	tpp.EBankRejected:           http.StatusUnprocessableEntity,
	tpp.EScopeNotGranted:        http.StatusForbidden,
	tpp.EConsentRevoked:         http.StatusForbidden,
	tpp.EConsentExpired:         http.StatusForbidden,
	tpp.EConsentReauthRequired:  http.StatusForbidden,
	tpp.ERateLimited:            http.StatusTooManyRequests,
	tpp.EAccessLimitExceed:      http.StatusTooManyRequests,
	tpp.EBankRateLimited:        http.StatusTooManyRequests,
	tpp.EBankUnavailable:        http.StatusBadGateway,
	tpp.EBankBusy:               http.StatusServiceUnavailable,
	tpp.EServiceUnavailable:     http.StatusServiceUnavailable,
	tpp.EInternal:               http.StatusInternalServerError,
}

// StatusOf returns the HTTP status for an error code; unknown codes are 500.
func StatusOf(code string) int {
	if s, ok := statuses[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Codes returns every error code the API can answer with, for the OpenAPI
// document and its tests.
func Codes() map[string]int {
	out := make(map[string]int, len(statuses))
	for k, v := range statuses {
		out[k] = v
	}
	return out
}

// NewProblem builds the problem document for err. 5xx details are replaced
// by a generic text: they go to logs only.
func NewProblem(err error, requestID string) Problem {
	code := tpp.ErrorCode(err)
	status := StatusOf(code)
	p := Problem{
		Type:      "/docs#error-" + code,
		Title:     http.StatusText(status),
		Status:    status,
		Code:      code,
		Detail:    tpp.ErrorMessage(err),
		RequestID: requestID,
	}
	var e *tpp.Error
	if errors.As(err, &e) && e.ReauthorizeURL != "" {
		p.Extra = map[string]any{"reauthorize_url": e.ReauthorizeURL}
	}
	if status >= 500 && code != tpp.EBankUnavailable && code != tpp.EBankBusy && code != tpp.EServiceUnavailable {
		p.Detail = "An internal error occurred. Quote the request id when you contact support."
	}
	return p
}

// Error writes err as a problem response and aborts the request. Server
// errors are logged with their cause.
func Error(c *gin.Context, err error) {
	err = classify(c, err)
	rid := RequestID(c)
	p := NewProblem(err, rid)
	var e *tpp.Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		secs := int((e.RetryAfter + 999_999_999) / 1_000_000_000)
		c.Header("Retry-After", strconv.Itoa(secs))
	}
	level, msg := slog.LevelDebug, "request refused"
	if p.Status >= 500 {
		level, msg = slog.LevelError, "request failed"
	}
	if ctx := c.Request.Context(); logEnabled(ctx, c, level) {
		Logger(c).Log(ctx, level, msg, "code", p.Code, "err", err)
	}
	WriteProblem(c, p)
}

// WriteProblem writes p and aborts the request.
func WriteProblem(c *gin.Context, p Problem) {
	body := gin.H{
		"type": p.Type, "title": p.Title, "status": p.Status, "code": p.Code,
	}
	if p.Detail != "" {
		body["detail"] = p.Detail
	}
	if p.RequestID != "" {
		body["request_id"] = p.RequestID
	}
	for k, v := range p.Extra {
		body[k] = v
	}
	c.Header("Content-Type", ProblemContentType)
	c.AbortWithStatus(p.Status)
	c.Render(p.Status, problemRender{body})
}

type problemRender struct{ body gin.H }

func (r problemRender) Render(w http.ResponseWriter) error {
	return jsonRender(w, r.body)
}

func (r problemRender) WriteContentType(w http.ResponseWriter) {
	w.Header().Set("Content-Type", ProblemContentType)
}

// Logger returns the request-scoped logger (with the request id).
func Logger(c *gin.Context) *slog.Logger {
	if l, ok := c.Get(ctxLogger); ok {
		return l.(*slog.Logger)
	}
	if b, ok := c.Get(ctxBaseLogger); ok {
		l := b.(*slog.Logger).With("request_id", RequestID(c))
		c.Set(ctxLogger, l)
		return l
	}
	return slog.New(slog.DiscardHandler)
}

// logEnabled reports whether the request's logger logs at level, without
// making the logger.
func logEnabled(ctx context.Context, c *gin.Context, level slog.Level) bool {
	if l, ok := c.Get(ctxLogger); ok {
		return l.(*slog.Logger).Enabled(ctx, level)
	}
	if b, ok := c.Get(ctxBaseLogger); ok {
		return b.(*slog.Logger).Enabled(ctx, level)
	}
	return false
}

// unavailableKey holds Options.Unavailable in each request's gin context.
const unavailableKey = "tpp.api.unavailable"

// classify turns an unmapped error that Options.Unavailable recognises
// (Redis down, the database locked) into service_unavailable: a 503 with
// Retry-After rather than a 500 that looks like our bug.
func classify(c *gin.Context, err error) error {
	if tpp.ErrorCode(err) != tpp.EInternal {
		return err
	}
	v, _ := c.Get(unavailableKey)
	if is, ok := v.(func(error) string); ok {
		if what := is(err); what != "" {
			return tpp.Unavailable(err, what)
		}
	}
	return err
}
