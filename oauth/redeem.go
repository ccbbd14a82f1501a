package oauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/oauth2"

	"github.com/bunqtpp/tpp"
)

// Redeeming the code. The state proves the callback arrives in the browser
// that started a flow; the state in bunq's token answer proves the code was
// issued for that same flow. Without the second check, whoever holds a
// victim's unused code could redeem it in a flow of their own (their own
// state and cookie) and have their consent activated on the victim's bunq
// account.

// Sealer seals what the flow keeps in Redis (*seal.Keyring).
type Sealer interface {
	SealString(plaintext, ad string) (string, error)
	OpenString(sealed, ad string) (string, error)
}

// AuditLog takes the audit records of refused authorizations
// (*sqlite.AuditLog).
type AuditLog interface {
	AppendAudit(ctx context.Context, r tpp.AuditRecord) error
}

var (
	errWrongFlow = pageErr(http.StatusBadRequest, "This approval belongs to another request",
		"The approval that came back from bunq was given for a different connection request, so we did not use it. Nothing has been shared.",
		"Go back to the app you came from and start the connection again.", nil)
	errTokenWithoutState = pageErr(http.StatusBadGateway, "We could not confirm your approval",
		"bunq's answer did not say which request your approval was for, so for your safety we did not use it. Nothing has been shared.",
		"Please try again later. If it keeps happening, contact the app you came from.", nil)
)

// tryAgain is the page after bunq's token endpoint failed in a way that
// may pass: the consent is still waiting, and the link restarts the flow
// for it (a fresh state, and a fresh trip to bunq).
func (s *Service) tryAgain(consentID string, cause error) *PageError {
	pe := pageErr(http.StatusServiceUnavailable, "bunq did not answer in time",
		"We could not finish connecting because bunq did not answer. Nothing has been shared, and your request is still open.",
		"Press Try again to go back to bunq and approve once more.", cause)
	pe.Page.RetryURL = "/connect/" + url.PathEscape(consentID)
	return pe
}

// redeem trades the callback's code for an access token of this flow: a
// token parked for this flow's state, or bunq's answer, whose state must be
// this callback's. A *PageError leaves the consent as it is; any other
// error is a refusal by the bank.
func (s *Service) redeem(ctx context.Context, c *tpp.Consent, in CallbackRequest) (*oauth2.Token, error) {
	if tok := s.unpark(ctx, in.State, in.Code); tok != nil {
		return tok, nil
	}
	tok, err := s.exchangeCode(ctx, in.Code)
	var xe *ExchangeError
	if errors.As(err, &xe) && xe.Transient {
		return nil, s.tryAgain(c.ID, err)
	}
	if err != nil {
		return nil, err
	}
	got := TokenState(tok)
	switch {
	case got == "" && s.acceptNoState:
		s.log.WarnContext(ctx, "token answer without state accepted (accept-token-without-state is on)", "consent_id", c.ID)
		return tok, nil
	case got == "":
		s.refused(ctx, c, in.RequestID, "token answer without state: code not used")
		return nil, errTokenWithoutState
	case subtle.ConstantTimeCompare([]byte(got), []byte(in.State)) != 1:
		detail := "authorization code was issued for another flow: refused"
		if s.park(ctx, got, in.Code, tok) {
			detail += " (its token is kept for its own flow)"
		}
		s.refused(ctx, c, in.RequestID, detail)
		return nil, errWrongFlow
	}
	return tok, nil
}

// exchangeCode asks bunq's token endpoint, retrying failures that may pass
// (at most exchangeAttempts calls). A refusal after such a failure is
// reported as the failure: the lost answer may have used the code up.
func (s *Service) exchangeCode(ctx context.Context, code string) (*oauth2.Token, error) {
	// The user waits on this page: all attempts together get one budget.
	ctx, cancel := context.WithTimeout(ctx, exchangeBudget)
	defer cancel()
	var first error
	for attempt := range s.exchangeAttempts {
		if attempt > 0 {
			t := time.NewTimer(s.exchangeBackoff * time.Duration(attempt))
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, &ExchangeError{Err: ctx.Err(), Transient: true}
			case <-t.C:
			}
		}
		tok, err := s.exchange.Exchange(ctx, code)
		var xe *ExchangeError
		switch {
		case err == nil:
			return tok, nil
		case errors.As(err, &xe) && xe.Transient:
			if first == nil {
				first = err
			}
			s.log.WarnContext(ctx, "token exchange failed, may pass", "attempt", attempt+1, "error", err)
			continue
		case first != nil:
			return nil, first
		}
		return nil, err
	}
	return nil, first
}

// exchangeBudget bounds the token requests of one callback, retries
// included.
const exchangeBudget = 20 * time.Second

// refused records why an authorization was not used; the consent stays as
// it was.
func (s *Service) refused(ctx context.Context, c *tpp.Consent, requestID, detail string) {
	s.log.WarnContext(ctx, "authorization refused", "consent_id", c.ID, "reason", detail)
	if s.audit == nil {
		return
	}
	if err := s.audit.AppendAudit(context.WithoutCancel(ctx), tpp.AuditRecord{
		Actor: tpp.ActorSystem, Action: tpp.AuditConsentAuthRefused, RequestID: requestID,
		ClientID: c.ClientID, ConsentID: c.ID, From: string(c.Status), To: string(c.Status), Detail: detail,
	}); err != nil {
		s.log.ErrorContext(ctx, "auditing a refused authorization failed", "consent_id", c.ID, "error", err)
	}
}

// parkedToken is what a flow's own callback finds when another flow
// redeemed its code first: the token, bound to the code's hash.
type parkedToken struct {
	CodeHash    string `json:"code_hash"`
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
}

const parkAD = "oauth-parked-token"

func codeHash(code string) string {
	sum := sha256.Sum256([]byte("code:" + code))
	return hex.EncodeToString(sum[:])
}

// park keeps tok, sealed, for the flow whose state bunq named, while that
// state lives: bunq answers a code once, and the user of that flow is
// still to arrive with it. It reports whether it did.
func (s *Service) park(ctx context.Context, state, code string, tok *oauth2.Token) bool {
	b, err := json.Marshal(parkedToken{CodeHash: codeHash(code), AccessToken: tok.AccessToken, TokenType: tok.TokenType})
	if err != nil {
		return false
	}
	sealed, err := s.sealer.SealString(string(b), parkAD)
	if err != nil {
		s.log.ErrorContext(ctx, "sealing a token for its own flow failed", "error", err)
		return false
	}
	ok, err := s.states.Park(ctx, state, []byte(sealed))
	if err != nil {
		s.log.WarnContext(ctx, "keeping a token for its own flow failed", "error", err)
	}
	return ok
}

// unpark returns the token parked for state when it was redeemed from
// code; nil otherwise (and a parked token for another code is dropped).
func (s *Service) unpark(ctx context.Context, state, code string) *oauth2.Token {
	b, err := s.states.TakeParked(ctx, state)
	if err != nil {
		if !errors.Is(err, tpp.ErrNotFound) {
			s.log.WarnContext(ctx, "reading a parked token failed", "error", err)
		}
		return nil
	}
	raw, err := s.sealer.OpenString(string(b), parkAD)
	var p parkedToken
	if err == nil {
		err = json.Unmarshal([]byte(raw), &p)
	}
	if err != nil {
		s.log.WarnContext(ctx, "a parked token could not be opened", "error", err)
		return nil
	}
	if subtle.ConstantTimeCompare([]byte(p.CodeHash), []byte(codeHash(code))) != 1 {
		return nil
	}
	return &oauth2.Token{AccessToken: p.AccessToken, TokenType: p.TokenType}
}
