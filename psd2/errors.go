package psd2

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrorKind classifies a bunq error answer by its HTTP status.
type ErrorKind int

// Error kinds. KindOther covers statuses bunq does not document.
const (
	KindOther             ErrorKind = iota
	KindBadRequest                  // 400, and 490 "user error"
	KindUnauthorized                // 401
	KindForbidden                   // 403
	KindNotFound                    // 404
	KindMethodNotAllowed            // 405
	KindRateLimited                 // 429
	KindSignatureRequired           // 466
	KindMaintenance                 // 491
	KindServer                      // 5xx
)

func kindOf(status int) ErrorKind {
	switch {
	case status == 400 || status == 490:
		return KindBadRequest
	case status == 401:
		return KindUnauthorized
	case status == 403:
		return KindForbidden
	case status == 404:
		return KindNotFound
	case status == 405:
		return KindMethodNotAllowed
	case status == 429:
		return KindRateLimited
	case status == 466:
		return KindSignatureRequired
	case status == 491:
		return KindMaintenance
	case status >= 500 && status <= 599:
		return KindServer
	}
	return KindOther
}

var kindNames = [...]string{"error", "bad request", "unauthorized", "forbidden", "not found",
	"method not allowed", "rate limited", "signature required", "maintenance", "server error"}

func (k ErrorKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "error"
}

// Sentinels for errors.Is: errors.Is(err, psd2.ErrNotFound) holds for an
// *APIError of that kind. Use errors.As with *APIError for the details.
var (
	ErrBadRequest        = errors.New("psd2: bad request")
	ErrUnauthorized      = errors.New("psd2: unauthorized")
	ErrForbidden         = errors.New("psd2: forbidden")
	ErrNotFound          = errors.New("psd2: not found")
	ErrRateLimited       = errors.New("psd2: rate limited")
	ErrSignatureRequired = errors.New("psd2: request signature required")
	ErrMaintenance       = errors.New("psd2: bank in maintenance")
	ErrServer            = errors.New("psd2: bank server error")

	// ErrBadServerSignature: a 2xx answer whose X-Bunq-Server-Signature is
	// missing or does not verify. Its body is never returned as data. For a
	// call that moves money the bank may have acted: reconcile.
	ErrBadServerSignature = errors.New("psd2: missing or invalid server signature")

	// ErrSessionExpired: the bank refused the session ("Insufficient
	// authorisation.") and renewing it did not help.
	ErrSessionExpired = errors.New("psd2: session expired")

	// ErrNoSession: the context has no session and the call needs one.
	ErrNoSession = errors.New("psd2: context has no session")

	// ErrUnexpectedResponse: a 2xx answer that does not have the expected shape.
	ErrUnexpectedResponse = errors.New("psd2: unexpected response from bank")
)

var kindSentinels = map[ErrorKind]error{
	KindBadRequest:        ErrBadRequest,
	KindUnauthorized:      ErrUnauthorized,
	KindForbidden:         ErrForbidden,
	KindNotFound:          ErrNotFound,
	KindRateLimited:       ErrRateLimited,
	KindSignatureRequired: ErrSignatureRequired,
	KindMaintenance:       ErrMaintenance,
	KindServer:            ErrServer,
}

// APIError is an error answer of the bank: a non-2xx status with (usually)
// bunq's {"Error": [{"error_description": …}]} envelope.
type APIError struct {
	Kind   ErrorKind
	Status int
	Method string
	Path   string // request path without query
	// Descriptions are the error_description values, in order;
	// Translated the error_description_translated values.
	Descriptions []string
	Translated   []string
	RequestID    string // X-Bunq-Client-Request-Id we sent
	ResponseID   string // X-Bunq-Client-Response-Id the bank sent
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "psd2: %s %s: %d %s", e.Method, e.Path, e.Status, e.Kind)
	if len(e.Descriptions) > 0 {
		b.WriteString(": ")
		b.WriteString(strings.Join(e.Descriptions, " "))
	}
	if e.ResponseID != "" {
		fmt.Fprintf(&b, " (response id %s)", e.ResponseID)
	}
	return b.String()
}

