package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/seal"
)

// ConsentService implements tpp.ConsentService.
type ConsentService struct {
	db      *Store
	keyring *seal.Keyring
}

var _ tpp.ConsentService = (*ConsentService)(nil)

// NewConsentService returns a consent service; keyring seals OAuth tokens.
func NewConsentService(db *Store, keyring *seal.Keyring) *ConsentService {
	return &ConsentService{db: db, keyring: keyring}
}

type consentRow struct {
	ID                string        `db:"id"`
	ClientID          string        `db:"client_id"`
	UserRef           string        `db:"user_ref"`
	Scopes            string        `db:"scopes"`
	ReturnURL         string        `db:"return_url"`
	Status            string        `db:"status"`
	CreatedAt         dbTime        `db:"created_at"`
	UpdatedAt         dbTime        `db:"updated_at"`
	ExpiresAt         dbTime        `db:"expires_at"`
	AuthorizedAt      nullTime      `db:"authorized_at"`
	ReauthDueAt       nullTime      `db:"reauth_due_at"`
	BunqUserID        sql.NullInt64 `db:"bunq_user_id"`
	BunqDisplayName   string        `db:"bunq_display_name"`
	AccessTokenSealed sealedCol     `db:"access_token_sealed"`
	ErrorCode         string        `db:"error_code"`
	RevokedAt         nullTime      `db:"revoked_at"`
	GrantedIP         string        `db:"granted_ip"`
	GrantedUserAgent  string        `db:"granted_user_agent"`
}

const consentColumns = `id, client_id, user_ref, scopes, return_url, status, created_at, updated_at,
	expires_at, authorized_at, reauth_due_at, bunq_user_id, bunq_display_name, access_token_sealed,
	error_code, revoked_at, granted_ip, granted_user_agent`

func (r *consentRow) consent() *tpp.Consent {
	var scopes []tpp.Scope
	for _, s := range strings.Fields(r.Scopes) {
		scopes = append(scopes, tpp.Scope(s))
	}
	return &tpp.Consent{
		ID:           r.ID,
		ClientID:     r.ClientID,
		UserRef:      r.UserRef,
		Scopes:       scopes,
		ReturnURL:    r.ReturnURL,
		Status:       tpp.ConsentStatus(r.Status),
		CreatedAt:    r.CreatedAt.Time,
		UpdatedAt:    r.UpdatedAt.Time,
		ExpiresAt:    r.ExpiresAt.Time,
		AuthorizedAt: r.AuthorizedAt.ptr(),
		ReauthDueAt:  r.ReauthDueAt.ptr(),
		BunqUserID:   r.BunqUserID.Int64,
		BunqUserName: r.BunqDisplayName,
		HasToken:     r.AccessTokenSealed.Valid,
		ErrorCode:    r.ErrorCode,
		RevokedAt:    r.RevokedAt.ptr(),

		GrantedIP:        r.GrantedIP,
		GrantedUserAgent: r.GrantedUserAgent,
	}
}

func consentNotFound(id string) error {
	return tpp.Errorf(tpp.EConsentNotFound, "consent %q not found", id)
}

// getConsentRow loads a consent; a non-empty clientID scopes the lookup, and
// a consent of another client is reported exactly like an unknown id.
func getConsentRow(ctx context.Context, q querier, clientID, id string) (*consentRow, error) {
	var r consentRow
	err := sqlx.GetContext(ctx, q, &r, `SELECT `+consentColumns+` FROM consents WHERE id = ?`, id)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && clientID != "" && r.ClientID != clientID) {
		return nil, consentNotFound(id)
	}
	if err != nil {
		return nil, q.errorf("get consent: %w", err)
	}
	return &r, nil
}

