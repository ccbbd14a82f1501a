package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/oauth2"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/api"
	"github.com/bunqtpp/tpp/bankctx"
	"github.com/bunqtpp/tpp/psd2"
	"github.com/bunqtpp/tpp/web"
)

// PageError is a failure the user sees as a page: what happened and what
// to do. The flow never shows internal details.
type PageError struct {
	Status int
	Page   web.ErrorData
	Err    error // the cause, for logs
}

func (e *PageError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("oauth page %d %q: %v", e.Status, e.Page.Heading, e.Err)
	}
	return fmt.Sprintf("oauth page %d %q", e.Status, e.Page.Heading)
}

func (e *PageError) Unwrap() error { return e.Err }

func pageErr(status int, heading, what, advice string, cause error) *PageError {
	return &PageError{Status: status, Page: web.ErrorData{Heading: heading, What: what, Advice: advice}, Err: cause}
}

func (s *Service) unavailable(err error) *PageError {
	return pageErr(http.StatusServiceUnavailable, "Something went wrong on our side",
		"We could not handle your request just now. Nothing has been shared with anyone.",
		"Please try again in a few minutes. If it keeps happening, start again from the app you came from.", err)
}

var errNoConsent = pageErr(http.StatusNotFound, "This link does not work",
	"We could not find the connection request behind this link.",
	"Go back to the app you came from and start again.", nil)

// scopeText is what each scope means, in plain words.
var scopeText = map[tpp.Scope]web.Scope{
	tpp.ScopeAccounts: {Title: "Account information", Description: "see your accounts, balances and transactions"},
	tpp.ScopePayments: {Title: "Payments", Description: "prepare payments that you approve in your bunq app"},
	tpp.ScopeFunds:    {Title: "Funds check", Description: "check whether you have enough money for an amount"},
}

// ConnectView is what the consent page shows.
type ConnectView struct {
	Consent *tpp.Consent
	Client  *tpp.FintechClient
	Reauth  bool
	Scopes  []web.Scope
	// Payment is the payment a single payment's consent authorizes.
	Payment *tpp.Payment
}

// usable loads a consent for the browser flow: pending and in time, or due
// for re-authorization. Anything else is a page error.
func (s *Service) usable(ctx context.Context, id string) (*tpp.Consent, *tpp.FintechClient, error) {
	c, err := s.consents.ConsentByID(ctx, id)
	if tpp.ErrorCode(err) == tpp.EConsentNotFound || tpp.ErrorCode(err) == tpp.ENotFound {
		return nil, nil, errNoConsent
	}
	if err != nil {
		return nil, nil, s.unavailable(err)
	}
	if c, err = s.refresh(ctx, c, ""); err != nil {
		return nil, nil, s.unavailable(err)
	}
	cl, err := s.clients.Client(ctx, c.ClientID)
	if err != nil {
		return nil, nil, s.unavailable(err)
	}
	if cl.Status != tpp.ClientActive {
		return nil, nil, pageErr(http.StatusGone, "This app can no longer connect",
			"The app that sent you here is no longer allowed to connect to bank accounts.",
			"Contact the app's support if you think this is a mistake.", nil)
	}
	switch c.Status {
	case tpp.ConsentPending, tpp.ConsentReauthRequired:
		return c, cl, nil
	}
	return nil, nil, statusPage(c)
}

// statusPage explains a consent that is no longer waiting for the user.
func statusPage(c *tpp.Consent) *PageError {
	if c.Internal() {
		return singleStatusPage(c)
	}
	switch c.Status {
	case tpp.ConsentActive:
		return pageErr(http.StatusConflict, "You are already connected",
			"You already approved this request. There is nothing more to do here.",
			"You can go back to the app.", nil)
	case tpp.ConsentExpired:
		return pageErr(http.StatusGone, "This request has expired",
			"Connection requests are valid for 15 minutes, and this one has run out. Nothing was shared.",
			"Go back to the app and start again.", nil)
	case tpp.ConsentRejected:
		return pageErr(http.StatusGone, "This request was declined",
			"This connection request was declined or cancelled earlier. Nothing was shared.",
			"If you want to connect after all, go back to the app and start again.", nil)
	case tpp.ConsentRevoked:
		return pageErr(http.StatusGone, "This connection was withdrawn",
			"This connection has been withdrawn and can no longer be used.",
			"If you want to connect again, go back to the app and start again.", nil)
	}
	return pageErr(http.StatusConflict, "This request cannot be used",
		"This connection request is not waiting for your approval.", "Go back to the app and start again.", nil)
}

