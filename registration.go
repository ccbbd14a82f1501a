package tpp

import (
	"context"
	"time"
)

// Registration is this TPP's registration with one bunq environment: its
// own API context (from its QSeal certificate), its OAuth client and the
// URLs the bank calls back. It is written by 'tpp register' and read by the
// services that act as the TPP (OAuth, PSP draft payments).
type Registration struct {
	// APIBaseURL identifies the environment: the bunq API host without /v1.
	APIBaseURL string
	// Context is the serialised bunq API context (psd2.Context's JSON). It
	// holds keys and tokens: stores seal it at rest.
	Context []byte
	// UserID is the bank's id of the TPP's UserPaymentServiceProvider.
	UserID        int64
	SessionExpiry time.Time

	// OAuthClientID is the bank's id of the OAuth client; ClientID and
	// ClientSecret are its OAuth credentials (the secret is sealed at rest).
	OAuthClientID int64
	ClientID      string
	ClientSecret  string
	// CallbackURL is the registered OAuth redirect URL; NotificationURL the
	// target of the OAUTH and DRAFT_PAYMENT notification filters.
	CallbackURL     string
	NotificationURL string

	// The certificate registered with the bank.
	CertSubject     string
	CertFingerprint string // hex SHA-256 of the DER certificate
	CertNotAfter    time.Time

	CreatedAt time.Time
	UpdatedAt time.Time
}

// RegistrationStore keeps registrations, one per environment.
type RegistrationStore interface {
	// Registration returns the registration for apiBaseURL, or an *Error
	// with code ENotFound.
	Registration(ctx context.Context, apiBaseURL string) (*Registration, error)
	// Registrations lists every stored registration.
	Registrations(ctx context.Context) ([]*Registration, error)
	// SaveRegistration creates or replaces the registration for
	// r.APIBaseURL, setting CreatedAt on creation and UpdatedAt always.
	SaveRegistration(ctx context.Context, r *Registration) error
}