// Is reports whether target is the sentinel of e's kind, or
// ErrSessionExpired for an expired-session answer.
func (e *APIError) Is(target error) bool {
	if target == ErrSessionExpired {
		return e.InsufficientAuth()
	}
	s, ok := kindSentinels[e.Kind]
	return ok && s == target
}

// InsufficientAuth reports whether the bank refused the session token
// ("Insufficient authorisation." / "Insufficient authentication."), whatever
// the status (bunq has been seen to use 401 and 403).
func (e *APIError) InsufficientAuth() bool {
	for _, d := range e.Descriptions {
		d = strings.ToLower(strings.TrimSpace(d))
		if strings.HasPrefix(d, "insufficient authorisation") || strings.HasPrefix(d, "insufficient authorization") ||
			strings.HasPrefix(d, "insufficient authentication") {
			return true
		}
	}
	return false
}

// Temporary reports whether retrying later may succeed (429, 5xx, 491).
func (e *APIError) Temporary() bool {
	return e.Kind == KindRateLimited || e.Kind == KindServer || e.Kind == KindMaintenance
}

// TransportError is a call that got no HTTP answer.
//
// Sent tells whether the request had been written to the connection: when
// true the bank may have received and executed it ("sent but no answer"),
// so a caller that moved money must reconcile (look the payment up) before
// trying again. When false the bank never saw it and a retry is safe.
type TransportError struct {
	Method    string
	Path      string
	RequestID string
	Sent      bool
	Err       error
}

func (e *TransportError) Error() string {
	state := "not sent"
	if e.Sent {
		state = "sent, no answer; outcome unknown"
	}
	return fmt.Sprintf("psd2: %s %s: %s (request id %s): %v", e.Method, e.Path, state, e.RequestID, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

// Ambiguous reports whether the bank may have processed the request.
func (e *TransportError) Ambiguous() bool { return e.Sent }

// SignatureError is a 2xx answer whose server signature is missing or bad.
// errors.Is(err, ErrBadServerSignature) holds.
type SignatureError struct {
	Method     string
	Path       string
	Status     int
	Missing    bool
	RequestID  string
	ResponseID string
	Err        error
}

func (e *SignatureError) Error() string {
	what := "invalid"
	if e.Missing {
		what = "missing"
	}
	return fmt.Sprintf("psd2: %s %s: %d answer with %s server signature (request id %s, response id %s): %v",
		e.Method, e.Path, e.Status, what, e.RequestID, e.ResponseID, e.Err)
}

func (e *SignatureError) Is(target error) bool { return target == ErrBadServerSignature }

func (e *SignatureError) Unwrap() error { return e.Err }

// ResponseError is a 2xx answer that could not be decoded as expected.
// errors.Is(err, ErrUnexpectedResponse) holds.
type ResponseError struct {
	Method     string
	Path       string
	RequestID  string
	ResponseID string
	Err        error
}

func (e *ResponseError) Error() string {
	return fmt.Sprintf("psd2: %s %s: unexpected response (response id %s): %v", e.Method, e.Path, e.ResponseID, e.Err)
}

func (e *ResponseError) Is(target error) bool { return target == ErrUnexpectedResponse }

func (e *ResponseError) Unwrap() error { return e.Err }

// RenewalThrottledError: the session must be renewed, but bunq allows one
// session-server call per 30 s per installation, and the last one (a
// renewal that failed, or a session that expired again soon) is too recent
// for the caller to wait. Nothing was sent; try again after RetryAfter.
type RenewalThrottledError struct{ RetryAfter time.Duration }

func (e *RenewalThrottledError) Error() string {
	return fmt.Sprintf("psd2: session renewal must wait %v for bunq's session-server limit", e.RetryAfter.Round(time.Second))
}