// singleStatusPage is statusPage in the words of a single payment, which
// is what the user approves when the consent is a single payment's.
func singleStatusPage(c *tpp.Consent) *PageError {
	switch c.Status {
	case tpp.ConsentActive:
		return pageErr(http.StatusConflict, "You already approved this payment",
			"You approved this payment earlier. There is nothing more to do here.",
			"You can go back to the app.", nil)
	case tpp.ConsentExpired:
		return pageErr(http.StatusGone, "This payment request has expired",
			"Payment requests are valid for 15 minutes, and this one has run out. No money was sent.",
			"Go back to the app and start again.", nil)
	case tpp.ConsentRejected:
		return pageErr(http.StatusGone, "This payment was declined",
			"This payment request was declined or cancelled earlier. No money was sent.",
			"If you want to pay after all, go back to the app and start again.", nil)
	}
	return pageErr(http.StatusConflict, "This payment request cannot be used",
		"This payment request is not waiting for your approval.", "Go back to the app and start again.", nil)
}

// withReturn gives a page about consent id the way back to the fintech:
// a "Return to <app>" link to the consent's return_url carrying the same
// outcome parameters the redirect would (see outcomeURL).
//
// The link only reports; following it changes nothing here. So it carries
// the consent's stored status, which is either final (active, rejected,
// expired, revoked) or unchanged (pending, reauth_required: the user may
// start again from the app). It is left out when that status cannot be
// read (it would be a guess), and when the client is revoked (the
// operator may have cut the app off for what lies behind that URL).
//
// Who sees it matters more than what it says: the link names the consent
// (or its payment) and the fintech's URL. Callers pass an id only when
// the browser holds it already (it is in /connect/{id}) or proved it
// started the flow (the callback's state matched its cookie). A browser
// presenting someone else's state, such as an attacker replaying a
// victim's redirect, would otherwise learn the consent id, could open
// /connect/{id} and authorize the victim's consent with its own bunq
// account; pages for foreign or unknown states therefore name no consent
// and only say what to do.
func (s *Service) withReturn(ctx context.Context, err error, consentID string) error {
	var pe *PageError
	if consentID == "" || !errors.As(err, &pe) || pe.Page.ReturnURL != "" {
		return err
	}
	c, gerr := s.consents.ConsentByID(ctx, consentID)
	if gerr != nil {
		return err
	}
	if c, gerr = s.refresh(ctx, c, ""); gerr != nil {
		return err
	}
	cl, gerr := s.clients.Client(ctx, c.ClientID)
	if gerr != nil || cl.Status != tpp.ClientActive {
		return err
	}
	// Copy: the package's fixed pages are shared.
	cp := *pe
	cp.Page.ReturnURL = s.outcomeURL(ctx, c, "")
	cp.Page.ClientName = cl.Name
	return &cp
}

// Connect returns what the consent page shows.
func (s *Service) Connect(ctx context.Context, id string) (*ConnectView, error) {
	c, cl, err := s.usable(ctx, id)
	if err != nil {
		return nil, s.withReturn(ctx, err, id)
	}
	v := &ConnectView{Consent: c, Client: cl, Reauth: c.Status == tpp.ConsentReauthRequired}
	if c.Internal() {
		// The user approves one payment: show it, or show nothing at all
		// rather than a standing permission it is not.
		p, err := s.consents.SinglePaymentOf(ctx, c.ID)
		if err != nil {
			return nil, s.withReturn(ctx, s.unavailable(err), id)
		}
		v.Payment = p
		return v, nil
	}
	for _, sc := range c.Scopes {
		if t, ok := scopeText[sc]; ok {
			v.Scopes = append(v.Scopes, t)
		}
	}
	return v, nil
}

