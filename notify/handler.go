package notify

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"

	"github.com/gin-gonic/gin"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/api"
)

// Path is where bunq posts its callbacks (the registration's notification
// URL is {public URL}/bank/callbacks).
const Path = "/bank/callbacks"

// Consents finds the consents an OAUTH callback may concern
// (*sqlite.ConsentService; see also ActiveConsentLister).
type Consents interface {
	ConsentsByBunqUser(ctx context.Context, bunqUserID int64) ([]*tpp.Consent, error)
}

// Grants re-checks a consent's grant with the bank and revokes the consent
// if the bank refuses it (*oauth.Service).
type Grants interface {
	RecheckGrant(ctx context.Context, c *tpp.Consent, requestID string) error
}

// DraftPayments takes DRAFT_PAYMENT notifications (*pisp.Service). An
// error makes the endpoint answer 500 so that bunq retries.
type DraftPayments interface {
	OnDraftPayment(ctx context.Context, objectType string, object json.RawMessage, requestID string) error
}

// Config holds the handler's settings and the services it notifies.
type Config struct {
	Consents Consents
	Grants   Grants
	// Drafts, when set, receives DRAFT_PAYMENT notifications; without it
	// they are ignored.
	Drafts DraftPayments
	// Key, when set, is the bank's server public key (bankctx.ServerKey):
	// with Auth AuthSignature, callbacks must carry a valid
	// X-Bunq-Server-Signature, so forged ones are refused before any work.
	Key *rsa.PublicKey
	// Auth is how callbacks are authenticated: AuthIP (CIDRs),
	// AuthSignature (Key) or AuthNone. Empty means signature when Key is
	// set, else none.
	Auth  string
	CIDRs []netip.Prefix
	// RechecksPerMinute and UserRechecksPerMinute bound the bank re-checks
	// callbacks cause, overall and per bunq user (0: the defaults).
	RechecksPerMinute, UserRechecksPerMinute int

	Clock  tpp.Clock
	Logger *slog.Logger
}

// Handler receives the bank's callbacks.
type Handler struct {
	consents Consents
	grants   Grants
	drafts   DraftPayments
	auth     callbackAuth
	rechecks *recheckLimiter
	log      *slog.Logger
}

// New validates cfg and returns a Handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Consents == nil || cfg.Grants == nil {
		return nil, errors.New("notify: Consents and Grants are required")
	}
	auth, err := newCallbackAuth(cfg)
	if err != nil {
		return nil, err
	}
	clock := cfg.Clock
	if clock == nil {
		clock = tpp.SystemClock{}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{
		consents: cfg.Consents, grants: cfg.Grants, drafts: cfg.Drafts, auth: auth,
		rechecks: newRecheckLimiter(clock, cfg.RechecksPerMinute, cfg.UserRechecksPerMinute), log: log,
	}, nil
}

// Register mounts POST /bank/callbacks on rg, the engine's root group: the
// bank is no fintech and sends no API key.
func (h *Handler) Register(rg *gin.RouterGroup) {
	rg.POST(Path, h.bankCallback)
}

// bankCallback receives bunq's notification callbacks. It answers fast and
// tells the caller nothing: 200 for anything it accepted or ignored, 400
// for a body that is not a notification, 401 for one refused by the
// callback authentication (source range or signature, Config.Auth), 503
// when its re-checks are over their rate limit and 500 when a re-check
// could not finish (bunq retries both).
func (h *Handler) bankCallback(c *gin.Context) {
	if c.Request.ContentLength > MaxCallbackBytes {
		c.AbortWithStatus(http.StatusRequestEntityTooLarge)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, MaxCallbackBytes))
	if err != nil {
		c.AbortWithStatus(http.StatusRequestEntityTooLarge)
		return
	}
	if err := h.auth.check(c.Request, body); err != nil {
		api.Logger(c).WarnContext(c.Request.Context(), "bank callback refused", "error", err)
		c.AbortWithStatus(http.StatusUnauthorized)
		return
	}
	n, err := ParseNotification(body)
	if err != nil {
		c.AbortWithStatus(http.StatusBadRequest)
		return
	}
	err = h.Handle(c.Request.Context(), n, api.RequestID(c))
	if errors.Is(err, ErrRecheckLimited) {
		// bunq retries a failed callback a minute later.
		c.Header("Retry-After", "60")
		c.AbortWithStatus(http.StatusServiceUnavailable)
		return
	}
	if err != nil {
		api.Logger(c).WarnContext(c.Request.Context(), "bank callback not handled", "category", n.Category, "error", err)
		c.AbortWithStatus(http.StatusInternalServerError)
		return
	}
	c.Status(http.StatusOK)
}
