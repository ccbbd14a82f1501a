// Package cbpii is the confirmation of funds (PSD2 CBPII, scope "funds"):
// does the user's account hold at least an amount right now? The answer is
// yes or no, never the balance, never cached, and every check is audited.
package cbpii

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptrace"
	"strings"
	"sync"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/api"
	"github.com/bunqtpp/tpp/psd2"
)

// Bank is the part of the bunq client the service uses (*psd2.Client).
type Bank interface {
	GetMonetaryAccount(ctx context.Context, bc *psd2.Context, id int64) (psd2.MonetaryAccount, error)
	ConfirmFunds(ctx context.Context, bc *psd2.Context, f psd2.FundsRequest) (bool, error)
}

// Gate opens a consent for a check and maps failed bank calls, revoking a
// consent whose grant the bank confirms is gone (*consent.Gate).
type Gate interface {
	Open(ctx context.Context, clientID, consentID string, scope tpp.Scope) (*tpp.Consent, error)
	Context(ctx context.Context, c *tpp.Consent) (*psd2.Context, error)
	BankError(ctx context.Context, c *tpp.Consent, err error) error
}

// Audit appends to the audit log (*sqlite.AuditLog).
type Audit interface {
	AppendAudit(ctx context.Context, r tpp.AuditRecord) error
}

// AuditFundsChecked is the audit action of one confirmation of funds.
const AuditFundsChecked = "funds.checked"

// Config holds the service's dependencies.
type Config struct {
	// Gate opens consents (the one gate every role shares).
	Gate  Gate
	Bank  Bank
	Audit Audit
	Clock tpp.Clock // tpp.SystemClock when nil
	Log   *slog.Logger
}

// Service answers confirmation-of-funds requests.
type Service struct {
	gate  Gate
	bank  Bank
	audit Audit
	clock tpp.Clock
	log   *slog.Logger
	calls callLog
}

// New validates cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Gate == nil || cfg.Bank == nil || cfg.Audit == nil {
		return nil, errors.New("cbpii: Gate, Bank and Audit are required")
	}
	clock := cfg.Clock
	if clock == nil {
		clock = tpp.SystemClock{}
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{gate: cfg.Gate, bank: cfg.Bank, audit: cfg.Audit, clock: clock, log: log, calls: callLog{ids: map[string]string{}}}, nil
}

// Request is the body of POST /v1/consents/{id}/funds-confirmations:
// exactly one of AccountID and IBAN, and the amount. Pointers tell absent
// fields from empty ones.
type Request struct {
	AccountID *string    `json:"account_id"`
	IBAN      *string    `json:"iban"`
	Amount    *tpp.Money `json:"amount"`
}

// Result is the answer.
type Result struct {
	Sufficient bool   `json:"sufficient"`
	CheckedAt  string `json:"checked_at"`
}

// check is a validated request.
type check struct {
	accountID string // API account id, or ""
	bunqID    int64
	iban      string // normalised, or ""
	amount    tpp.Money
	minor     int64
}

// validate checks the body: exactly one account reference, a valid IBAN,
// a positive amount with at most two decimals in an ISO 4217 currency.
func validate(r Request) (check, error) {
	var ck check
	switch {
	case r.AccountID != nil && r.IBAN != nil:
		return ck, tpp.Errorf(tpp.EInvalid, "send account_id or iban, not both")
	case r.AccountID == nil && r.IBAN == nil:
		return ck, tpp.Errorf(tpp.EInvalid, "send account_id (from the accounts list) or iban")
	case r.AccountID != nil:
		if *r.AccountID == "" {
			return ck, tpp.Errorf(tpp.EInvalid, "account_id is empty")
		}
		ck.accountID = *r.AccountID
	default:
		iban, err := tpp.NormalizeIBAN(*r.IBAN)
		if err != nil {
			return ck, err
		}
		ck.iban = iban
	}
	if r.Amount == nil {
		return ck, tpp.Errorf(tpp.EInvalidAmount, "amount is required, e.g. {\"amount\": \"12.50\", \"currency\": \"EUR\"}")
	}
	minor, err := tpp.ParseMoney(*r.Amount)
	if err != nil {
		return ck, err
	}
	if minor > tpp.MaxPaymentMinor {
		return ck, tpp.Errorf(tpp.EInvalidAmount, "amount is above %s", tpp.FormatMinor(tpp.MaxPaymentMinor))
	}
	ck.minor = minor
	ck.amount = tpp.Money{Amount: tpp.FormatMinor(minor), Currency: r.Amount.Currency}
	return ck, nil
}

// Confirm asks the bank whether the account holds at least the amount.
// Every check that reaches the bank is audited, whatever its outcome; an
// audit failure fails the request (an unaudited answer is not given).
func (s *Service) Confirm(ctx context.Context, clientID, consentID string, r Request) (Result, error) {
	ck, err := validate(r)
	if err != nil {
		return Result{}, err
	}
	c, err := s.gate.Open(ctx, clientID, consentID, tpp.ScopeFunds)
	if err != nil {
		return Result{}, err
	}
	if ck.accountID != "" {
		if ck.bunqID, err = tpp.ParseAccountID(ck.accountID); err != nil {
			return Result{}, err
		}
	}
	var ids bankIDs
	sufficient, err := s.ask(ctx, c, &ck, &ids)
	now := s.clock.Now().UTC()
	if aerr := s.record(ctx, c, ck, sufficient, err, &ids); aerr != nil {
		return Result{}, aerr
	}
	if err != nil {
		return Result{}, err
	}
	return Result{Sufficient: sufficient, CheckedAt: now.Format(time.RFC3339)}, nil
}