// Begin starts the trip to bunq: it stores a fresh single-use state bound
// to the browser and returns bunq's authorize URL and the cookie to set.
func (s *Service) Begin(ctx context.Context, id string) (authURL string, cookie *http.Cookie, err error) {
	c, _, err := s.usable(ctx, id)
	if err != nil {
		return "", nil, s.withReturn(ctx, err, id)
	}
	if s.payments != nil {
		if err := s.payments.PrepareSingle(ctx, c, api.RequestIDFromContext(ctx)); err != nil {
			return "", nil, s.withReturn(ctx, s.continueFailed(ctx, c.ID, err), id)
		}
	}
	state, nonce := newState(), tpp.RandomToken(32)
	if err := s.states.Put(ctx, state, tpp.OAuthState{ConsentID: c.ID, BrowserHash: hashNonce(nonce), CreatedAt: s.clock.Now().UTC()}); err != nil {
		return "", nil, s.withReturn(ctx, s.unavailable(err), id)
	}
	return s.exchange.AuthCodeURL(state), s.cookies.state(state, nonce, s.states.TTL()), nil
}

// Cancel is the user declining on our page: a pending consent becomes
// rejected; the browser goes back to the fintech.
func (s *Service) Cancel(ctx context.Context, id, requestID string) (string, error) {
	c, _, err := s.usable(ctx, id)
	if err == nil {
		var to string
		if to, err = s.reject(ctx, c, "cancelled", requestID, "cancelled by the user on the consent page"); err == nil {
			return to, nil
		}
	}
	return "", s.withReturn(ctx, err, id)
}

// reject ends a failed or declined authorization and returns where to send
// the browser. A pending consent becomes rejected; a consent waiting for
// re-authorization stays as it is (the old grant may still be renewed) and
// the browser learns why the renewal failed.
func (s *Service) reject(ctx context.Context, c *tpp.Consent, code, requestID, detail string) (string, error) {
	if c.Status != tpp.ConsentPending {
		return s.outcomeURL(ctx, c, code), nil
	}
	nc, err := s.consents.TransitionConsent(ctx, tpp.ConsentTransition{
		ID: c.ID, From: tpp.ConsentPending, To: tpp.ConsentRejected, ErrorCode: code,
		Actor: tpp.ActorPSU, RequestID: requestID, Detail: detail,
	})
	switch {
	case tpp.ErrorCode(err) == tpp.EConflict:
		// It moved meanwhile (expired, or another tab finished): report
		// what it is now, not a rejection that did not happen.
		cur, gerr := s.consents.ConsentByID(ctx, c.ID)
		if gerr != nil {
			return "", s.unavailable(gerr)
		}
		return s.outcomeURL(ctx, cur, ""), nil
	case err != nil:
		return "", s.unavailable(err)
	}
	return s.outcomeURL(ctx, nc, ""), nil
}

// CallbackRequest is what arrives at /oauth/callback.
type CallbackRequest struct {
	State            string
	Code             string
	Error            string
	ErrorDescription string // bank's text; never shown or logged (may echo input)
	// Cookie returns the named cookie's value, "" when absent.
	Cookie    func(name string) string
	RequestID string
	// RemoteIP, ForwardedFor and UserAgent describe the browser, recorded
	// with the consent it activates (PSD2 record of the authorization).
	RemoteIP     string
	ForwardedFor string // X-Forwarded-For as received; not trusted, only recorded
	UserAgent    string
}

// CallbackResult says where the browser goes next.
type CallbackResult struct {
	Redirect string
	// ClearCookie removes the flow's browser-binding cookie.
	ClearCookie *http.Cookie
}

