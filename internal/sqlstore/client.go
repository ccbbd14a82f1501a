package sqlstore

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"errors"

	"github.com/jmoiron/sqlx"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/seal"
)

// ClientService implements tpp.ClientService.
type ClientService struct {
	db      *Store
	keyring *seal.Keyring
}

var _ tpp.ClientService = (*ClientService)(nil)

// NewClientService returns a client service; keyring seals webhook secrets.
func NewClientService(db *Store, keyring *seal.Keyring) *ClientService {
	return &ClientService{db: db, keyring: keyring}
}

type clientRow struct {
	ID                  string    `db:"id"`
	Name                string    `db:"name"`
	ReturnURLs          string    `db:"return_urls"`
	WebhookURL          string    `db:"webhook_url"`
	WebhookSecretSealed sealedCol `db:"webhook_secret_sealed"`
	Status              string    `db:"status"`
	APIKeyID            string    `db:"api_key_id"`
	APIKeyHash          []byte    `db:"api_key_hash"`
	CreatedAt           dbTime    `db:"created_at"`
	UpdatedAt           dbTime    `db:"updated_at"`
	RevokedAt           nullTime  `db:"revoked_at"`
}

const clientColumns = `id, name, return_urls, webhook_url, webhook_secret_sealed, status,
	api_key_id, api_key_hash, created_at, updated_at, revoked_at`

func (r *clientRow) client() (*tpp.FintechClient, error) {
	urls, err := decodeStrings(r.ReturnURLs)
	if err != nil {
		return nil, err
	}
	return &tpp.FintechClient{
		ID:         r.ID,
		Name:       r.Name,
		ReturnURLs: urls,
		WebhookURL: r.WebhookURL,
		Status:     tpp.ClientStatus(r.Status),
		APIKeyID:   r.APIKeyID,
		CreatedAt:  r.CreatedAt.Time,
		UpdatedAt:  r.UpdatedAt.Time,
		RevokedAt:  r.RevokedAt.ptr(),
	}, nil
}

func clientNotFound(id string) error {
	return tpp.Errorf(tpp.ENotFound, "client %q not found", id)
}

func getClientRow(ctx context.Context, q querier, id string) (*clientRow, error) {
	var r clientRow
	err := sqlx.GetContext(ctx, q, &r, `SELECT `+clientColumns+` FROM clients WHERE id = ?`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, clientNotFound(id)
	}
	if err != nil {
		return nil, q.errorf("get client: %w", err)
	}
	return &r, nil
}

// CreateClient registers a client and returns its API key and webhook
// secret, which are not stored in readable form (the key) or only sealed
// (the secret).
func (s *ClientService) CreateClient(ctx context.Context, in tpp.NewClient) (*tpp.FintechClient, tpp.ClientSecrets, error) {
	if err := in.Validate(); err != nil {
		return nil, tpp.ClientSecrets{}, err
	}
	id := tpp.NewID(tpp.PrefixClient)
	key := tpp.NewAPIKey()
	secret := tpp.NewWebhookSecret()
	sealed, err := s.db.seal(s.keyring, []byte(secret), tpp.WebhookSecretAD(id))
	if err != nil {
		return nil, tpp.ClientSecrets{}, s.db.errorf("seal webhook secret: %w", err)
	}
	now := s.db.Now()
	err = s.db.Tx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO clients (`+clientColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
			id, in.Name, encodeStrings(in.ReturnURLs), in.WebhookURL, sealed, string(tpp.ClientActive),
			key.ID, key.Hash(), s.db.Time(now), s.db.Time(now)); err != nil {
			return s.db.errorf("insert client: %w", err)
		}
		return insertAudit(ctx, tx, now, tpp.AuditRecord{
			Actor: tpp.ActorOperator, Action: tpp.AuditClientCreated, ClientID: id, To: string(tpp.ClientActive),
			Detail: "name " + in.Name,
		})
	})
	if err != nil {
		return nil, tpp.ClientSecrets{}, err
	}
	c, err := s.Client(ctx, id)
	if err != nil {
		return nil, tpp.ClientSecrets{}, err
	}
	return c, tpp.ClientSecrets{APIKey: key.String(), WebhookSecret: secret}, nil
}

// Client returns a client by id.
func (s *ClientService) Client(ctx context.Context, id string) (*tpp.FintechClient, error) {
	r, err := getClientRow(ctx, s.db, id)
	if err != nil {
		return nil, err
	}
	return r.client()
}

// ListClients lists clients, newest first.
func (s *ClientService) ListClients(ctx context.Context, p tpp.PageRequest) (tpp.Page[*tpp.FintechClient], error) {
	limit, cur, err := p.Normalize()
	if err != nil {
		return tpp.Page[*tpp.FintechClient]{}, err
	}
	rows, err := selectPage[clientRow](ctx, s.db, `SELECT `+clientColumns+` FROM clients`, nil, nil, limit, cur)
	if err != nil {
		return tpp.Page[*tpp.FintechClient]{}, s.db.errorf("list clients: %w", err)
	}
	out := make([]*tpp.FintechClient, 0, len(rows))
	for i := range rows {
		c, err := rows[i].client()
		if err != nil {
			return tpp.Page[*tpp.FintechClient]{}, err
		}
		out = append(out, c)
	}
	return pageOf(out, limit, func(c *tpp.FintechClient) tpp.Cursor { return tpp.Cursor{At: c.CreatedAt, ID: c.ID} }), nil
}

// RevokeClient revokes a client for good: its API key stops working, no
// more webhooks are sent to it, and its live consents are revoked with
// their tokens wiped, so no background job can keep using them. Their bunq
// sessions and Redis contexts are queued for the janitor to close
// (PendingCloses), as the caller may have neither at hand.
func (s *ClientService) RevokeClient(ctx context.Context, id string) (*tpp.FintechClient, error) {
	now := s.db.Now()
	err := s.db.Tx(ctx, func(tx *Tx) error {
		r, err := getClientRow(ctx, tx, id)
		if err != nil {
			return err
		}
		if r.Status == string(tpp.ClientRevoked) {
			return tpp.Errorf(tpp.EConflict, "client %q is already revoked", id)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE clients SET status = ?, revoked_at = ?, updated_at = ? WHERE id = ?`,
			string(tpp.ClientRevoked), s.db.Time(now), s.db.Time(now), id); err != nil {
			return s.db.errorf("revoke client: %w", err)
		}
		if err := insertAudit(ctx, tx, now, tpp.AuditRecord{
			Actor: tpp.ActorOperator, Action: tpp.AuditClientRevoked, ClientID: id,
			From: r.Status, To: string(tpp.ClientRevoked),
		}); err != nil {
			return err
		}
		if err := revokeClientConsents(ctx, tx, now, id); err != nil {
			return err
		}
		return queueClientConsentCloses(ctx, tx, now, id)
	})
	if err != nil {
		return nil, err
	}
	return s.Client(ctx, id)
}

