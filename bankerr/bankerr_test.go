package bankerr_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/bankctx"
	"github.com/bunqtpp/tpp/bankerr"
	"github.com/bunqtpp/tpp/psd2"
)

func apiErr(kind psd2.ErrorKind, status int, desc ...string) error {
	return fmt.Errorf("call: %w", &psd2.APIError{Kind: kind, Status: status, Method: "GET", Path: "/v1/user/1/monetary-account", Descriptions: desc})
}

func TestFromBank(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		err   error
		code  string
		retry bool
		msg   string
	}{
		{"400", apiErr(psd2.KindBadRequest, 400, "The IBAN is not valid."), tpp.EBankRejected, false, "The IBAN is not valid."},
		{"490", apiErr(psd2.KindBadRequest, 490), tpp.EBankRejected, false, "rejected"},
		{"429", apiErr(psd2.KindRateLimited, 429, "Too many requests."), tpp.EBankRateLimited, true, ""},
		{"500", apiErr(psd2.KindServer, 500), tpp.EBankUnavailable, true, ""},
		{"503", apiErr(psd2.KindServer, 503), tpp.EBankUnavailable, true, ""},
		{"491 maintenance", apiErr(psd2.KindMaintenance, 491), tpp.EBankUnavailable, true, ""},
		{"404", apiErr(psd2.KindNotFound, 404), tpp.ENotFound, false, ""},
		{"401", apiErr(psd2.KindUnauthorized, 401), tpp.EBankUnavailable, true, ""},
		{"466 is our bug", apiErr(psd2.KindSignatureRequired, 466), tpp.EInternal, false, ""},
		{"dropped after sending", &psd2.TransportError{Method: "GET", Path: "/x", Sent: true, Err: syscall.ECONNRESET}, tpp.EBankUnavailable, true, "connection to the bank was lost"},
		{"dropped before sending", &psd2.TransportError{Method: "GET", Path: "/x", Err: io.ErrUnexpectedEOF}, tpp.EBankUnavailable, true, "before the request was sent"},
		{"refused", &psd2.TransportError{Method: "GET", Path: "/x", Err: &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}}, tpp.EBankUnavailable, true, "could not be reached"},
		{"transport timeout", &psd2.TransportError{Method: "GET", Path: "/x", Sent: true, Err: fmt.Errorf("read: %w", context.DeadlineExceeded)}, tpp.EBankUnavailable, true, "did not answer in time"},
		{"timeout", fmt.Errorf("x: %w", context.DeadlineExceeded), tpp.EBankUnavailable, true, "did not answer in time"},
		{"renewal throttled", errors.Join(apiErr(psd2.KindUnauthorized, 401), &psd2.RenewalThrottledError{RetryAfter: 20 * time.Second}), tpp.EServiceUnavailable, true, "one renewal per 30 seconds"},
		{"bad signature", &psd2.SignatureError{Method: "GET", Path: "/x", Status: 200}, tpp.EBankUnavailable, true, "verified"},
		{"bad shape", &psd2.ResponseError{Method: "GET", Path: "/x", Err: errors.New("eof")}, tpp.EBankUnavailable, true, ""},
		{"grant revoked", fmt.Errorf("%w: %w", bankctx.ErrGrantRevoked, apiErr(psd2.KindUnauthorized, 401)), tpp.EConsentRevoked, false, ""},
		{"already an API error", tpp.Errorf(tpp.EConsentNotActive, "pending"), tpp.EConsentNotActive, false, "pending"},
		{"other", errors.New("disk full"), tpp.EInternal, false, ""},
	}
	for _, tc := range cases {
		got := bankerr.FromBank(tc.err)
		var e *tpp.Error
		if !errors.As(got, &e) {
			t.Errorf("%s: %T is not a *tpp.Error", tc.name, got)
			continue
		}
		if e.Code != tc.code || (e.RetryAfter > 0) != tc.retry || !strings.Contains(e.Message, tc.msg) {
			t.Errorf("%s: got %s %q retry %s", tc.name, e.Code, e.Message, e.RetryAfter)
		}
		if tc.code != tpp.EConsentNotActive && !errors.Is(got, tc.err) {
			t.Errorf("%s: the cause is lost", tc.name)
		}
	}
	if bankerr.FromBank(nil) != nil {
		t.Error("nil is not an error")
	}
}

func TestResolveRechecksAuthFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	auth := apiErr(psd2.KindForbidden, 403, "Insufficient authorisation.")
	calls := 0
	revoked := func(context.Context) error {
		calls++
		return fmt.Errorf("%w: gone", bankctx.ErrGrantRevoked)
	}
	alive := func(context.Context) error { calls++; return nil }
	if got := bankerr.Resolve(ctx, auth, revoked); tpp.ErrorCode(got) != tpp.EConsentRevoked || !bankerr.Revoked(got) {
		t.Errorf("confirmed revocation: %v", got)
	}
	if got := bankerr.Resolve(ctx, auth, alive); tpp.ErrorCode(got) != tpp.EBankUnavailable {
		t.Errorf("grant alive: %v", got)
	}
	before := calls
	if got := bankerr.Resolve(ctx, apiErr(psd2.KindServer, 500), revoked); tpp.ErrorCode(got) != tpp.EBankUnavailable || calls != before {
		t.Errorf("a 500 must not trigger a re-check: %v (%d checks)", got, calls-before)
	}
	if got := bankerr.Resolve(ctx, auth, nil); tpp.ErrorCode(got) != tpp.EBankUnavailable {
		t.Errorf("no verifier: %v", got)
	}
}