var (
	errStateGone = pageErr(http.StatusBadRequest, "This link has already been used or has expired",
		"For your safety, each trip to bunq works once and for 10 minutes only. Nothing has been shared.",
		"Go back to the app you came from and start the connection again.", nil)
	errForeignBrowser = pageErr(http.StatusBadRequest, "Please finish in the browser where you started",
		"This approval was started in another browser or window, or your browser blocked our cookie. For your safety we stopped here. Nothing has been shared.",
		"Go back to the app you came from and start again in this browser, with cookies allowed.", nil)
)

// Callback finishes the trip to bunq. The state must exist, be fresh, and
// belong to this browser; otherwise the user sees an error page and nothing
// changes. Then the code is exchanged, the user's bunq context is created,
// and the consent becomes active.
func (s *Service) Callback(ctx context.Context, in CallbackRequest) (*CallbackResult, error) {
	res, consentID, err := s.callback(ctx, in)
	if consentID != "" && s.payments != nil {
		s.payments.AfterAuthorization(ctx, consentID, in.RequestID)
		if err == nil {
			res.Redirect = s.settledOutcome(ctx, consentID, res.Redirect)
		}
	}
	if err != nil {
		// consentID is known only once this browser proved it started the
		// flow: a foreign or unknown state's page offers no way back.
		return nil, s.withReturn(ctx, err, consentID)
	}
	return res, nil
}

func (s *Service) callback(ctx context.Context, in CallbackRequest) (_ *CallbackResult, consentID string, _ error) {
	if in.State == "" {
		return nil, "", errStateGone
	}
	// The browser's cookie is checked before the state is used up, so a
	// foreign browser (a forwarded or stolen link) cannot burn the state
	// of the user who started the flow.
	st, err := s.states.Take(ctx, in.State, browserHash(in.Cookie(stateCookieName(in.State))))
	switch {
	case errors.Is(err, tpp.ErrNotFound):
		return nil, "", errStateGone
	case errors.Is(err, tpp.ErrForeignBrowser):
		return nil, "", errForeignBrowser
	case err != nil:
		return nil, "", s.unavailable(err)
	}
	res := &CallbackResult{ClearCookie: s.cookies.clearState(in.State)}
	consentID = st.ConsentID
	if s.clock.Now().Sub(st.CreatedAt) > s.states.TTL() {
		return nil, consentID, errStateGone
	}
	c, err := s.consents.ConsentByID(ctx, st.ConsentID)
	if err != nil {
		return nil, consentID, s.unavailable(err)
	}
	if c, err = s.refresh(ctx, c, in.RequestID); err != nil {
		return nil, consentID, s.unavailable(err)
	}
	if c.Status != tpp.ConsentPending && c.Status != tpp.ConsentReauthRequired {
		return nil, consentID, statusPage(c)
	}

	fail := func(code, detail string, cause error) (*CallbackResult, string, error) {
		if cause != nil {
			s.log.WarnContext(ctx, "authorization failed", "consent_id", c.ID, "reason", code, "error", cause)
		}
		to, err := s.reject(ctx, c, code, in.RequestID, detail)
		if err != nil {
			return nil, consentID, err
		}
		res.Redirect = to
		return res, consentID, nil
	}
	if in.Error != "" {
		code := "access_denied"
		if in.Error != "access_denied" {
			code = "bank_error"
		}
		return fail(code, "bank answered "+safeToken(in.Error), nil)
	}
	if in.Code == "" {
		return fail("bank_error", "callback without code", errors.New("callback without code or error"))
	}
	tok, err := s.redeem(ctx, c, in)
	var pe *PageError
	if errors.As(err, &pe) {
		// Not this flow's code, or bunq may answer later: the consent
		// stays as it is.
		return nil, consentID, pe
	}
	if err != nil {
		return fail("bank_error", "code exchange failed", err)
	}
	user, err := s.createPatiently(ctx, c.ID, tok.AccessToken)
	if errors.Is(err, psd2.ErrRateLimited) {
		return nil, consentID, s.justAMoment(ctx, c.ID, st, in, tok)
	}
	if err != nil {
		return fail("bank_error", "creating the user's bunq context failed", err)
	}
	nc, err := s.consents.TransitionConsent(ctx, tpp.ConsentTransition{
		ID: c.ID, From: c.Status, To: tpp.ConsentActive,
		BunqUserID: user.ID, BunqUserName: user.DisplayName, AccessToken: tok.AccessToken,
		PSUIP: in.RemoteIP, PSUUserAgent: printable(in.UserAgent, maxUserAgent),
		Actor: tpp.ActorPSU, RequestID: in.RequestID, Detail: grantDetail(in),
	})
	if err != nil {
		// The context must not outlive a consent that did not activate.
		if perr := s.bank.Purge(context.WithoutCancel(ctx), c.ID); perr != nil {
			s.log.WarnContext(ctx, "purging context of failed activation", "consent_id", c.ID, "error", perr)
		}
		// Expired or changed meanwhile: report what the consent is now.
		if cur, gerr := s.consents.ConsentByID(ctx, c.ID); gerr == nil {
			if cur, gerr = s.refresh(ctx, cur, in.RequestID); gerr == nil &&
				cur.Status != tpp.ConsentPending && cur.Status != tpp.ConsentReauthRequired {
				res.Redirect = s.outcomeURL(ctx, cur, "")
				return res, consentID, nil
			}
		}
		return nil, consentID, s.unavailable(err)
	}
	res.Redirect = s.outcomeURL(ctx, nc, "")
	return res, consentID, nil
}

