package oauth

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/api"
	"github.com/bunqtpp/tpp/bankctx"
	"github.com/bunqtpp/tpp/psd2"
	"github.com/bunqtpp/tpp/seal"
)

// Consents is the consent store (the sqlite store implements it).
type Consents interface {
	CreateConsent(ctx context.Context, in tpp.NewConsent) (*tpp.Consent, error)
	Consent(ctx context.Context, clientID, id string) (*tpp.Consent, error)
	ConsentByID(ctx context.Context, id string) (*tpp.Consent, error)
	ListConsents(ctx context.Context, f tpp.ConsentFilter, p tpp.PageRequest) (tpp.Page[*tpp.Consent], error)
	ConsentsByBunqUser(ctx context.Context, bunqUserID int64) ([]*tpp.Consent, error)
	TransitionConsent(ctx context.Context, t tpp.ConsentTransition) (*tpp.Consent, error)
	// SinglePaymentOf returns the single payment a TPP-made consent was
	// created for (EPaymentNotFound when none), so the browser can return
	// with the payment's id and outcome.
	SinglePaymentOf(ctx context.Context, consentID string) (*tpp.Payment, error)
}

// consentNotFound is the store's answer for an unknown id, word for word,
// so a hidden consent cannot be told from one that does not exist.
func consentNotFound(id string) error {
	return tpp.Errorf(tpp.EConsentNotFound, "consent %q not found", id)
}

// Deadlines applies a consent's deadline, audited, so a status read is the
// true one (*consent.Gate, the one home of the rule).
type Deadlines interface {
	ApplyDeadline(ctx context.Context, c *tpp.Consent) (*tpp.Consent, bool, error)
}

// Clients looks up fintech clients (for their names and return URLs).
type Clients interface {
	Client(ctx context.Context, id string) (*tpp.FintechClient, error)
}

// States keeps OAuth states single-use, short-lived and bound to the
// browser (*redis.StateStore).
type States interface {
	Put(ctx context.Context, state string, st tpp.OAuthState) error
	// Take uses state up only for the browser whose cookie hashes to
	// browserHash (tpp.ErrForeignBrowser otherwise, the state stays).
	Take(ctx context.Context, state, browserHash string) (tpp.OAuthState, error)
	// Park keeps a blob for a live state; TakeParked reads it once.
	Park(ctx context.Context, state string, blob []byte) (bool, error)
	TakeParked(ctx context.Context, state string) ([]byte, error)
	TTL() time.Duration
}

// CloseQueue keeps revoked consents whose close must be retried
// (*sqlite.ConsentService; janitor.Janitor works it off).
type CloseQueue interface {
	QueueClose(ctx context.Context, consentID, reason string) error
}

// BankContexts creates and ends the users' bunq contexts (*bankctx.Provider).
type BankContexts interface {
	Create(ctx context.Context, consentID, accessToken string) (*psd2.Context, bankctx.User, error)
	Close(ctx context.Context, consentID string) error
	Purge(ctx context.Context, consentID string) error
	Verify(ctx context.Context, c *tpp.Consent) error
}

// Config holds the service's settings and dependencies.
type Config struct {
	// PublicURL is the TPP's public base URL (https://tpp.example). The
	// authorize_url and the OAuth redirect URI are built from it. Cookies
	// are Secure when it is https; plain http is for local development only.
	PublicURL string
	Bank      BankOAuth
	// AcceptTokenWithoutState accepts a token answer from bunq that names
	// no state (an older answer). Off by default: the code of such an
	// answer cannot be proven to belong to the callback's flow.
	AcceptTokenWithoutState bool
	// ExchangeAttempts bounds the token requests for one callback when
	// bunq's token endpoint fails in a way that may pass (default 3), with
	// ExchangeBackoff (default 200ms) times the attempt between them.
	ExchangeAttempts int
	ExchangeBackoff  time.Duration
	// CSRFKey signs the consent page's form tokens. Replicas must share it;
	// at least 32 bytes. Empty means a random key per process (one replica).
	CSRFKey []byte

	Consents     Consents
	Clients      Clients
	States       States
	BankContexts BankContexts
	Deadlines    Deadlines
	// Payments, when set, takes part in the browser flow for single
	// payments (*pisp.Service).
	Payments Payments
	// Closes, when set, takes the revoked consents whose bunq session or
	// Redis context could not be closed at once, for the janitor to retry.
	Closes CloseQueue
	// Audit, when set, records authorizations that came back but were not
	// used (and why).
	Audit AuditLog
	// Sealer seals a token kept in Redis for its own flow (see redeem).
	// Replicas must share it; nil means a random key per process.
	Sealer Sealer
	// ActivationPatience is how long the OAuth callback keeps retrying a
	// context creation that bunq rate limits (session-server: 1 per 30 s per
	// IP, shared by every activation) before it fails the consent; 0 means
	// DefaultActivationPatience. ActivationRetry is the pause between tries
	// (0: 2 s).
	ActivationPatience, ActivationRetry time.Duration

	Clock  tpp.Clock
	Logger *slog.Logger
}