// CreateConsent stores a new pending consent.
func (s *ConsentService) CreateConsent(ctx context.Context, in tpp.NewConsent) (*tpp.Consent, error) {
	if in.ClientID == "" {
		return nil, tpp.Errorf(tpp.EInternal, "consent needs a client")
	}
	if err := checkActorScope(in.Actor, in.ClientID); err != nil {
		return nil, err
	}
	if len(in.UserRef) > 255 {
		return nil, tpp.Errorf(tpp.EInvalid, "user_ref is longer than 255 characters")
	}
	raw := make([]string, len(in.Scopes))
	for i, sc := range in.Scopes {
		raw[i] = string(sc)
	}
	scopes, err := tpp.ParseScopes(raw)
	if err != nil {
		return nil, err
	}
	raw = raw[:0]
	for _, sc := range scopes {
		raw = append(raw, string(sc))
	}
	id := tpp.NewID(tpp.PrefixConsent)
	now := s.db.Now()
	err = s.db.Tx(ctx, func(tx *Tx) error {
		c, err := getClientRow(ctx, tx, in.ClientID)
		if err != nil {
			return err
		}
		client, err := c.client()
		if err != nil {
			return err
		}
		if client.Status != tpp.ClientActive {
			return tpp.Errorf(tpp.EUnauthorized, "client is revoked")
		}
		if !client.AllowsReturnURL(in.ReturnURL) {
			return tpp.Errorf(tpp.EInvalidReturnURL, "return_url %q is not registered for this client", in.ReturnURL)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO consents
			(id, client_id, user_ref, scopes, return_url, status, created_at, updated_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, in.ClientID, in.UserRef, strings.Join(raw, " "), in.ReturnURL, string(tpp.ConsentPending),
			s.db.Time(now), s.db.Time(now), s.db.Time(now.Add(tpp.ConsentPendingTTL))); err != nil {
			return s.db.errorf("insert consent: %w", err)
		}
		return insertAudit(ctx, tx, now, tpp.AuditRecord{
			Actor: in.Actor, Action: tpp.AuditConsentCreated, RequestID: in.RequestID,
			ClientID: in.ClientID, ConsentID: id, To: string(tpp.ConsentPending),
			Detail: "scopes " + strings.Join(raw, " "),
		})
	})
	if err != nil {
		return nil, err
	}
	return s.ConsentByID(ctx, id)
}

// Consent returns a consent of one client.
func (s *ConsentService) Consent(ctx context.Context, clientID, id string) (*tpp.Consent, error) {
	if clientID == "" {
		return nil, consentNotFound(id) // fail closed: never unscoped by accident
	}
	r, err := getConsentRow(ctx, s.db, clientID, id)
	if err != nil {
		return nil, err
	}
	return r.consent(), nil
}

// ConsentByID returns a consent whatever its client.
func (s *ConsentService) ConsentByID(ctx context.Context, id string) (*tpp.Consent, error) {
	r, err := getConsentRow(ctx, s.db, "", id)
	if err != nil {
		return nil, err
	}
	return r.consent(), nil
}

// ListConsents lists one client's consents, newest first. Consents the TPP
// made for itself (single payments) are never listed: the filter is in SQL
// so pages stay full and cursors stay exact.
func (s *ConsentService) ListConsents(ctx context.Context, f tpp.ConsentFilter, p tpp.PageRequest) (tpp.Page[*tpp.Consent], error) {
	var zero tpp.Page[*tpp.Consent]
	if f.ClientID == "" {
		return zero, tpp.Errorf(tpp.EInternal, "consent list needs a client")
	}
	limit, cur, err := p.Normalize()
	if err != nil {
		return zero, err
	}
	where := []string{"client_id = ?", "substr(user_ref, 1, ?) <> ?"}
	args := []any{f.ClientID, len(tpp.InternalUserRefPrefix), tpp.InternalUserRefPrefix}
	if f.UserRef != "" {
		where = append(where, "user_ref = ?")
		args = append(args, f.UserRef)
	}
	if f.Status != "" {
		where = append(where, "status = ?")
		args = append(args, string(f.Status))
	}
	rows, err := selectPage[consentRow](ctx, s.db, `SELECT `+consentColumns+` FROM consents`, where, args, limit, cur)
	if err != nil {
		return zero, s.db.errorf("list consents: %w", err)
	}
	out := make([]*tpp.Consent, len(rows))
	for i := range rows {
		out[i] = rows[i].consent()
	}
	return pageOf(out, limit, func(c *tpp.Consent) tpp.Cursor { return tpp.Cursor{At: c.CreatedAt, ID: c.ID} }), nil
}

// SinglePaymentOf returns the single payment a consent was made for, with
// its status history; EPaymentNotFound when there is none. The consent flow
// uses it to send the browser back with the payment's id and outcome.
func (s *ConsentService) SinglePaymentOf(ctx context.Context, consentID string) (*tpp.Payment, error) {
	// A single payment's consent carries exactly one payment; the order
	// only makes the answer deterministic should that ever change.
	p, err := (&PaymentService{db: s.db}).one(ctx, s.db, `consent_id = ? AND kind = ? ORDER BY created_at, id LIMIT 1`,
		consentID, string(tpp.PaymentSingle))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, tpp.Errorf(tpp.EPaymentNotFound, "no single payment for consent %q", consentID)
	}
	if err != nil {
		return nil, s.db.errorf("single payment of consent: %w", err)
	}
	return p, nil
}

