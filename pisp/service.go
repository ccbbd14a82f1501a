// Package pisp is the payment initiation service (PSD2 PISP, scope
// "payments"): payments the user approves in the bunq app (bunq draft
// payments, under an active consent) and single payments approved together
// with their authorization (bunq PSP draft payments, made with the TPP's
// own context). It owns their life at the bank: creation without
// duplicates (idempotency keys, reconciliation after an ambiguous bank
// failure), status tracking from bunq's DRAFT_PAYMENT callbacks (as hints,
// always re-fetched) and a poller, and cancellation.
//
// Payments are written through tpp.PaymentService, which records history,
// audit and the payment.updated webhook event in one transaction with
// every status change.
//
// Wiring (cmd/tpp): New with the sqlite stores, the psd2 client, the
// bankctx provider, the TPP's own context and oauth.AuthorizeURLs;
// NewHandler(svc).Register on the authenticated /v1 group; run svc.Run as
// a worker; and pass svc as oauth.Config.Payments (the browser flow) and
// notify.Config.Drafts (DRAFT_PAYMENT callbacks).
package pisp

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/psd2"
)

// Bank is the part of the bunq client pisp uses (*psd2.Client).
type Bank interface {
	GetMonetaryAccount(ctx context.Context, bc *psd2.Context, id int64) (psd2.MonetaryAccount, error)
	CreateDraftPayment(ctx context.Context, bc *psd2.Context, accountID int64, d psd2.DraftPaymentRequest) (int64, error)
	ListDraftPayments(ctx context.Context, bc *psd2.Context, accountID int64, p psd2.Page) (*psd2.Listing[psd2.DraftPayment], error)
	GetDraftPayment(ctx context.Context, bc *psd2.Context, accountID, id int64) (psd2.DraftPayment, error)
	UpdateDraftPayment(ctx context.Context, bc *psd2.Context, accountID, id int64, u psd2.DraftPaymentUpdate) error
	CreatePSPDraftPayment(ctx context.Context, bc *psd2.Context, d psd2.PSPDraftPaymentRequest) (int64, error)
	ListPSPDraftPayments(ctx context.Context, bc *psd2.Context, p psd2.Page) (*psd2.Listing[psd2.PSPDraftPayment], error)
	GetPSPDraftPayment(ctx context.Context, bc *psd2.Context, id int64) (psd2.PSPDraftPayment, error)
	UpdatePSPDraftPayment(ctx context.Context, bc *psd2.Context, id int64, status string) error
}

// Contexts hands out the live bunq context of an active consent
// (*bankctx.Provider).
type Contexts interface {
	Get(ctx context.Context, c *tpp.Consent) (*psd2.Context, error)
}

// Gate is where a consent may be used (*consent.Gate): Open for a request
// that acts under the consent, Read for one that reads what was made
// under it; BankError maps a failed bank call, revoking a consent whose
// grant the bank confirms is gone.
type Gate interface {
	Open(ctx context.Context, clientID, consentID string, scope tpp.Scope) (*tpp.Consent, error)
	Read(ctx context.Context, clientID, consentID string, scope tpp.Scope) (*tpp.Consent, error)
	BankError(ctx context.Context, c *tpp.Consent, err error) error
}

// TPPContexts hands out the TPP's own bunq context (its PSD2 registration),
// for PSP draft payments.
type TPPContexts interface {
	TPPContext(ctx context.Context) (*psd2.Context, error)
}

// TPPContextFunc adapts a function to TPPContexts.
type TPPContextFunc func(ctx context.Context) (*psd2.Context, error)

// TPPContext calls f.
func (f TPPContextFunc) TPPContext(ctx context.Context) (*psd2.Context, error) { return f(ctx) }

// Consents is the consent store (*sqlite.ConsentService). Single payments
// make their own consent, which the user authorizes through the usual
// /connect flow.
type Consents interface {
	ConsentByID(ctx context.Context, id string) (*tpp.Consent, error)
	CreateConsent(ctx context.Context, in tpp.NewConsent) (*tpp.Consent, error)
	TransitionConsent(ctx context.Context, t tpp.ConsentTransition) (*tpp.Consent, error)
	SinglePaymentOf(ctx context.Context, consentID string) (*tpp.Payment, error)
}

// SinglePaymentUserRef is the user_ref of the consents single payments
// make. Such a consent carries one payment only: it cannot be used for
// draft payments.
const SinglePaymentUserRef = tpp.InternalUserRefPrefix + "single-payment"