// Service is the logic behind the consents API and the browser flow.
type Service struct {
	public   *url.URL
	exchange *Exchanger
	csrfKey  []byte
	cookies  cookies
	consents Consents
	clients  Clients
	states   States
	bank     BankContexts
	due      Deadlines
	payments Payments
	closes   CloseQueue
	audit    AuditLog
	sealer   Sealer
	patience time.Duration
	retry    time.Duration

	acceptNoState    bool
	exchangeAttempts int
	exchangeBackoff  time.Duration
	clock            tpp.Clock
	log              *slog.Logger
}

// CallbackPath is the OAuth redirect path registered at bunq.
const CallbackPath = "/oauth/callback"

// New validates cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	pu, err := url.Parse(strings.TrimRight(cfg.PublicURL, "/"))
	if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" || pu.RawQuery != "" {
		return nil, fmt.Errorf("oauth: public URL %q is not an absolute http(s) base URL", cfg.PublicURL)
	}
	if cfg.Consents == nil || cfg.Clients == nil || cfg.States == nil || cfg.BankContexts == nil || cfg.Deadlines == nil {
		return nil, errors.New("oauth: Consents, Clients, States, BankContexts and Deadlines are required")
	}
	if cfg.Bank.RedirectURL == "" {
		cfg.Bank.RedirectURL = pu.String() + CallbackPath
	}
	ex, err := NewExchanger(cfg.Bank)
	if err != nil {
		return nil, err
	}
	key := cfg.CSRFKey
	if len(key) == 0 {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("oauth: CSRF key: %w", err)
		}
	} else if len(key) < 32 {
		return nil, errors.New("oauth: CSRF key must be at least 32 bytes")
	}
	clock := cfg.Clock
	if clock == nil {
		clock = tpp.SystemClock{}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sealer := cfg.Sealer
	if sealer == nil {
		mk := make([]byte, 32)
		if _, err := rand.Read(mk); err != nil {
			return nil, fmt.Errorf("oauth: sealing key: %w", err)
		}
		if sealer, err = seal.NewKeyring(seal.Key{ID: "oauth", Key: mk}); err != nil {
			return nil, fmt.Errorf("oauth: sealing key: %w", err)
		}
	}
	attempts, backoff := cfg.ExchangeAttempts, cfg.ExchangeBackoff
	if attempts <= 0 {
		attempts = 3
	}
	if backoff <= 0 {
		backoff = 200 * time.Millisecond
	}
	if pu.Scheme == "http" && !isLoopback(pu.Hostname()) {
		log.Warn("oauth: the public URL is plain http: cookies cannot be Secure; use https outside development", "public_url", pu.String())
	}
	return &Service{
		public: pu, exchange: ex, csrfKey: key, cookies: cookies{secure: pu.Scheme == "https"},
		consents: cfg.Consents, clients: cfg.Clients, states: cfg.States, bank: cfg.BankContexts, due: cfg.Deadlines,
		payments: cfg.Payments, closes: cfg.Closes, audit: cfg.Audit, sealer: sealer,
		acceptNoState: cfg.AcceptTokenWithoutState, exchangeAttempts: attempts, exchangeBackoff: backoff,
		clock: clock, log: log,
		patience: cmp.Or(cfg.ActivationPatience, DefaultActivationPatience), retry: cmp.Or(cfg.ActivationRetry, 2*time.Second),
	}, nil
}

// AuthorizeURL is where the fintech sends its user: {public}/connect/{id}.
func (s *Service) AuthorizeURL(consentID string) string {
	return AuthorizeURLs(s.public.String())(consentID)
}

// ---- consents API

// CreateConsentRequest is the body of POST /v1/consents.
type CreateConsentRequest struct {
	UserRef   string   `json:"user_ref"`
	Scopes    []string `json:"scopes"`
	ReturnURL string   `json:"return_url"`
}

// maxUserRef bounds the fintech's user reference.
const maxUserRef = 128