// ConsentsByBunqUser returns the consents a bunq user has authorized, oldest first.
func (s *ConsentService) ConsentsByBunqUser(ctx context.Context, bunqUserID int64) ([]*tpp.Consent, error) {
	var rows []consentRow
	if err := s.db.SelectContext(ctx, &rows, `SELECT `+consentColumns+` FROM consents
		WHERE bunq_user_id = ? ORDER BY created_at, id`, bunqUserID); err != nil {
		return nil, s.db.errorf("consents by bunq user: %w", err)
	}
	out := make([]*tpp.Consent, len(rows))
	for i := range rows {
		out[i] = rows[i].consent()
	}
	return out, nil
}

// ActiveConsents returns up to limit active consents in random order: the
// sample an OAUTH callback without a user id re-checks (oauth), so repeated
// callbacks reach different consents.
func (s *ConsentService) ActiveConsents(ctx context.Context, limit int) ([]*tpp.Consent, error) {
	var rows []consentRow
	if err := s.db.SelectContext(ctx, &rows, `SELECT `+consentColumns+` FROM consents
		WHERE status = ? ORDER BY random() LIMIT ?`, string(tpp.ConsentActive), limit); err != nil {
		return nil, s.db.errorf("active consents: %w", err)
	}
	out := make([]*tpp.Consent, len(rows))
	for i := range rows {
		out[i] = rows[i].consent()
	}
	return out, nil
}

// DueConsents lists consents a sweeper must expire or mark for re-authorization.
func (s *ConsentService) DueConsents(ctx context.Context, now time.Time, limit int) ([]*tpp.Consent, error) {
	if limit <= 0 {
		limit = tpp.DefaultPageLimit
	}
	t := s.db.Time(now)
	var rows []consentRow
	if err := s.db.SelectContext(ctx, &rows, `SELECT `+consentColumns+` FROM consents
		WHERE (status = 'pending' AND expires_at <= ?) OR (status = 'active' AND reauth_due_at <= ?)
		ORDER BY created_at, id LIMIT ?`, t, t, limit); err != nil {
		return nil, s.db.errorf("due consents: %w", err)
	}
	out := make([]*tpp.Consent, len(rows))
	for i := range rows {
		out[i] = rows[i].consent()
	}
	return out, nil
}

