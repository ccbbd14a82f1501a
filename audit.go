package tpp

import (
	"context"
	"time"
)

// AuditRecord is one entry of the append-only audit log. Every consent,
// payment and client change writes one in the transaction that makes the
// change, so the log cannot miss a change or record one that did not happen.
type AuditRecord struct {
	Seq       int64 // assigned by the store; increases with every record
	At        time.Time
	Actor     string // ActorClient(id), ActorPSU, ActorBank, ActorSystem, ActorOperator
	Action    string // e.g. AuditConsentCreated
	RequestID string // the API request id, or the bank's request id
	ClientID  string
	ConsentID string
	PaymentID string
	From      string // previous status, for transitions
	To        string // new status, for transitions
	Detail    string // free text; never secrets
}

// Audit actions.
const (
	AuditClientCreated     = "client.created"
	AuditClientRevoked     = "client.revoked"
	AuditClientKeyRotated  = "client.key_rotated"
	AuditConsentCreated    = "consent.created"
	AuditConsentTransition = "consent.status_changed"
	AuditConsentToken      = "consent.token_changed"
	// AuditConsentAuthRefused: an authorization came back but was not used
	// (its code belongs to another flow, or bunq's answer named no flow).
	AuditConsentAuthRefused = "consent.authorization_refused"
	AuditPaymentCreated     = "payment.created"
	AuditPaymentTransition  = "payment.status_changed"
	AuditPaymentBankID      = "payment.bank_id_recorded"
)

// AuditFilter selects audit records; set exactly one field.
type AuditFilter struct {
	ClientID  string
	ConsentID string
	PaymentID string
}

// AuditLog appends to and reads the audit log. It has no update or delete.
type AuditLog interface {
	// AppendAudit adds a record outside any other change (for example a
	// bank call worth recording). At is set by the store.
	AppendAudit(ctx context.Context, r AuditRecord) error
	// ListAudit returns matching records in the order they were written,
	// starting after seq afterSeq (0 for the beginning), at most limit.
	ListAudit(ctx context.Context, f AuditFilter, afterSeq int64, limit int) ([]AuditRecord, error)
}