// continueFailed is the page for a trip to the bank that OnContinue
// stopped: the consent's own page once it is no longer waiting (a single
// payment the bank refused), otherwise "try again".
func (s *Service) continueFailed(ctx context.Context, id string, err error) error {
	if c, gerr := s.consents.ConsentByID(ctx, id); gerr == nil &&
		c.Status != tpp.ConsentPending && c.Status != tpp.ConsentReauthRequired {
		return statusPage(c)
	}
	return s.unavailable(err)
}

// settledOutcome re-reads a single payment's outcome once AfterBank has
// settled it, so the return URL reports the payment's final status.
func (s *Service) settledOutcome(ctx context.Context, consentID, redirect string) string {
	c, err := s.consents.ConsentByID(ctx, consentID)
	if err != nil || !c.Internal() {
		return redirect
	}
	return s.outcomeURL(ctx, c, "")
}

// maxUserAgent bounds the user agent kept with a consent.
const maxUserAgent = 256

// grantDetail is the audit text of an authorization: where it came from.
func grantDetail(in CallbackRequest) string {
	d := "authorized at bunq from " + in.RemoteIP
	if in.ForwardedFor != "" {
		d += " (forwarded for " + printable(in.ForwardedFor, 128) + ")"
	}
	return d + ", user agent " + strconv.Quote(printable(in.UserAgent, maxUserAgent))
}