// NotifyExpiring stores a consent.expiring event for each active consent
// (of a fintech, not the TPP's own) whose re-authentication date falls
// within notice of now and that has not had one in its current
// authorization period, at most limit per call. Marking the consent and
// storing the event happen in one transaction, and the mark is conditional,
// so replicas sweeping at once send one event. It returns how many it sent.
func (s *ConsentService) NotifyExpiring(ctx context.Context, now time.Time, notice time.Duration, limit int) (int, error) {
	if limit <= 0 {
		limit = tpp.DefaultPageLimit
	}
	var sent int
	err := s.db.Tx(ctx, func(tx *Tx) error {
		var rows []consentRow
		if err := tx.SelectContext(ctx, &rows, `SELECT `+consentColumns+` FROM consents
			WHERE status = 'active' AND reauth_due_at > ? AND reauth_due_at <= ?
			AND (expiring_notified_at IS NULL OR expiring_notified_at < authorized_at)
			AND user_ref NOT LIKE ? ESCAPE '\'
			ORDER BY reauth_due_at, id LIMIT ?`,
			s.db.Time(now), s.db.Time(now.Add(notice)), likePrefix(tpp.InternalUserRefPrefix), limit); err != nil {
			return s.db.errorf("expiring consents: %w", err)
		}
		for _, r := range rows {
			res, err := tx.ExecContext(ctx, `UPDATE consents SET expiring_notified_at = ?
				WHERE id = ? AND status = 'active' AND (expiring_notified_at IS NULL OR expiring_notified_at < authorized_at)`,
				s.db.Time(now), r.ID)
			if err != nil {
				return s.db.errorf("mark consent expiring: %w", err)
			}
			if n, _ := res.RowsAffected(); n != 1 {
				continue
			}
			if _, err := insertEvent(ctx, tx, now, r.ClientID, tpp.EventConsentExpiring, tpp.ConsentExpiringData{
				ConsentID: r.ID, UserRef: r.UserRef, ReauthDueAt: r.ReauthDueAt.Time.UTC().Format(time.RFC3339),
			}); err != nil {
				return err
			}
			sent++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return sent, nil
}

// likePrefix is a LIKE pattern matching strings that start with p.
func likePrefix(p string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(p) + "%"
}

// statusError explains why a consent in status cur cannot do what was asked.
func statusError(id string, cur, to tpp.ConsentStatus) error {
	switch cur {
	case tpp.ConsentRevoked:
		return tpp.Errorf(tpp.EConsentRevoked, "consent %q is revoked", id)
	case tpp.ConsentExpired:
		return tpp.Errorf(tpp.EConsentExpired, "consent %q has expired", id)
	case tpp.ConsentRejected:
		return tpp.Errorf(tpp.EConsentNotActive, "consent %q was rejected", id)
	}
	return tpp.Errorf(tpp.EConflict, "consent %q is %s and cannot become %s", id, cur, to)
}

// TransitionConsent moves a consent along the status machine, writing the
// audit record and the consent.updated event in the same transaction. An
// illegal move writes nothing.
func (s *ConsentService) TransitionConsent(ctx context.Context, t tpp.ConsentTransition) (*tpp.Consent, error) {
	if err := checkActorScope(t.Actor, t.ClientID); err != nil {
		return nil, err
	}
	if !t.To.Valid() {
		return nil, tpp.Errorf(tpp.EInternal, "unknown consent status %q", t.To)
	}
	if t.To == tpp.ConsentActive && (t.BunqUserID == 0 || t.AccessToken == "") {
		return nil, tpp.Errorf(tpp.EInternal, "activating a consent needs the bunq user and the access token")
	}
	now := s.db.Now()
	var sealed any
	if t.To == tpp.ConsentActive {
		var err error
		if sealed, err = s.db.seal(s.keyring, []byte(t.AccessToken), tpp.AccessTokenAD(t.ID)); err != nil {
			return nil, s.db.errorf("seal access token: %w", err)
		}
	}
	var out *tpp.Consent
	err := s.db.Tx(ctx, func(tx *Tx) error {
		var err error
		out, err = writeConsentTransition(ctx, tx, now, t, sealed)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// writeConsentTransition is where a consent changes state: within tx, it
// checks the move t against the status machine, updates the row, and
// writes the audit record and (for a fintech's consent) the consent.updated
// event. sealed is the access token (Store.seal) for a move to active.
// Every consent state write goes through here: TransitionConsent and
// revokeClientConsents.
func writeConsentTransition(ctx context.Context, tx *Tx, now time.Time, t tpp.ConsentTransition, sealed any) (*tpp.Consent, error) {
	r, err := getConsentRow(ctx, tx, t.ClientID, t.ID)
	if err != nil {
		return nil, err
	}
	cur := tpp.ConsentStatus(r.Status)
	if t.From != "" && cur != t.From {
		return nil, tpp.Errorf(tpp.EConflict, "consent %q is %s, not %s", t.ID, cur, t.From)
	}
	if !cur.CanTransitionTo(t.To) {
		return nil, statusError(t.ID, cur, t.To)
	}
	set := []string{"status = ?", "updated_at = ?"}
	args := []any{string(t.To), tx.Time(now)}
	switch t.To {
	case tpp.ConsentActive:
		if cur == tpp.ConsentPending && !now.Before(r.ExpiresAt.Time) {
			return nil, tpp.Errorf(tpp.EConsentExpired, "consent %q expired before it was authorized", t.ID)
		}
		// Re-authorization must come from the same bunq user: another
		// user would otherwise take over a consent made for someone else.
		if r.BunqUserID.Valid && r.BunqUserID.Int64 != t.BunqUserID {
			return nil, tpp.Errorf(tpp.EConflict, "consent %q was authorized by another bunq user", t.ID)
		}
		set = append(set, "authorized_at = ?", "reauth_due_at = ?", "bunq_user_id = ?",
			"bunq_display_name = ?", "access_token_sealed = ?", "error_code = ''",
			"granted_ip = ?", "granted_user_agent = ?")
		args = append(args, tx.Time(now), tx.Time(now.Add(tpp.ConsentReauthAfter)), t.BunqUserID,
			t.BunqUserName, sealed, t.PSUIP, t.PSUUserAgent)
	case tpp.ConsentRejected:
		set = append(set, "error_code = ?", "access_token_sealed = NULL")
		args = append(args, t.ErrorCode)
	case tpp.ConsentRevoked:
		set = append(set, "revoked_at = ?", "access_token_sealed = NULL")
		args = append(args, tx.Time(now))
	default: // expired, reauth_required: the token must not be used any more
		set = append(set, "access_token_sealed = NULL")
	}
	args = append(args, t.ID, r.Status)
	res, err := tx.ExecContext(ctx, `UPDATE consents SET `+strings.Join(set, ", ")+
		` WHERE id = ? AND status = ?`, args...)
	if err != nil {
		return nil, tx.errorf("update consent: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return nil, tpp.Errorf(tpp.EConflict, "consent %q changed concurrently", t.ID)
	}
	if err := insertAudit(ctx, tx, now, tpp.AuditRecord{
		Actor: t.Actor, Action: tpp.AuditConsentTransition, RequestID: t.RequestID,
		ClientID: r.ClientID, ConsentID: t.ID, From: r.Status, To: string(t.To), Detail: t.Detail,
	}); err != nil {
		return nil, err
	}
	// A single payment's consent is not the fintech's: its webhook is
	// payment.updated, a consent.updated would name an id it cannot read.
	if !strings.HasPrefix(r.UserRef, tpp.InternalUserRefPrefix) {
		if _, err := insertEvent(ctx, tx, now, r.ClientID, tpp.EventConsentUpdated, tpp.ConsentEventData{
			ConsentID: t.ID, UserRef: r.UserRef, Status: string(t.To), PreviousStatus: r.Status, ErrorCode: t.ErrorCode,
		}); err != nil {
			return nil, err
		}
	}
	nr, err := getConsentRow(ctx, tx, "", t.ID)
	if err != nil {
		return nil, err
	}
	return nr.consent(), nil
}

// AccessToken opens the OAuth access token of a usable consent. It fails
// closed: a consent that is not active, or is past its re-authentication
// date even if no sweeper has marked it yet, yields no token.
func (s *ConsentService) AccessToken(ctx context.Context, id string) (string, error) {
	r, err := getConsentRow(ctx, s.db, "", id)
	if err != nil {
		return "", err
	}
	cur := tpp.ConsentStatus(r.Status)
	switch {
	case cur == tpp.ConsentReauthRequired:
		return "", tpp.Errorf(tpp.EConsentReauthRequired, "consent %q needs the user to authorize again", id)
	case cur != tpp.ConsentActive:
		return "", statusErrorForUse(id, cur)
	case !r.ReauthDueAt.IsZero() && !s.db.Now().Before(r.ReauthDueAt.Time):
		return "", tpp.Errorf(tpp.EConsentReauthRequired, "consent %q needs the user to authorize again", id)
	case !r.AccessTokenSealed.Valid:
		return "", tpp.Errorf(tpp.EConsentNotActive, "consent %q has no access token", id)
	}
	tok, err := s.db.open(s.keyring, r.AccessTokenSealed, tpp.AccessTokenAD(id))
	if err != nil {
		return "", s.db.errorf("open access token of %s: %w", id, err)
	}
	return string(tok), nil
}

func statusErrorForUse(id string, cur tpp.ConsentStatus) error {
	switch cur {
	case tpp.ConsentRevoked:
		return tpp.Errorf(tpp.EConsentRevoked, "consent %q is revoked", id)
	case tpp.ConsentExpired:
		return tpp.Errorf(tpp.EConsentExpired, "consent %q has expired", id)
	}
	return tpp.Errorf(tpp.EConsentNotActive, "consent %q is %s", id, cur)
}

// SetAccessToken replaces the token of an active consent.
func (s *ConsentService) SetAccessToken(ctx context.Context, id, token string) error {
	if token == "" {
		return tpp.Errorf(tpp.EInternal, "empty access token")
	}
	sealed, err := s.db.seal(s.keyring, []byte(token), tpp.AccessTokenAD(id))
	if err != nil {
		return s.db.errorf("seal access token: %w", err)
	}
	return s.changeToken(ctx, id, sealed, "token replaced")
}

// ClearAccessToken removes the token of a consent, whatever its status.
func (s *ConsentService) ClearAccessToken(ctx context.Context, id string) error {
	return s.changeToken(ctx, id, nil, "token cleared")
}

// changeToken stores sealed (a value of Store.seal) as the consent's token;
// nil clears it.
func (s *ConsentService) changeToken(ctx context.Context, id string, sealed any, detail string) error {
	now := s.db.Now()
	return s.db.Tx(ctx, func(tx *Tx) error {
		r, err := getConsentRow(ctx, tx, "", id)
		if err != nil {
			return err
		}
		if sealed != nil && r.Status != string(tpp.ConsentActive) {
			return statusErrorForUse(id, tpp.ConsentStatus(r.Status))
		}
		if _, err := tx.ExecContext(ctx, `UPDATE consents SET access_token_sealed = ?, updated_at = ? WHERE id = ?`,
			sealed, s.db.Time(now), id); err != nil {
			return s.db.errorf("update token: %w", err)
		}
		return insertAudit(ctx, tx, now, tpp.AuditRecord{
			Actor: tpp.ActorSystem, Action: tpp.AuditConsentToken, ClientID: r.ClientID, ConsentID: id, Detail: detail,
		})
	})
}

// revokeClientConsents revokes every live consent of a client that is being
// revoked, within its transaction, each as the operator's transition (with
// its audit record and event).
func revokeClientConsents(ctx context.Context, tx *Tx, now time.Time, clientID string) error {
	var rows []struct {
		ID     string `db:"id"`
		Status string `db:"status"`
	}
	if err := tx.SelectContext(ctx, &rows, `SELECT id, status FROM consents
		WHERE client_id = ? AND status IN ('pending', 'active', 'reauth_required') ORDER BY id`, clientID); err != nil {
		return tx.errorf("live consents of %s: %w", clientID, err)
	}
	for _, r := range rows {
		if !tpp.ConsentStatus(r.Status).CanTransitionTo(tpp.ConsentRevoked) {
			continue
		}
		if _, err := writeConsentTransition(ctx, tx, now, tpp.ConsentTransition{
			ID: r.ID, ClientID: clientID, From: tpp.ConsentStatus(r.Status), To: tpp.ConsentRevoked,
			Actor: tpp.ActorOperator, Detail: "client revoked",
		}, nil); err != nil {
			return err
		}
	}
	return nil
}
