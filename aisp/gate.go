// Package aisp is the account information service (PSD2 AISP, scope
// "accounts"): a user's bunq accounts, balances and transactions as one
// JSON API, read through the consent's own bank context, cached briefly in
// Redis and held to the PSD2 access frequency.
//
// It also exports the consent gate and account ids that cbpii shares: both
// roles open a consent the same way and name accounts the same way.
package aisp

import (
	"context"
	"errors"
	"log/slog"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/bankctx"
	"github.com/bunqtpp/tpp/bankerr"
	"github.com/bunqtpp/tpp/psd2"
)

// Consents looks up a client's consent, first applying a due expiry or
// re-authorization (*oauth.Service), and names the page where the user
// authorizes it again.
type Consents interface {
	Consent(ctx context.Context, clientID, id string) (*tpp.Consent, error)
	AuthorizeURL(consentID string) string
}

// BankContexts hands out the consent's live bunq context and re-checks its
// grant (*bankctx.Provider).
type BankContexts interface {
	Get(ctx context.Context, c *tpp.Consent) (*psd2.Context, error)
	Verify(ctx context.Context, c *tpp.Consent) error
	Purge(ctx context.Context, consentID string) error
}

// Transitions moves a consent through the root status machine, audited
// (*sqlite.ConsentService).
type Transitions interface {
	TransitionConsent(ctx context.Context, t tpp.ConsentTransition) (*tpp.Consent, error)
}

// ReauthError is consent_reauth_required with the link that fixes it. The
// handler puts URL into the problem document as reauthorize_url.
type ReauthError struct {
	Err *tpp.Error
	URL string
}

func (e *ReauthError) Error() string { return e.Err.Error() }
func (e *ReauthError) Unwrap() error { return e.Err }

// Gate opens consents for a role's requests: the consent of this client,
// active, with the scope; and turns bank failures into API errors, revoking
// a consent whose grant the bank confirms is gone.
type Gate struct {
	consents Consents
	contexts BankContexts
	store    Transitions
	clock    tpp.Clock
	log      *slog.Logger
}

// GateConfig holds a Gate's dependencies.
type GateConfig struct {
	Consents     Consents // *oauth.Service
	BankContexts BankContexts
	Transitions  Transitions // the consent store
	Clock        tpp.Clock   // tpp.SystemClock when nil
	Logger       *slog.Logger
}

// NewGate returns a Gate.
func NewGate(cfg GateConfig) (*Gate, error) {
	if cfg.Consents == nil || cfg.BankContexts == nil || cfg.Transitions == nil {
		return nil, errors.New("aisp: gate needs Consents, BankContexts and Transitions")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	clock := cfg.Clock
	if clock == nil {
		clock = tpp.SystemClock{}
	}
	return &Gate{consents: cfg.Consents, contexts: cfg.BankContexts, store: cfg.Transitions, clock: clock, log: log}, nil
}

// Open returns the client's consent if it is active and grants scope.
// Errors: consent_not_found, consent_reauth_required (*ReauthError),
// consent_revoked, consent_expired, consent_not_active (pending, rejected),
// scope_not_granted.
func (g *Gate) Open(ctx context.Context, clientID, consentID string, scope tpp.Scope) (*tpp.Consent, error) {
	c, err := g.consents.Consent(ctx, clientID, consentID)
	if err != nil {
		return nil, err
	}
	if c.Status == tpp.ConsentActive && c.ReauthDueAt != nil && !g.clock.Now().Before(*c.ReauthDueAt) {
		// Consents normally applies this itself; a store that does not
		// must still never serve a consent past its PSD2 180 days.
		c = g.reauthDue(ctx, c)
	}
	switch c.Status {
	case tpp.ConsentActive:
	case tpp.ConsentReauthRequired:
		return nil, &ReauthError{
			Err: tpp.Errorf(tpp.EConsentReauthRequired, "the user must authorize consent %s again (PSD2 180-day rule); send them to reauthorize_url", c.ID),
			URL: g.consents.AuthorizeURL(c.ID),
		}
	case tpp.ConsentRevoked:
		return nil, tpp.Errorf(tpp.EConsentRevoked, "consent %s was revoked", c.ID)
	case tpp.ConsentExpired:
		return nil, tpp.Errorf(tpp.EConsentExpired, "consent %s was never authorized and expired", c.ID)
	default:
		return nil, tpp.Errorf(tpp.EConsentNotActive, "consent %s is %s, not active", c.ID, c.Status)
	}
	if !c.HasScope(scope) {
		return nil, tpp.Errorf(tpp.EScopeNotGranted, "consent %s does not include the scope %q", c.ID, scope)
	}
	return c, nil
}

// Context returns the consent's live bunq context, errors mapped.
func (g *Gate) Context(ctx context.Context, c *tpp.Consent) (*psd2.Context, error) {
	bc, err := g.contexts.Get(ctx, c)
	if err != nil {
		return nil, g.BankError(ctx, c, err)
	}
	return bc, nil
}

// BankError maps a failed bank call for consent c to an API error
// (bankerr). An authorization failure is checked again with the bank first:
// when the bank confirms the grant is gone, the consent becomes revoked
// (actor bank, audited), its context is purged and consent_revoked is
// returned. Otherwise the failure maps as bankerr.FromBank says.
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

// reauthDue moves an active consent past its re-authorization date to
// reauth_required (audited) and drops its context. Whatever happens, the
// returned consent is not active.
func (g *Gate) reauthDue(ctx context.Context, c *tpp.Consent) *tpp.Consent {
	nc, err := g.store.TransitionConsent(ctx, tpp.ConsentTransition{
		ID: c.ID, From: tpp.ConsentActive, To: tpp.ConsentReauthRequired, Actor: tpp.ActorSystem,
		RequestID: requestID(ctx), Detail: "deadline passed",
	})
	if err != nil {
		g.log.WarnContext(ctx, "moving a consent due for re-authorization failed", "consent_id", c.ID, "error", err)
		cc := *c
		cc.Status = tpp.ConsentReauthRequired
		return &cc
	}
	if err := g.contexts.Purge(ctx, c.ID); err != nil {
		g.log.WarnContext(ctx, "purging the context of a consent due for re-authorization failed", "consent_id", c.ID, "error", err)
	}
	return nc
}

// revoke records the bank's withdrawal. The answer to the client is
// consent_revoked whatever happens here; failures are logged.
func (g *Gate) revoke(ctx context.Context, c *tpp.Consent) {
	ctx = context.WithoutCancel(ctx)
	_, err := g.store.TransitionConsent(ctx, tpp.ConsentTransition{
		ID: c.ID, From: tpp.ConsentActive, To: tpp.ConsentRevoked, Actor: tpp.ActorBank,
		RequestID: requestID(ctx), Detail: "grant withdrawn at bunq (bank refused a read; confirmed with the bank)",
	})
	if err != nil && tpp.ErrorCode(err) != tpp.EConflict {
		g.log.WarnContext(ctx, "recording the bank's revocation failed", "consent_id", c.ID, "error", err)
	}
	if err := g.contexts.Purge(ctx, c.ID); err != nil {
		g.log.WarnContext(ctx, "purging the context of a revoked consent failed", "consent_id", c.ID, "error", err)
	}
	g.log.InfoContext(ctx, "consent revoked by the bank", "consent_id", c.ID)
}