// printable keeps browser-supplied text storable and loggable: at most n
// bytes of valid UTF-8, control and format characters replaced.
func printable(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			r = '?'
		}
		if b.Len()+utf8.RuneLen(r) > n {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// safeToken keeps a bank-supplied error code loggable: short, plain ASCII.
func safeToken(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}

// outcomeURL is the fintech's return URL with the consent's outcome:
// consent_id, status (the consent's) and, for a rejection, error. errCode
// overrides the stored error (a failed re-authorization leaves the consent
// as it was but says why).
//
// A single payment's consent is hidden from the fintech, which knows the
// payment instead: the browser returns with payment_id, status (the
// payment's, see singleOutcome) and error. Should the payment not be found
// (it was never stored, or the read failed) the outcome still comes back,
// without an id.
func (s *Service) outcomeURL(ctx context.Context, c *tpp.Consent, errCode string) string {
	if errCode == "" && c.Status == tpp.ConsentRejected {
		errCode = c.ErrorCode
	}
	if !c.Internal() {
		return withQuery(c.ReturnURL, "consent_id", c.ID, "status", string(c.Status), "error", errCode)
	}
	p, err := s.consents.SinglePaymentOf(ctx, c.ID)
	if err != nil {
		s.log.WarnContext(ctx, "single payment of consent not found for the return", "consent_id", c.ID, "error", err)
		p = nil
	}
	status, code := singleOutcome(c, p, errCode)
	var id string
	if p != nil {
		id = p.ID
	}
	return withQuery(c.ReturnURL, "payment_id", id, "status", string(status), "error", code)
}

// singleOutcome is what a single payment's return reports: the payment's
// own status once it is final, otherwise what the authorization means for
// it, as pisp goes on to record it: declined → rejected (with the reason),
// never given in time → failed (consent_expired), given → still pending
// until bunq confirms the execution (seconds; GET /v1/single-payments/{id}
// asks the bank at once).
func singleOutcome(c *tpp.Consent, p *tpp.Payment, errCode string) (tpp.PaymentStatus, string) {
	if p != nil && p.Status.Terminal() {
		return p.Status, p.ErrorCode
	}
	switch c.Status {
	case tpp.ConsentRejected:
		return tpp.PaymentRejected, errCode
	case tpp.ConsentExpired:
		return tpp.PaymentFailed, tpp.EConsentExpired
	}
	return tpp.PaymentPending, ""
}

// withQuery sets the non-empty key/value pairs kv on base's query, keeping
// what the registered URL carries already.
func withQuery(base string, kv ...string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base // registered URLs were validated; this cannot happen
	}
	q := u.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// DefaultActivationPatience is how long a user waits on the OAuth callback
// for a rate-limited context creation before the consent fails.
const DefaultActivationPatience = 45 * time.Second

// createPatiently builds the consent's bunq context, retrying while bunq
// rate limits it (429): activations, rebuilds and re-checks compete for one
// session-server call per 30 s per IP, so a busy minute must not fail the
// user's authorization. Other errors and an exhausted patience fail.
func (s *Service) createPatiently(ctx context.Context, consentID, token string) (bankctx.User, error) {
	deadline := s.clock.Now().Add(s.patience)
	for {
		_, user, err := s.bank.Create(ctx, consentID, token)
		if err == nil || !errors.Is(err, psd2.ErrRateLimited) {
			return user, err
		}
		left := deadline.Sub(s.clock.Now())
		if left <= 0 {
			return user, err
		}
		s.log.InfoContext(ctx, "bunq rate limited the activation; retrying", "consent_id", consentID, "patience_left", left)
		t := time.NewTimer(min(s.retry, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return user, err
		case <-t.C:
		}
	}
}

// justAMomentRefresh is how long the "just a moment" page waits before it
// tries the activation again (bunq allows one session-server call per 30 s
// per IP).
const justAMomentRefresh = 15

// justAMoment is the page after bunq rate limited the activation for
// longer than the user's patience. The consent stays pending: the state is
// put back for the same browser and the token parked under it, bound to
// the code, so the page's refresh (the same callback URL) activates the
// consent without a second trip to bunq. Should that fail, the page
// restarts the flow instead.
func (s *Service) justAMoment(ctx context.Context, consentID string, st tpp.OAuthState, in CallbackRequest, tok *oauth2.Token) *PageError {
	pe := pageErr(http.StatusServiceUnavailable, "Just a moment",
		"bunq is busy, so we could not finish connecting yet. Your approval is kept and your request is still open.",
		"This page tries again by itself in a few seconds. You can also press Continue now.", psd2.ErrRateLimited)
	err := s.states.Put(ctx, in.State, tpp.OAuthState{ConsentID: consentID, BrowserHash: st.BrowserHash})
	if err == nil && !s.park(ctx, in.State, in.Code, tok) {
		err = errors.New("the token could not be kept for the retry")
	}
	if err != nil {
		s.log.WarnContext(ctx, "keeping a rate-limited activation for its retry failed", "consent_id", consentID, "error", err)
		return s.tryAgain(consentID, err)
	}
	s.log.InfoContext(ctx, "bunq rate limited the activation beyond the user's patience; the page retries", "consent_id", consentID)
	pe.Page.RefreshURL = CallbackPath + "?" + url.Values{"state": {in.State}, "code": {in.Code}}.Encode()
	pe.Page.RefreshSeconds = justAMomentRefresh
	return pe
}