// RotateAPIKey replaces the client's API key; the old one fails from now on.
func (s *ClientService) RotateAPIKey(ctx context.Context, id string) (string, error) {
	key := tpp.NewAPIKey()
	now := s.db.Now()
	err := s.db.Tx(ctx, func(tx *Tx) error {
		r, err := getClientRow(ctx, tx, id)
		if err != nil {
			return err
		}
		if r.Status != string(tpp.ClientActive) {
			return tpp.Errorf(tpp.EConflict, "client %q is revoked; its key cannot be rotated", id)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE clients SET api_key_id = ?, api_key_hash = ?, updated_at = ? WHERE id = ?`,
			key.ID, key.Hash(), s.db.Time(now), id); err != nil {
			return s.db.errorf("rotate key: %w", err)
		}
		return insertAudit(ctx, tx, now, tpp.AuditRecord{
			Actor: tpp.ActorOperator, Action: tpp.AuditClientKeyRotated, ClientID: id,
			Detail: "old key id " + r.APIKeyID + ", new key id " + key.ID,
		})
	})
	if err != nil {
		return "", err
	}
	return key.String(), nil
}

// dummyHash is compared against when a key id is unknown, so that an
// unknown id costs the same work as a wrong secret.
var dummyHash = sha256.Sum256([]byte("no such key"))

// Authenticate checks an API key.
func (s *ClientService) Authenticate(ctx context.Context, apiKey string) (*tpp.FintechClient, error) {
	denied := tpp.Errorf(tpp.EUnauthorized, "API key is invalid or revoked")
	key, err := tpp.ParseAPIKey(apiKey)
	if err != nil {
		return nil, err
	}
	var r clientRow
	err = s.db.GetContext(ctx, &r, `SELECT `+clientColumns+` FROM clients WHERE api_key_id = ?`, key.ID)
	if errors.Is(err, sql.ErrNoRows) {
		subtle.ConstantTimeCompare(key.Hash(), dummyHash[:])
		return nil, denied
	}
	if err != nil {
		return nil, s.db.errorf("authenticate: %w", err)
	}
	if subtle.ConstantTimeCompare(key.Hash(), r.APIKeyHash) != 1 {
		return nil, denied
	}
	if r.Status != string(tpp.ClientActive) {
		return nil, denied
	}
	return r.client()
}

// WebhookSecret opens the client's webhook signing secret.
func (s *ClientService) WebhookSecret(ctx context.Context, id string) (string, error) {
	r, err := getClientRow(ctx, s.db, id)
	if err != nil {
		return "", err
	}
	secret, err := s.db.open(s.keyring, r.WebhookSecretSealed, tpp.WebhookSecretAD(id))
	if err != nil {
		return "", s.db.errorf("open webhook secret of %s: %w", id, err)
	}
	return string(secret), nil
}
