// Package bankerr maps errors of the bunq client (psd2) to the fintech API's
// stable error codes. It is the one such mapping, shared by aisp, pisp and
// cbpii, so the same bank failure reads the same everywhere.
package bankerr

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/bankctx"
	"github.com/bunqtpp/tpp/psd2"
)

// Retry hints. bunq documents no Retry-After; its rate limits are per 3
// seconds, and outages tend to last longer than that.
const (
	RateLimitRetry   = 3 * time.Second
	UnavailableRetry = 30 * time.Second
)

// FromBank returns err as a *tpp.Error with the fintech API's code:
//
//   - an error that already is a *tpp.Error (consent states, validation) is
//     returned unchanged;
//   - the grant revoked at the bank (bankctx.ErrGrantRevoked) → consent_revoked;
//   - bunq refusing the device's credentials at session-server (wrong egress
//     IP, bankctx.CredentialsRefused) → bank_unavailable, never a revocation;
//   - bunq 400/490 → bank_rejected with bunq's description;
//   - bunq 429 → bank_rate_limited with RetryAfter;
//   - bunq 5xx, 491, transport failures, timeouts, answers with a missing or
//     bad server signature or an unexpected shape → bank_unavailable (never
//     data);
//   - bunq 404 → not_found (callers that know what was looked up pick a
//     sharper code first, e.g. account_not_found);
//   - bunq 401/403 (not known to be a revoked grant) → bank_unavailable:
//     callers should first re-check the grant, see Resolve;
//   - anything else → internal_error, cause kept for the logs.
func FromBank(err error) error {
	if err == nil {
		return nil
	}
	var te *tpp.Error
	if errors.As(err, &te) {
		return te
	}
	if errors.Is(err, bankctx.ErrGrantRevoked) {
		return tpp.Wrap(err, tpp.EConsentRevoked, "The user withdrew this consent at the bank.")
	}
	var rt *psd2.RenewalThrottledError
	if errors.As(err, &rt) {
		return &tpp.Error{Code: tpp.EServiceUnavailable, Err: err, RetryAfter: rt.RetryAfter,
			Message: "The bank session is being renewed and bunq allows one renewal per 30 seconds; try again after the Retry-After interval."}
	}
	if bankctx.CredentialsRefused(err) {
		// Our egress IP or permitted IPs, not the user: the operator is
		// alerted (serve's bank call hook) and the fintech may retry.
		return &tpp.Error{Code: tpp.EServiceUnavailable, Message: "The bank refused the TPP's credentials (check the permitted IPs); the operator has been alerted. Try again after the Retry-After interval.", Err: err, RetryAfter: UnavailableRetry}
	}
	var sig *psd2.SignatureError
	if errors.As(err, &sig) || errors.Is(err, psd2.ErrBadServerSignature) {
		return &tpp.Error{Code: tpp.EBankUnavailable, Message: "The bank's answer could not be verified.", Err: err, RetryAfter: UnavailableRetry}
	}
	if errors.Is(err, psd2.ErrFundsResultMissing) {
		return &tpp.Error{Code: tpp.EBankUnavailable, Message: "The bank's funds answer did not say whether the funds are sufficient.", Err: err, RetryAfter: UnavailableRetry}
	}
	if errors.Is(err, psd2.ErrUnexpectedResponse) {
		return &tpp.Error{Code: tpp.EBankUnavailable, Message: "The bank's answer could not be understood.", Err: err, RetryAfter: UnavailableRetry}
	}
	var ae *psd2.APIError
	if errors.As(err, &ae) {
		return fromAPIError(ae, err)
	}
	var tre *psd2.TransportError
	if errors.As(err, &tre) || errors.Is(err, context.DeadlineExceeded) {
		return &tpp.Error{Code: tpp.EBankUnavailable, Message: transportMessage(err), Err: err, RetryAfter: UnavailableRetry}
	}
	if errors.Is(err, psd2.ErrSessionExpired) || errors.Is(err, psd2.ErrNoSession) {
		return &tpp.Error{Code: tpp.EBankUnavailable, Message: "The bank session could not be renewed.", Err: err, RetryAfter: UnavailableRetry}
	}
	return tpp.Wrap(err, tpp.EInternal, "internal error")
}

func fromAPIError(ae *psd2.APIError, err error) error {
	switch ae.Kind {
	case psd2.KindBadRequest:
		msg := "The bank rejected the request."
		if d := strings.TrimSpace(strings.Join(ae.Descriptions, " ")); d != "" {
			msg = "The bank rejected the request: " + d
		}
		return tpp.Wrap(err, tpp.EBankRejected, "%s", msg)
	case psd2.KindRateLimited:
		return &tpp.Error{Code: tpp.EBankRateLimited, Message: "The bank is rate limiting requests; try again shortly.", Err: err, RetryAfter: RateLimitRetry}
	case psd2.KindServer, psd2.KindMaintenance, psd2.KindOther:
		return &tpp.Error{Code: tpp.EBankUnavailable, Message: "The bank is unavailable.", Err: err, RetryAfter: UnavailableRetry}
	case psd2.KindNotFound:
		return tpp.Wrap(err, tpp.ENotFound, "The bank does not know the requested resource.")
	case psd2.KindUnauthorized, psd2.KindForbidden:
		return &tpp.Error{Code: tpp.EBankUnavailable, Message: "The bank refused the request's authorization.", Err: err, RetryAfter: UnavailableRetry}
	}
	// 405, 466: a request we built wrong. Our bug, not the client's.
	return tpp.Wrap(err, tpp.EInternal, "internal error")
}

// IsAuth reports whether err is the bank refusing the consent's
// credentials (401, 403, an expired session that did not renew, or a
// revoked grant), as opposed to the bank being down or busy.
func IsAuth(err error) bool { return bankctx.IsAuthError(err) }

// Verifier re-checks a consent's grant at the bank; (*bankctx.Provider).Verify
// bound to the consent fits. It returns an error wrapping
// bankctx.ErrGrantRevoked when the bank refuses the grant.
type Verifier func(ctx context.Context) error

// Resolve is FromBank with a second look at authorization failures: a 401 or
// 403 might be a revoked grant or a stale session, so it asks verify. A
// confirmed revocation answers consent_revoked (the caller should then mark
// the consent revoked); otherwise the original failure maps as FromBank does.
// verify may be nil (no re-check).
func Resolve(ctx context.Context, err error, verify Verifier) error {
	if err == nil {
		return nil
	}
	// A credentials refusal is re-checked too: the fresh context Verify
	// builds is registered from the current egress IP and replaces the
	// stale one, so the next request works again.
	if verify != nil && (IsAuth(err) || bankctx.CredentialsRefused(err)) && !errors.Is(err, bankctx.ErrGrantRevoked) {
		if verr := verify(ctx); errors.Is(verr, bankctx.ErrGrantRevoked) {
			return FromBank(verr)
		}
	}
	return FromBank(err)
}

// Revoked reports whether a mapped error says the grant is gone at the bank.
func Revoked(err error) bool { return tpp.ErrorCode(err) == tpp.EConsentRevoked }

// transportMessage says what happened to a call without an answer: a
// timeout is not a dropped connection, and neither is one never made.
func transportMessage(err error) string {
	var ne net.Error
	var tre *psd2.TransportError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "The bank did not answer in time."
	case errors.Is(err, syscall.ECONNREFUSED):
		return "The bank could not be reached."
	case errors.As(err, &tre) && tre.Sent:
		return "The connection to the bank was lost before its answer arrived."
	}
	return "The connection to the bank failed before the request was sent."
}
