// Package consent is where a consent may be used: the one gate every role
// (aisp, pisp, cbpii), the consents API (oauth) and the janitor go through.
// It applies a consent's deadline (pending → expired, active →
// reauth_required, audited, the bank context purged), answers a request
// that may not use the consent with the one error for its status
// (tpp.Consent.UseError, with reauthorize_url), and records a grant the
// bank confirms is gone (revoked, audited, context purged).
package consent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/api"
	"github.com/bunqtpp/tpp/bankctx"
	"github.com/bunqtpp/tpp/bankerr"
	"github.com/bunqtpp/tpp/psd2"
)

// Store reads consents and moves them through the root status machine,
// audited (the consent store).
type Store interface {
	// Consent is scoped to the client: another client's consent is not found.
	Consent(ctx context.Context, clientID, id string) (*tpp.Consent, error)
	ConsentByID(ctx context.Context, id string) (*tpp.Consent, error)
	TransitionConsent(ctx context.Context, t tpp.ConsentTransition) (*tpp.Consent, error)
}

// BankContexts hands out the consent's live bunq context, re-checks its
// grant and forgets it (*bankctx.Provider).
type BankContexts interface {
	Get(ctx context.Context, c *tpp.Consent) (*psd2.Context, error)
	Verify(ctx context.Context, c *tpp.Consent) error
	Purge(ctx context.Context, consentID string) error
}

// Config holds a Gate's dependencies.
type Config struct {
	Store        Store
	BankContexts BankContexts
	// AuthorizeURL names the page where the user authorizes a consent
	// ((*oauth.Service).AuthorizeURL): the reauthorize_url of
	// consent_reauth_required.
	AuthorizeURL func(consentID string) string
	Clock        tpp.Clock // tpp.SystemClock when nil
	Logger       *slog.Logger
}

// Gate decides whether a request may use a consent. Safe for concurrent
// use.
type Gate struct {
	store        Store
	contexts     BankContexts
	authorizeURL func(string) string
	clock        tpp.Clock
	log          *slog.Logger
}

