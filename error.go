package tpp

import (
	"errors"
	"fmt"
	"time"
)

// Error is an application error with a stable, machine-readable code. The API
// layer maps codes to HTTP statuses in one place; everything else only picks a
// code and writes a message fit for the fintech developer who will read it.
type Error struct {
	Code    string
	Message string
	// Err is the underlying cause, if any. It is for logs, never for the client.
	Err error
	// RetryAfter, when set, tells the client when to try again (rate limits,
	// a bank that is busy). The API sends it as a Retry-After header.
	RetryAfter time.Duration
	// ReauthorizeURL, when set, is the page where the user authorizes the
	// consent again (consent_reauth_required). The API sends it as the
	// problem document's reauthorize_url.
	ReauthorizeURL string
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error that keeps err as its cause.
func Wrap(err error, code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, or
// EInternal for any other non-nil error.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the client-facing message of the first *Error in err's
// chain. Other errors are internal and get a generic message: their text may
// hold details that belong in logs only.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "An internal error occurred."
}

// Stable error codes of the fintech API. They are part of the public contract:
// add new ones, never rename.
const (
	EInternal           = "internal_error"
	EInvalid            = "invalid_request"
	EUnauthorized       = "unauthorized"
	ENotFound           = "not_found"
	EMethodNotAllowed   = "method_not_allowed"
	EConflict           = "conflict"
	EBodyTooLarge       = "body_too_large"
	EInvalidIBAN        = "invalid_iban"
	EInvalidAmount      = "invalid_amount"
	EInvalidCurrency    = "invalid_currency"
	EInvalidDescription = "invalid_description"
	EInvalidReturnURL   = "invalid_return_url"
	EInvalidScope       = "invalid_scope"
	EInvalidCursor      = "invalid_cursor"

	EConsentNotFound       = "consent_not_found"
	EConsentNotActive      = "consent_not_active"
	EConsentRevoked        = "consent_revoked"
	EConsentExpired        = "consent_expired"
	EConsentReauthRequired = "consent_reauth_required"
	EScopeNotGranted       = "scope_not_granted"
	EAccountNotFound       = "account_not_found"
	EPaymentNotFound       = "payment_not_found"
	EPaymentNotCancellable = "payment_not_cancellable"
	// EPaymentInProgress: another single payment from the same debtor IBAN
	// is not finished yet (bunq would show both on one authorization page).
	EPaymentInProgress = "payment_in_progress"

	EIdempotencyKeyRequired = "idempotency_key_required"
	EIdempotencyKeyReused   = "idempotency_key_reused"
	EIdempotencyInFlight    = "idempotency_key_in_flight"

	ERateLimited       = "rate_limited"
	EAccessLimitExceed = "access_frequency_exceeded"

	EBankRejected    = "bank_rejected"
	EBankUnavailable = "bank_unavailable"
	EBankRateLimited = "bank_rate_limited"
	// EBankBusy: the TPP's shared bank budget is queued up beyond the
	// request's deadline; answered at once with Retry-After.
	EBankBusy = "bank_busy"

	// EServiceUnavailable: a dependency of the TPP itself (Redis, the
	// database) is briefly unavailable; the answer carries Retry-After.
	EServiceUnavailable = "service_unavailable"
)

// UnavailableRetry is the Retry-After of service_unavailable answers: long
// enough for a restarted Redis or a released database lock.
const UnavailableRetry = 5 * time.Second

// Unavailable marks err, a failure of a dependency that will pass, as
// service_unavailable with Retry-After.
func Unavailable(err error, what string) *Error {
	return &Error{Code: EServiceUnavailable, Err: err, RetryAfter: UnavailableRetry,
		Message: what + " is briefly unavailable; try again after the Retry-After interval."}
}
