package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/seal"
)

// RegistrationStore implements tpp.RegistrationStore. The API context and
// the OAuth client secret are sealed with the keyring, bound to the
// environment by their associated data.
type RegistrationStore struct {
	db      *Store
	keyring *seal.Keyring
}

var _ tpp.RegistrationStore = (*RegistrationStore)(nil)

// NewRegistrationStore returns a registration store.
func NewRegistrationStore(db *Store, keyring *seal.Keyring) *RegistrationStore {
	return &RegistrationStore{db: db, keyring: keyring}
}

type registrationRow struct {
	APIBaseURL         string    `db:"api_base_url"`
	ContextSealed      sealedCol `db:"context_sealed"`
	UserID             int64     `db:"user_id"`
	SessionExpiry      nullTime  `db:"session_expiry"`
	OAuthClientID      int64     `db:"oauth_client_id"`
	ClientID           string    `db:"client_id"`
	ClientSecretSealed sealedCol `db:"client_secret_sealed"`
	CallbackURL        string    `db:"callback_url"`
	NotificationURL    string    `db:"notification_url"`
	CertSubject        string    `db:"cert_subject"`
	CertFingerprint    string    `db:"cert_fingerprint"`
	CertNotAfter       nullTime  `db:"cert_not_after"`
	CreatedAt          dbTime    `db:"created_at"`
	UpdatedAt          dbTime    `db:"updated_at"`
}

const registrationColumns = `api_base_url, context_sealed, user_id, session_expiry, oauth_client_id, client_id,
	client_secret_sealed, callback_url, notification_url, cert_subject, cert_fingerprint, cert_not_after,
	created_at, updated_at`

func contextAD(base string) string { return "registration:" + base + ":context" }
func secretAD(base string) string  { return "registration:" + base + ":oauth-secret" }

func (s *RegistrationStore) open(r *registrationRow) (*tpp.Registration, error) {
	reg := &tpp.Registration{
		APIBaseURL:      r.APIBaseURL,
		UserID:          r.UserID,
		SessionExpiry:   r.SessionExpiry.Time,
		OAuthClientID:   r.OAuthClientID,
		ClientID:        r.ClientID,
		CallbackURL:     r.CallbackURL,
		NotificationURL: r.NotificationURL,
		CertSubject:     r.CertSubject,
		CertFingerprint: r.CertFingerprint,
		CertNotAfter:    r.CertNotAfter.Time,
		CreatedAt:       r.CreatedAt.Time,
		UpdatedAt:       r.UpdatedAt.Time,
	}
	if len(r.ContextSealed.Stored) > 0 {
		pt, err := s.db.open(s.keyring, r.ContextSealed, contextAD(r.APIBaseURL))
		if err != nil {
			return nil, s.db.errorf("open registration context for %s: %w", r.APIBaseURL, err)
		}
		reg.Context = []byte(pt)
	}
	if len(r.ClientSecretSealed.Stored) > 0 {
		pt, err := s.db.open(s.keyring, r.ClientSecretSealed, secretAD(r.APIBaseURL))
		if err != nil {
			return nil, s.db.errorf("open OAuth client secret for %s: %w", r.APIBaseURL, err)
		}
		reg.ClientSecret = string(pt)
	}
	return reg, nil
}

// Registration implements tpp.RegistrationStore.
func (s *RegistrationStore) Registration(ctx context.Context, apiBaseURL string) (*tpp.Registration, error) {
	var r registrationRow
	err := s.db.GetContext(ctx, &r, `SELECT `+registrationColumns+` FROM registration WHERE api_base_url = ?`, apiBaseURL)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, tpp.Errorf(tpp.ENotFound, "no registration for %s", apiBaseURL)
	}
	if err != nil {
		return nil, s.db.errorf("read registration: %w", err)
	}
	return s.open(&r)
}

// Registrations implements tpp.RegistrationStore.
func (s *RegistrationStore) Registrations(ctx context.Context) ([]*tpp.Registration, error) {
	var rows []registrationRow
	if err := s.db.SelectContext(ctx, &rows, `SELECT `+registrationColumns+` FROM registration ORDER BY api_base_url`); err != nil {
		return nil, s.db.errorf("list registrations: %w", err)
	}
	out := make([]*tpp.Registration, 0, len(rows))
	for i := range rows {
		reg, err := s.open(&rows[i])
		if err != nil {
			return nil, err
		}
		out = append(out, reg)
	}
	return out, nil
}

// SaveRegistration implements tpp.RegistrationStore.
func (s *RegistrationStore) SaveRegistration(ctx context.Context, reg *tpp.Registration) error {
	if reg.APIBaseURL == "" {
		return tpp.Errorf(tpp.EInvalid, "registration needs an API base URL")
	}
	// An absent value is written as the dialect's empty value, not NULL.
	ctxSealed, secretSealed := s.db.dialect.EncodeSealed(nil), s.db.dialect.EncodeSealed(nil)
	var err error
	if len(reg.Context) > 0 {
		if ctxSealed, err = s.db.seal(s.keyring, reg.Context, contextAD(reg.APIBaseURL)); err != nil {
			return s.db.errorf("seal registration context: %w", err)
		}
	}
	if reg.ClientSecret != "" {
		if secretSealed, err = s.db.seal(s.keyring, []byte(reg.ClientSecret), secretAD(reg.APIBaseURL)); err != nil {
			return s.db.errorf("seal OAuth client secret: %w", err)
		}
	}
	now := s.db.Now()
	return s.db.Tx(ctx, func(tx *Tx) error {
		var created dbTime
		err := tx.GetContext(ctx, &created, `SELECT created_at FROM registration WHERE api_base_url = ?`, reg.APIBaseURL)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			created = dbTime{now}
		case err != nil:
			return s.db.errorf("read registration: %w", err)
		}
		row := map[string]any{
			"api_base_url": reg.APIBaseURL, "context_sealed": ctxSealed, "user_id": reg.UserID,
			"session_expiry": s.db.nullTime(reg.SessionExpiry), "oauth_client_id": reg.OAuthClientID,
			"client_id": reg.ClientID, "client_secret_sealed": secretSealed, "callback_url": reg.CallbackURL,
			"notification_url": reg.NotificationURL, "cert_subject": reg.CertSubject,
			"cert_fingerprint": reg.CertFingerprint, "cert_not_after": s.db.nullTime(reg.CertNotAfter),
			"created_at": s.db.Time(created.Time), "updated_at": s.db.Time(now),
		}
		_, err = tx.NamedExecContext(ctx, `INSERT INTO registration (`+registrationColumns+`) VALUES (
			:api_base_url, :context_sealed, :user_id, :session_expiry, :oauth_client_id, :client_id,
			:client_secret_sealed, :callback_url, :notification_url, :cert_subject, :cert_fingerprint, :cert_not_after,
			:created_at, :updated_at)
			ON CONFLICT (api_base_url) DO UPDATE SET context_sealed = excluded.context_sealed,
			user_id = excluded.user_id, session_expiry = excluded.session_expiry,
			oauth_client_id = excluded.oauth_client_id, client_id = excluded.client_id,
			client_secret_sealed = excluded.client_secret_sealed, callback_url = excluded.callback_url,
			notification_url = excluded.notification_url, cert_subject = excluded.cert_subject,
			cert_fingerprint = excluded.cert_fingerprint, cert_not_after = excluded.cert_not_after,
			updated_at = excluded.updated_at`, row)
		if err != nil {
			return s.db.errorf("save registration: %w", err)
		}
		reg.CreatedAt, reg.UpdatedAt = created.Time, now
		return nil
	})
}