// ask resolves the account and asks the bank, in the consent's own context.
func (s *Service) ask(ctx context.Context, c *tpp.Consent, ck *check, ids *bankIDs) (bool, error) {
	bc, err := s.gate.Context(ctx, c)
	if err != nil {
		return false, err
	}
	ptr := psd2.Pointer{Type: "IBAN", Value: ck.iban, Name: c.BunqUserName}
	if ck.accountID != "" {
		ma, err := s.bank.GetMonetaryAccount(ctx, bc, ck.bunqID)
		if err != nil {
			return false, s.bankError(ctx, c, err, ck)
		}
		iban, holder := ma.IBAN()
		if iban == "" || ma.ID != ck.bunqID {
			return false, notFound(ck)
		}
		ptr.Value = iban
		if holder != "" {
			ptr.Name = holder
		}
	}
	ok, err := s.bank.ConfirmFunds(ids.trace(ctx), bc, psd2.FundsRequest{
		PointerIBAN: ptr,
		Amount:      psd2.Amount{Value: ck.amount.Amount, Currency: ck.amount.Currency},
	})
	ids.from(err)
	if err != nil {
		return false, s.bankError(ctx, c, err, ck)
	}
	return ok, nil
}

func notFound(ck *check) error {
	if ck.accountID != "" {
		return tpp.Errorf(tpp.EAccountNotFound, "no account %q under this consent", ck.accountID)
	}
	return tpp.Errorf(tpp.EAccountNotFound, "no account with this IBAN under this consent")
}

// bankError maps a bank failure: an account the bank does not know in
// this consent's context is account_not_found.
func (s *Service) bankError(ctx context.Context, c *tpp.Consent, err error, ck *check) error {
	if errors.Is(err, psd2.ErrNotFound) {
		e := notFound(ck).(*tpp.Error)
		e.Err = err
		return e
	}
	return s.gate.BankError(ctx, c, err)
}

func (s *Service) record(ctx context.Context, c *tpp.Consent, ck check, sufficient bool, err error, ids *bankIDs) error {
	reqID, respID := ids.get()
	result := "insufficient"
	switch {
	case err != nil:
		result = "error:" + tpp.ErrorCode(err)
	case sufficient:
		result = "sufficient"
	}
	target := "account=" + ck.accountID
	if ck.accountID == "" {
		target = "iban=" + ck.iban
	}
	detail := fmt.Sprintf("%s amount=%s %s result=%s bank_request_id=%s bank_response_id=%s",
		target, ck.amount.Amount, ck.amount.Currency, result, orNone(reqID), orNone(s.calls.response(reqID, respID)))
	aerr := s.audit.AppendAudit(context.WithoutCancel(ctx), tpp.AuditRecord{
		Actor: tpp.ActorClient(c.ClientID), Action: AuditFundsChecked, RequestID: api.RequestIDFromContext(ctx),
		ClientID: c.ClientID, ConsentID: c.ID, Detail: detail,
	})
	if aerr != nil {
		return fmt.Errorf("cbpii: audit funds check of consent %s: %w", c.ID, aerr)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ---- bank request and response ids

// bankIDs are the bunq ids of the confirmation call, for the audit log.
// The request id is read off the wire (the X-Bunq-Client-Request-Id header
// the client writes); the response id comes with bank errors, and for
// successful calls from ObserveCall.
type bankIDs struct {
	mu       sync.Mutex
	request  string
	response string
}

func (b *bankIDs) get() (request, response string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.request, b.response
}

func (b *bankIDs) trace(ctx context.Context) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteHeaderField: func(key string, value []string) {
			if strings.EqualFold(key, "X-Bunq-Client-Request-Id") && len(value) > 0 {
				b.mu.Lock()
				b.request = value[0]
				b.mu.Unlock()
			}
		},
	})
}

func (b *bankIDs) from(err error) {
	var (
		ae *psd2.APIError
		se *psd2.SignatureError
		re *psd2.ResponseError
		te *psd2.TransportError
	)
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case errors.As(err, &ae):
		b.request, b.response = ae.RequestID, ae.ResponseID
	case errors.As(err, &se):
		b.request, b.response = se.RequestID, se.ResponseID
	case errors.As(err, &re):
		b.request, b.response = re.RequestID, re.ResponseID
	case errors.As(err, &te):
		b.request = te.RequestID
	}
}

// callLog remembers the response ids of recent bank calls by request id,
// fed by ObserveCall from the psd2 client's OnCall hook.
type callLog struct {
	mu    sync.Mutex
	ids   map[string]string
	order []string
}

const callLogSize = 1024

// ObserveCall records a bank call's ids. Chain it into psd2.Options.OnCall
// so that audit records of successful checks carry the bank's response id.
func (s *Service) ObserveCall(ci psd2.CallInfo) {
	if ci.RequestID == "" || ci.ResponseID == "" || !strings.HasSuffix(ci.Path, "/confirmation-of-funds") {
		return
	}
	l := &s.calls
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.ids[ci.RequestID]; !ok {
		l.order = append(l.order, ci.RequestID)
	}
	l.ids[ci.RequestID] = ci.ResponseID
	for len(l.order) > callLogSize {
		delete(l.ids, l.order[0])
		l.order = l.order[1:]
	}
}

// response returns the response id of request, preferring one already known.
func (l *callLog) response(request, known string) string {
	if known != "" || request == "" {
		return known
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	id := l.ids[request]
	delete(l.ids, request)
	return id
}
