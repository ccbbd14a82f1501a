package tpp

import (
	"context"
	"time"
)

// PaymentKind is how a payment reaches bunq.
type PaymentKind string

// Payment kinds.
const (
	// PaymentDraft is a draft payment on an account of an active consent;
	// the user accepts it in the bunq app.
	PaymentDraft PaymentKind = "draft"
	// PaymentSingle is a PSP draft payment, created before the OAuth
	// authorization and accepted together with it.
	PaymentSingle PaymentKind = "single"
)

// PaymentStatus is where a payment is in its life.
//
//	pending ──► executed | rejected | cancelled | failed
//
// All four outcomes are final. "failed" means the bank could not take it
// (an error, not a refusal by the user).
type PaymentStatus string

// Payment statuses.
const (
	PaymentPending   PaymentStatus = "pending"
	PaymentExecuted  PaymentStatus = "executed"
	PaymentRejected  PaymentStatus = "rejected"
	PaymentCancelled PaymentStatus = "cancelled"
	PaymentFailed    PaymentStatus = "failed"
)

// paymentTransitions is THE payment status machine: from → legal targets.
var paymentTransitions = map[PaymentStatus][]PaymentStatus{
	PaymentPending:   {PaymentExecuted, PaymentRejected, PaymentCancelled, PaymentFailed},
	PaymentExecuted:  nil,
	PaymentRejected:  nil,
	PaymentCancelled: nil,
	PaymentFailed:    nil,
}

// Valid reports whether s is a known status.
func (s PaymentStatus) Valid() bool {
	_, ok := paymentTransitions[s]
	return ok
}

// CanTransitionTo reports whether a payment in status s may move to t.
func (s PaymentStatus) CanTransitionTo(t PaymentStatus) bool {
	for _, to := range paymentTransitions[s] {
		if to == t {
			return true
		}
	}
	return false
}

// Terminal reports whether no transition leaves s.
func (s PaymentStatus) Terminal() bool { return s.Valid() && len(paymentTransitions[s]) == 0 }

// PaymentStatusChange is one entry of a payment's status history.
type PaymentStatusChange struct {
	Status PaymentStatus
	At     time.Time
}

// Payment is a payment initiated through the TPP.
type Payment struct {
	ID          string
	ConsentID   string
	ClientID    string
	Kind        PaymentKind
	AccountID   int64 // bunq monetary account id (draft payments); 0 if none
	AmountMinor int64
	Currency    string
	// Debtor is the payer; set for single payments, where the IBAN is known
	// before authorization.
	DebtorIBAN string
	DebtorName string
	// Counterparty is the creditor.
	CounterpartyIBAN string
	CounterpartyName string
	Description      string
	Reference        string
	ReturnURL        string // single payments: where the browser goes afterwards
	BunqID           int64  // draft-payment or PSP draft-payment id; 0 until known
	Status           PaymentStatus
	ErrorCode        string // why it was rejected or failed
	IdempotencyKey   string
	StatusHistory    []PaymentStatusChange
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// Amount returns the amount as API money.
func (p *Payment) Amount() Money {
	return Money{Amount: FormatMinor(p.AmountMinor), Currency: p.Currency}
}

// NewPayment is a payment to record, in status pending.
type NewPayment struct {
	ConsentID        string
	ClientID         string
	Kind             PaymentKind
	AccountID        int64
	AmountMinor      int64
	Currency         string
	DebtorIBAN       string
	DebtorName       string
	CounterpartyIBAN string
	CounterpartyName string
	Description      string
	Reference        string
	ReturnURL        string
	BunqID           int64
	IdempotencyKey   string

	Actor     string
	RequestID string
}

// PaymentTransition moves a payment to another status and/or records the
// bank's id for it.
type PaymentTransition struct {
	ID string
	// ClientID, when set, scopes the change to that client's payments.
	ClientID string
	To       PaymentStatus
	// BunqID, when non-zero, records the bank's id in the same transaction.
	BunqID    int64
	ErrorCode string

	Actor     string
	RequestID string
	Detail    string
}

// PaymentFilter selects payments. At least one of ClientID and ConsentID is
// required unless Status is set (for the status poller).
type PaymentFilter struct {
	ClientID  string
	ConsentID string
	Kind      PaymentKind
	Status    PaymentStatus
}

// PaymentService stores payments. Creation and every status change write an
// audit record, a history entry and a payment.updated webhook event in one
// transaction.
type PaymentService interface {
	CreatePayment(ctx context.Context, in NewPayment) (*Payment, error)
	// Payment returns one client's payment; another client's gives the same
	// EPaymentNotFound as an unknown id.
	Payment(ctx context.Context, clientID, id string) (*Payment, error)
	PaymentByID(ctx context.Context, id string) (*Payment, error)
	PaymentByBunqID(ctx context.Context, kind PaymentKind, bunqID int64) (*Payment, error)
	ListPayments(ctx context.Context, f PaymentFilter, p PageRequest) (Page[*Payment], error)
	// TransitionPayment changes the status and/or records the bank id. An
	// empty To only sets BunqID (which may be set once).
	TransitionPayment(ctx context.Context, t PaymentTransition) (*Payment, error)
}

// DuePayment is a pending payment whose next poll is due.
type DuePayment struct {
	Payment *Payment
	// KeyInFlight: the idempotency record of the payment's create request
	// is still in flight (its answer was never stored), so retries with the
	// key get EIdempotencyInFlight until the poller settles it.
	KeyInFlight bool
}