// NewGate returns a Gate.
func NewGate(cfg Config) (*Gate, error) {
	if cfg.Store == nil || cfg.BankContexts == nil || cfg.AuthorizeURL == nil {
		return nil, errors.New("consent: gate needs Store, BankContexts and AuthorizeURL")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	clock := cfg.Clock
	if clock == nil {
		clock = tpp.SystemClock{}
	}
	return &Gate{store: cfg.Store, contexts: cfg.BankContexts, authorizeURL: cfg.AuthorizeURL, clock: clock, log: log}, nil
}

// notFound is the store's answer for an unknown id, word for word, so a
// hidden consent cannot be told from one that does not exist.
func notFound(id string) error {
	return tpp.Errorf(tpp.EConsentNotFound, "consent %q not found", id)
}

// Open returns the client's consent if a request may use it now: its
// deadline applied, active, granting scope. Errors: consent_not_found
// (unknown, another client's, or one the TPP made for a single payment),
// the status's error (tpp.Consent.UseError; consent_reauth_required
// carries ReauthorizeURL), then scope_not_granted.
func (g *Gate) Open(ctx context.Context, clientID, consentID string, scope tpp.Scope) (*tpp.Consent, error) {
	c, err := g.find(ctx, clientID, consentID)
	if err != nil {
		return nil, err
	}
	if err := g.UseError(c); err != nil {
		return nil, err
	}
	if !c.HasScope(scope) {
		return nil, tpp.Errorf(tpp.EScopeNotGranted, "consent %s does not include the scope %q", c.ID, scope)
	}
	return c, nil
}

// Read returns the client's consent granting scope, its deadline applied,
// in whatever status: what was made under a consent stays readable after
// its end. Errors: consent_not_found, scope_not_granted.
func (g *Gate) Read(ctx context.Context, clientID, consentID string, scope tpp.Scope) (*tpp.Consent, error) {
	c, err := g.find(ctx, clientID, consentID)
	if err != nil {
		return nil, err
	}
	if !c.HasScope(scope) {
		return nil, tpp.Errorf(tpp.EScopeNotGranted, "consent %s does not include the scope %q", c.ID, scope)
	}
	return c, nil
}

// UseError is why a request may not use c (nil when active), with the
// page that fixes a consent due for re-authorization.
func (g *Gate) UseError(c *tpp.Consent) error {
	err := c.UseError()
	var e *tpp.Error
	if errors.As(err, &e) && e.Code == tpp.EConsentReauthRequired {
		e.ReauthorizeURL = g.authorizeURL(c.ID)
	}
	return err
}

// find reads the client's consent under the consents API and applies its
// deadline.
func (g *Gate) find(ctx context.Context, clientID, consentID string) (*tpp.Consent, error) {
	if clientID == "" {
		return nil, notFound(consentID)
	}
	c, err := g.store.Consent(ctx, clientID, consentID)
	if err != nil {
		return nil, err
	}
	if c.Internal() {
		// A single payment's consent is the payment's: under the consents
		// API it does not exist.
		return nil, notFound(consentID)
	}
	c, _, err = g.ApplyDeadline(ctx, c)
	return c, err
}

// ApplyDeadline moves c if its deadline has passed (tpp.Consent.StatusAt):
// pending → expired, active → reauth_required (the store drops the token;
// the context is purged here). The move is audited as the system's, with
// the request id of ctx. It returns the consent as it now is and whether
// this call moved it; when another request or replica moved it first, the
// consent is read again.
func (g *Gate) ApplyDeadline(ctx context.Context, c *tpp.Consent) (*tpp.Consent, bool, error) {
	to := c.StatusAt(g.clock.Now())
	if to == c.Status {
		return c, false, nil
	}
	nc, err := g.store.TransitionConsent(ctx, tpp.ConsentTransition{
		ID: c.ID, From: c.Status, To: to, Actor: tpp.ActorSystem,
		RequestID: api.RequestIDFromContext(ctx), Detail: "deadline passed",
	})
	if tpp.ErrorCode(err) == tpp.EConflict {
		nc, err = g.store.ConsentByID(ctx, c.ID)
		return nc, false, err
	}
	if err != nil {
		return nil, false, err
	}
	if to == tpp.ConsentReauthRequired {
		if err := g.contexts.Purge(ctx, c.ID); err != nil {
			g.log.WarnContext(ctx, "purging the context of a consent due for re-authorization failed", "consent_id", c.ID, "error", err)
		}
	}
	return nc, true, nil
}

// Context returns the consent's live bunq context, errors mapped as
// BankError maps them.
func (g *Gate) Context(ctx context.Context, c *tpp.Consent) (*psd2.Context, error) {
	bc, err := g.contexts.Get(ctx, c)
	if err != nil {
		return nil, g.BankError(ctx, c, err)
	}
	return bc, nil
}

// BankError maps a failed bank call made with consent c's context to an
// API error (bankerr). An authorization failure is checked again with the
// bank first: when the bank confirms the grant is gone, the consent
// becomes revoked (actor bank, audited), its context is purged and
// consent_revoked is returned.
func (g *Gate) BankError(ctx context.Context, c *tpp.Consent, err error) error {
	if err == nil {
		return nil
	}
	mapped := bankerr.Resolve(ctx, err, func(ctx context.Context) error { return g.contexts.Verify(ctx, c) })
	if bankerr.Revoked(mapped) || errors.Is(err, bankctx.ErrGrantRevoked) {
		g.revoke(ctx, c)
		return tpp.Wrap(err, tpp.EConsentRevoked, "the user withdrew consent %s at the bank", c.ID)
	}
	return mapped
}

// RecheckGrant asks the bank whether c's grant still holds and revokes c
// when the bank refuses it. Package notify calls it for each consent an
// OAUTH callback may concern: the callback itself is only a hint.
func (g *Gate) RecheckGrant(ctx context.Context, c *tpp.Consent, requestID string) error {
	err := g.contexts.Verify(ctx, c)
	if err == nil {
		g.log.InfoContext(ctx, "OAUTH callback: grant still valid", "consent_id", c.ID)
		return nil
	}
	if !errors.Is(err, bankctx.ErrGrantRevoked) {
		return fmt.Errorf("consent: re-check consent %s with the bank: %w", c.ID, err)
	}
	return g.recordRevocation(ctx, c, requestID, "grant withdrawn at bunq (OAUTH callback, confirmed with the bank)")
}

// revoke records the bank's withdrawal found by a refused call. The answer
// to the client is consent_revoked whatever happens here; failures are
// logged.
func (g *Gate) revoke(ctx context.Context, c *tpp.Consent) {
	ctx = context.WithoutCancel(ctx)
	err := g.recordRevocation(ctx, c, api.RequestIDFromContext(ctx), "grant withdrawn at bunq (bank refused a call; confirmed with the bank)")
	if err != nil {
		g.log.WarnContext(ctx, "recording the bank's revocation failed", "consent_id", c.ID, "error", err)
	}
}

// recordRevocation moves c to revoked (actor bank, audited) and purges its
// context. A consent someone else moved first is not an error.
func (g *Gate) recordRevocation(ctx context.Context, c *tpp.Consent, requestID, detail string) error {
	_, err := g.store.TransitionConsent(ctx, tpp.ConsentTransition{
		ID: c.ID, From: c.Status, To: tpp.ConsentRevoked, Actor: tpp.ActorBank, RequestID: requestID, Detail: detail,
	})
	if err != nil && tpp.ErrorCode(err) != tpp.EConflict {
		return err
	}
	if perr := g.contexts.Purge(ctx, c.ID); perr != nil {
		return fmt.Errorf("consent: purge the context of revoked consent %s: %w", c.ID, perr)
	}
	if err == nil {
		g.log.InfoContext(ctx, "consent revoked by the bank", "consent_id", c.ID)
	}
	return nil
}