// CreateConsent makes a pending consent for client.
func (s *Service) CreateConsent(ctx context.Context, client *tpp.FintechClient, in CreateConsentRequest, requestID string) (*tpp.Consent, error) {
	ref := strings.TrimSpace(in.UserRef)
	if ref == "" {
		return nil, tpp.Errorf(tpp.EInvalid, "user_ref is required: your own reference for the user")
	}
	if len(in.UserRef) > maxUserRef {
		return nil, tpp.Errorf(tpp.EInvalid, "user_ref is longer than %d characters", maxUserRef)
	}
	if err := tpp.CheckDisplayText("user_ref", tpp.EInvalid, in.UserRef); err != nil {
		return nil, err
	}
	if strings.HasPrefix(ref, tpp.InternalUserRefPrefix) {
		return nil, tpp.Errorf(tpp.EInvalid, "user_ref must not start with %q: the prefix is reserved", tpp.InternalUserRefPrefix)
	}
	scopes, err := tpp.ParseScopes(in.Scopes)
	if err != nil {
		return nil, err
	}
	if in.ReturnURL == "" {
		return nil, tpp.Errorf(tpp.EInvalidReturnURL, "return_url is required")
	}
	if !client.AllowsReturnURL(in.ReturnURL) {
		return nil, tpp.Errorf(tpp.EInvalidReturnURL, "return_url must exactly match one of the return URLs registered for your client")
	}
	return s.consents.CreateConsent(ctx, tpp.NewConsent{
		ClientID: client.ID, UserRef: in.UserRef, Scopes: scopes, ReturnURL: in.ReturnURL,
		Actor: tpp.ActorClient(client.ID), RequestID: requestID,
	})
}

// Consent returns a client's consent, first applying a due expiry or
// re-authentication so the status read is the true one. A consent the TPP
// made for a single payment is not found: the payment is the fintech's
// handle (GET /v1/single-payments/{id}).
func (s *Service) Consent(ctx context.Context, clientID, id string) (*tpp.Consent, error) {
	c, err := s.consents.Consent(ctx, clientID, id)
	if err != nil {
		return nil, err
	}
	if c.Internal() {
		return nil, consentNotFound(id)
	}
	return s.refresh(ctx, c, "")
}

// ListConsents pages through a client's consents, newest first. The store
// leaves out the consents the TPP made for itself.
func (s *Service) ListConsents(ctx context.Context, clientID, userRef string, p tpp.PageRequest) (tpp.Page[*tpp.Consent], error) {
	page, err := s.consents.ListConsents(ctx, tpp.ConsentFilter{ClientID: clientID, UserRef: userRef}, p)
	if err != nil {
		return page, err
	}
	for i, c := range page.Items {
		if rc, err := s.refresh(ctx, c, ""); err == nil {
			page.Items[i] = rc
		}
	}
	return page, nil
}

// refresh applies a consent's deadline (Deadlines), audited with
// requestID when ctx carries none.
func (s *Service) refresh(ctx context.Context, c *tpp.Consent, requestID string) (*tpp.Consent, error) {
	if requestID != "" && api.RequestIDFromContext(ctx) == "" {
		ctx = api.WithRequestID(ctx, requestID)
	}
	nc, _, err := s.due.ApplyDeadline(ctx, c)
	return nc, err
}

// Revoke withdraws a consent for its client: the consent becomes revoked,
// the user's session at bunq is deleted and the stored context purged.
// Revoking a revoked (or never active) consent changes nothing.
func (s *Service) Revoke(ctx context.Context, clientID, id, requestID string) (*tpp.Consent, error) {
	for range 3 {
		c, err := s.consents.Consent(ctx, clientID, id)
		if err != nil {
			return nil, err
		}
		if c.Internal() {
			// A single payment's consent belongs to the payment, whose own
			// life decides its end.
			return nil, consentNotFound(id)
		}
		if c.Status.Terminal() {
			// Revoked already, or rejected/expired: nothing left to withdraw.
			// A context may linger if an earlier attempt failed halfway.
			if c.Status == tpp.ConsentRevoked {
				s.closeBank(ctx, c.ID)
			}
			return c, nil
		}
		nc, err := s.consents.TransitionConsent(ctx, tpp.ConsentTransition{
			ID: c.ID, ClientID: clientID, From: c.Status, To: tpp.ConsentRevoked,
			Actor: tpp.ActorClient(clientID), RequestID: requestID, Detail: "revoked by the client",
		})
		if tpp.ErrorCode(err) == tpp.EConflict {
			continue // it moved under us; look again
		}
		if err != nil {
			return nil, err
		}
		s.closeBank(ctx, c.ID)
		return nc, nil
	}
	return nil, tpp.Errorf(tpp.EConflict, "consent %s is changing; try again", id)
}

// closeBank ends the bunq session and purges the context. The consent is
// already revoked locally, which is what protects the user; a failure is
// logged and queued for the janitor to retry (Redis or the bank may be
// back by then), not returned.
func (s *Service) closeBank(ctx context.Context, consentID string) {
	err := s.bank.Close(ctx, consentID)
	if err == nil {
		return
	}
	s.log.WarnContext(ctx, "closing bunq session of revoked consent failed", "consent_id", consentID, "error", err)
	if s.closes == nil {
		return
	}
	if qerr := s.closes.QueueClose(context.WithoutCancel(ctx), consentID, err.Error()); qerr != nil {
		s.log.ErrorContext(ctx, "queueing the close of a revoked consent failed", "consent_id", consentID, "error", qerr)
	}
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