// Defaults.
const (
	DefaultPollInterval = 30 * time.Second
	// DefaultOrphanGrace is how long a payment may wait for its bank id
	// before the poller reconciles it: longer than any create request lasts.
	DefaultOrphanGrace = 2 * time.Minute
	// DefaultPollBatch bounds the payments one poll round looks at; a
	// larger pending set is walked over several rounds, oldest due first.
	DefaultPollBatch = 500
	// reconcilePages bounds the listing pages searched for a lost draft.
	reconcilePages = 5
)

// Config holds the service's dependencies and settings.
type Config struct {
	Payments    tpp.PaymentService
	Consents    Consents
	Idempotency tpp.IdempotencyStore
	Bank        Bank
	Contexts    Contexts
	Gate        Gate
	// TPP gives the TPP's own context; without it single payments answer
	// bank_unavailable.
	TPP TPPContexts
	// AuthorizeURL is where the user authorizes a consent
	// ((*oauth.Service).AuthorizeURL): the authorize_url of single payments.
	AuthorizeURL func(consentID string) string

	// Events, when set, receives EventPaymentDecidedOutsideFlow.
	Events Events
	// OnUnknownStatus, when set, counts a bank draft status pisp does not
	// know (kind: draft or single); the payment stays pending.
	OnUnknownStatus func(kind string)
	// OnPollRound, when set, counts each poll round this process ran (with
	// RunExclusive, only the rounds it won the lock for).
	OnPollRound func()

	// PollInterval is the poller's period (DefaultPollInterval when 0).
	PollInterval time.Duration
	// OrphanGrace: see DefaultOrphanGrace.
	OrphanGrace time.Duration
	// PollBatch: see DefaultPollBatch.
	PollBatch int
	// Queue is the poller's schedule; nil uses Payments, which must then
	// implement PollQueue (*sqlite.PaymentService does).
	Queue PollQueue

	Clock  tpp.Clock
	Logger *slog.Logger
}

// PollQueue is the poller's schedule of pending payments
// (*sqlite.PaymentService).
type PollQueue interface {
	// DuePayments returns at most limit pending payments due for a check
	// at now, those without a bank id first, then those whose idempotency
	// key is in flight, then the rest, each oldest due first.
	DuePayments(ctx context.Context, now time.Time, limit int) ([]tpp.DuePayment, error)
	// ScheduleChecks sets when the payments are next due.
	ScheduleChecks(ctx context.Context, at time.Time, ids ...string) error
}

// Service is the payment initiation logic. Safe for concurrent use.
type Service struct {
	payments     tpp.PaymentService
	consents     Consents
	idem         tpp.IdempotencyStore
	bank         Bank
	contexts     Contexts
	gate         Gate
	tpp          TPPContexts
	authorizeURL func(string) string
	events       Events
	onUnknown    func(kind string)
	onPollRound  func()
	queue        PollQueue
	interval     time.Duration
	grace        time.Duration
	batch        int
	clock        tpp.Clock
	log          *slog.Logger
}

// New validates cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Payments == nil || cfg.Consents == nil || cfg.Idempotency == nil || cfg.Bank == nil || cfg.Contexts == nil || cfg.Gate == nil || cfg.AuthorizeURL == nil {
		return nil, errors.New("pisp: Payments, Consents, Idempotency, Bank, Contexts, Gate and AuthorizeURL are required")
	}
	s := &Service{
		payments: cfg.Payments, consents: cfg.Consents, idem: cfg.Idempotency, bank: cfg.Bank,
		contexts: cfg.Contexts, gate: cfg.Gate, tpp: cfg.TPP, authorizeURL: cfg.AuthorizeURL, events: cfg.Events,
		onUnknown:   cfg.OnUnknownStatus,
		onPollRound: cfg.OnPollRound,
		queue:       cfg.Queue, interval: cfg.PollInterval, grace: cfg.OrphanGrace, batch: cfg.PollBatch,
		clock: cfg.Clock, log: cfg.Logger,
	}
	if s.queue == nil {
		q, ok := cfg.Payments.(PollQueue)
		if !ok {
			return nil, errors.New("pisp: Queue is required when Payments does not implement PollQueue")
		}
		s.queue = q
	}
	if s.batch <= 0 {
		s.batch = DefaultPollBatch
	}
	if s.interval <= 0 {
		s.interval = DefaultPollInterval
	}
	if s.grace <= 0 {
		s.grace = DefaultOrphanGrace
	}
	if s.clock == nil {
		s.clock = tpp.SystemClock{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

func (s *Service) tppContext(ctx context.Context) (*psd2.Context, error) {
	if s.tpp == nil {
		return nil, &tpp.Error{Code: tpp.EBankUnavailable, Message: "Single payments are not configured on this TPP."}
	}
	return s.tpp.TPPContext(ctx)
}
