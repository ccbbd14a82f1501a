package postgres

import (
	"context"

	"github.com/bunqtpp/tpp/internal/sqlstore"
	"github.com/bunqtpp/tpp/seal"
)

// The stores are internal/sqlstore's, over a PostgreSQL database.
type (
	// AuditLog implements tpp.AuditLog.
	AuditLog = sqlstore.AuditLog
	// ClientService implements tpp.ClientService.
	ClientService = sqlstore.ClientService
	// ConsentService implements tpp.ConsentService and the janitor's queues.
	ConsentService = sqlstore.ConsentService
	// IdempotencyStore implements tpp.IdempotencyStore.
	IdempotencyStore = sqlstore.IdempotencyStore
	// Outbox implements tpp.WebhookOutbox.
	Outbox = sqlstore.Outbox
	// PaymentService implements tpp.PaymentService and pisp.PollQueue.
	PaymentService = sqlstore.PaymentService
	// RegistrationStore implements tpp.RegistrationStore.
	RegistrationStore = sqlstore.RegistrationStore
	// RekeyCount is what Rekey found and did in one sealed column.
	RekeyCount = sqlstore.RekeyCount
)

// MaxCloseAttempts is how often the janitor tries to close a revoked
// consent's bank session and context before it leaves the row for an
// operator to look at.
const MaxCloseAttempts = sqlstore.MaxCloseAttempts

// AuditSecretsResealed is the audit action of a master-key rotation batch.
const AuditSecretsResealed = sqlstore.AuditSecretsResealed

// NewAuditLog returns the audit log in db.
func NewAuditLog(db *DB) *AuditLog { return sqlstore.NewAuditLog(db.Store) }

// NewClientService returns the fintech clients in db; webhook secrets are
// sealed with keyring.
func NewClientService(db *DB, keyring *seal.Keyring) *ClientService {
	return sqlstore.NewClientService(db.Store, keyring)
}

// NewConsentService returns the consents in db; access tokens are sealed
// with keyring.
func NewConsentService(db *DB, keyring *seal.Keyring) *ConsentService {
	return sqlstore.NewConsentService(db.Store, keyring)
}

// NewIdempotencyStore returns the idempotency records in db.
func NewIdempotencyStore(db *DB) *IdempotencyStore { return sqlstore.NewIdempotencyStore(db.Store) }

// NewOutbox returns the webhook outbox in db.
func NewOutbox(db *DB) *Outbox { return sqlstore.NewOutbox(db.Store) }

// NewPaymentService returns the payments in db.
func NewPaymentService(db *DB) *PaymentService { return sqlstore.NewPaymentService(db.Store) }

// NewRegistrationStore returns the bank registration in db; its secrets
// are sealed with keyring.
func NewRegistrationStore(db *DB, keyring *seal.Keyring) *RegistrationStore {
	return sqlstore.NewRegistrationStore(db.Store, keyring)
}

// Rekey re-seals every sealed value in db under kr's current key
// (sqlstore.Rekey).
func Rekey(ctx context.Context, db *DB, kr *seal.Keyring, dryRun bool) ([]RekeyCount, error) {
	return sqlstore.Rekey(ctx, db.Store, kr, dryRun)
}
