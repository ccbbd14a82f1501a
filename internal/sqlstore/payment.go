package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/bunqtpp/tpp"
)

// PaymentService implements tpp.PaymentService.
type PaymentService struct {
	db *Store
}

var _ tpp.PaymentService = (*PaymentService)(nil)

// NewPaymentService returns a payment service.
func NewPaymentService(db *Store) *PaymentService { return &PaymentService{db: db} }

type paymentRow struct {
	ID               string        `db:"id"`
	ConsentID        string        `db:"consent_id"`
	ClientID         string        `db:"client_id"`
	Kind             string        `db:"kind"`
	AccountID        sql.NullInt64 `db:"account_id"`
	AmountMinor      int64         `db:"amount_minor"`
	Currency         string        `db:"currency"`
	DebtorIBAN       string        `db:"debtor_iban"`
	DebtorName       string        `db:"debtor_name"`
	CounterpartyIBAN string        `db:"counterparty_iban"`
	CounterpartyName string        `db:"counterparty_name"`
	Description      string        `db:"description"`
	Reference        string        `db:"reference"`
	ReturnURL        string        `db:"return_url"`
	BunqID           sql.NullInt64 `db:"bunq_id"`
	Status           string        `db:"status"`
	ErrorCode        string        `db:"error_code"`
	IdempotencyKey   string        `db:"idempotency_key"`
	CreatedAt        dbTime        `db:"created_at"`
	UpdatedAt        dbTime        `db:"updated_at"`
}

const paymentColumns = `id, consent_id, client_id, kind, account_id, amount_minor, currency, debtor_iban,
	debtor_name, counterparty_iban, counterparty_name, description, reference, return_url, bunq_id, status,
	error_code, idempotency_key, created_at, updated_at`

func (r *paymentRow) payment() *tpp.Payment {
	return &tpp.Payment{
		ID:               r.ID,
		ConsentID:        r.ConsentID,
		ClientID:         r.ClientID,
		Kind:             tpp.PaymentKind(r.Kind),
		AccountID:        r.AccountID.Int64,
		AmountMinor:      r.AmountMinor,
		Currency:         r.Currency,
		DebtorIBAN:       r.DebtorIBAN,
		DebtorName:       r.DebtorName,
		CounterpartyIBAN: r.CounterpartyIBAN,
		CounterpartyName: r.CounterpartyName,
		Description:      r.Description,
		Reference:        r.Reference,
		ReturnURL:        r.ReturnURL,
		BunqID:           r.BunqID.Int64,
		Status:           tpp.PaymentStatus(r.Status),
		ErrorCode:        r.ErrorCode,
		IdempotencyKey:   r.IdempotencyKey,
		CreatedAt:        r.CreatedAt.Time,
		UpdatedAt:        r.UpdatedAt.Time,
	}
}

func paymentNotFound(id string) error {
	return tpp.Errorf(tpp.EPaymentNotFound, "payment %q not found", id)
}

func nullInt(v int64) sql.NullInt64 { return sql.NullInt64{Int64: v, Valid: v != 0} }

// validate checks a new payment and returns it with IBANs in electronic form.
func validatePayment(in tpp.NewPayment) (tpp.NewPayment, error) {
	if in.Kind != tpp.PaymentDraft && in.Kind != tpp.PaymentSingle {
		return in, tpp.Errorf(tpp.EInvalid, "unknown payment kind %q", in.Kind)
	}
	if in.AmountMinor <= 0 || in.AmountMinor > tpp.MaxPaymentMinor {
		return in, tpp.Errorf(tpp.EInvalidAmount, "amount must be between 0.01 and %s", tpp.FormatMinor(tpp.MaxPaymentMinor))
	}
	if !tpp.ValidCurrency(in.Currency) {
		return in, tpp.Errorf(tpp.EInvalidCurrency, "currency %q is not an ISO 4217 code", in.Currency)
	}
	var err error
	if in.CounterpartyIBAN, err = tpp.NormalizeIBAN(in.CounterpartyIBAN); err != nil {
		return in, err
	}
	if strings.TrimSpace(in.CounterpartyName) == "" {
		return in, tpp.Errorf(tpp.EInvalid, "counterparty name is required")
	}
	if in.Kind == tpp.PaymentSingle {
		if in.DebtorIBAN, err = tpp.NormalizeIBAN(in.DebtorIBAN); err != nil {
			return in, err
		}
	} else if in.DebtorIBAN != "" {
		if in.DebtorIBAN, err = tpp.NormalizeIBAN(in.DebtorIBAN); err != nil {
			return in, err
		}
	}
	if len(in.Description) > 140 {
		return in, tpp.Errorf(tpp.EInvalidDescription, "description is longer than 140 characters")
	}
	return in, nil
}

// CreatePayment records a pending payment under a consent of the client. A
// draft payment needs an active consent; a single payment is created with
// its consent still pending (the user approves both at once).
func (s *PaymentService) CreatePayment(ctx context.Context, in tpp.NewPayment) (*tpp.Payment, error) {
	if in.ClientID == "" {
		return nil, tpp.Errorf(tpp.EInternal, "payment needs a client")
	}
	if err := checkActorScope(in.Actor, in.ClientID); err != nil {
		return nil, err
	}
	in, err := validatePayment(in)
	if err != nil {
		return nil, err
	}
	id := tpp.NewID(tpp.PrefixPayment)
	now := s.db.Now()
	err = s.db.Tx(ctx, func(tx *Tx) error {
		cr, err := getConsentRow(ctx, tx, in.ClientID, in.ConsentID)
		if err != nil {
			return err
		}
		c := cr.consent()
		if !c.HasScope(tpp.ScopePayments) {
			return tpp.Errorf(tpp.EScopeNotGranted, "consent %q does not grant the payments scope", c.ID)
		}
		switch {
		case c.Status == tpp.ConsentActive:
		case c.Status == tpp.ConsentPending && in.Kind == tpp.PaymentSingle:
		case c.Status == tpp.ConsentReauthRequired:
			return tpp.Errorf(tpp.EConsentReauthRequired, "consent %q needs the user to authorize again", c.ID)
		default:
			return statusErrorForUse(c.ID, c.Status)
		}
		if in.Kind == tpp.PaymentSingle {
			if err := noPendingSingle(ctx, tx, in.DebtorIBAN); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO payments (`+paymentColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?)`,
			id, in.ConsentID, in.ClientID, string(in.Kind), nullInt(in.AccountID), in.AmountMinor, in.Currency,
			in.DebtorIBAN, in.DebtorName, in.CounterpartyIBAN, in.CounterpartyName, in.Description, in.Reference,
			in.ReturnURL, nullInt(in.BunqID), string(tpp.PaymentPending), in.IdempotencyKey,
			s.db.Time(now), s.db.Time(now)); err != nil {
			if in.Kind == tpp.PaymentSingle && s.db.dialect.IsPendingSingleConflict(err) {
				return tpp.Wrap(err, tpp.EPaymentInProgress, singleInProgress)
			}
			if s.db.dialect.IsUnique(err) {
				return tpp.Wrap(err, tpp.EConflict, "bank payment %d is already recorded", in.BunqID)
			}
			return s.db.errorf("insert payment: %w", err)
		}
		if err := appendHistory(ctx, tx, id, tpp.PaymentPending, now); err != nil {
			return err
		}
		return insertAudit(ctx, tx, now, tpp.AuditRecord{
			Actor: in.Actor, Action: tpp.AuditPaymentCreated, RequestID: in.RequestID, ClientID: in.ClientID,
			ConsentID: in.ConsentID, PaymentID: id, To: string(tpp.PaymentPending),
			Detail: fmt.Sprintf("%s %s %s to %s", in.Kind, tpp.FormatMinor(in.AmountMinor), in.Currency, in.CounterpartyIBAN),
		})
	})
	if err != nil {
		return nil, err
	}
	return s.PaymentByID(ctx, id)
}

const singleInProgress = "Another single payment from this debtor IBAN is not finished yet; try again once it is."

// noPendingSingle refuses a second unfinished single payment from iban. The
// unique index payments_single_pending_debtor is what makes it hold across
// replicas (a concurrent insert fails on it, or under PostgreSQL loses the
// serialization conflict and finds the other payment here when retried);
// this check gives the same answer without relying on the error.
func noPendingSingle(ctx context.Context, tx *Tx, iban string) error {
	var n int
	if err := tx.GetContext(ctx, &n, `SELECT COUNT(*) FROM payments
		WHERE kind = 'single' AND status = 'pending' AND debtor_iban = ?`, iban); err != nil {
		return tx.errorf("pending single payments: %w", err)
	}
	if n > 0 {
		return tpp.Errorf(tpp.EPaymentInProgress, singleInProgress)
	}
	return nil
}

func appendHistory(ctx context.Context, tx *Tx, id string, st tpp.PaymentStatus, at time.Time) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO payment_status_history (payment_id, seq, status, at)
		VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM payment_status_history WHERE payment_id = ?), ?, ?)`,
		id, id, string(st), tx.Time(at)); err != nil {
		return tx.errorf("payment history: %w", err)
	}
	return nil
}

// withHistory loads the status history of the given payments.
func withHistory(ctx context.Context, q querier, ps []*tpp.Payment) error {
	if len(ps) == 0 {
		return nil
	}
	byID := make(map[string]*tpp.Payment, len(ps))
	ids := make([]string, len(ps))
	for i, p := range ps {
		byID[p.ID] = p
		ids[i] = p.ID
	}
	query, args, err := sqlx.In(`SELECT payment_id, status, at FROM payment_status_history
		WHERE payment_id IN (?) ORDER BY payment_id, seq`, ids)
	if err != nil {
		return q.errorf("payment history: %w", err)
	}
	var rows []struct {
		PaymentID string `db:"payment_id"`
		Status    string `db:"status"`
		At        dbTime `db:"at"`
	}
	if err := sqlx.SelectContext(ctx, q, &rows, query, args...); err != nil {
		return q.errorf("payment history: %w", err)
	}
	for _, r := range rows {
		p := byID[r.PaymentID]
		p.StatusHistory = append(p.StatusHistory, tpp.PaymentStatusChange{Status: tpp.PaymentStatus(r.Status), At: r.At.Time})
	}
	return nil
}

func (s *PaymentService) one(ctx context.Context, q querier, where string, args ...any) (*tpp.Payment, error) {
	var r paymentRow
	if err := sqlx.GetContext(ctx, q, &r, `SELECT `+paymentColumns+` FROM payments WHERE `+where, args...); err != nil {
		return nil, err
	}
	p := r.payment()
	if err := withHistory(ctx, q, []*tpp.Payment{p}); err != nil {
		return nil, err
	}
	return p, nil
}

func (s *PaymentService) scoped(ctx context.Context, q querier, clientID, id string) (*tpp.Payment, error) {
	p, err := s.one(ctx, q, `id = ?`, id)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && clientID != "" && p.ClientID != clientID) {
		return nil, paymentNotFound(id)
	}
	if err != nil {
		return nil, s.db.errorf("get payment: %w", err)
	}
	return p, nil
}

// Payment returns a payment of one client.
func (s *PaymentService) Payment(ctx context.Context, clientID, id string) (*tpp.Payment, error) {
	if clientID == "" {
		return nil, paymentNotFound(id)
	}
	return s.scoped(ctx, s.db, clientID, id)
}

// PaymentByID returns a payment whatever its client (for workers and the
// browser flow).
func (s *PaymentService) PaymentByID(ctx context.Context, id string) (*tpp.Payment, error) {
	return s.scoped(ctx, s.db, "", id)
}

// PaymentByBunqID finds a payment by the bank's id for it.
func (s *PaymentService) PaymentByBunqID(ctx context.Context, kind tpp.PaymentKind, bunqID int64) (*tpp.Payment, error) {
	p, err := s.one(ctx, s.db, `kind = ? AND bunq_id = ?`, string(kind), bunqID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, tpp.Errorf(tpp.EPaymentNotFound, "no payment for bank %s payment %d", kind, bunqID)
	}
	if err != nil {
		return nil, s.db.errorf("payment by bank id: %w", err)
	}
	return p, nil
}

// ListPayments lists payments, newest first.
func (s *PaymentService) ListPayments(ctx context.Context, f tpp.PaymentFilter, p tpp.PageRequest) (tpp.Page[*tpp.Payment], error) {
	var zero tpp.Page[*tpp.Payment]
	if f.ClientID == "" && f.ConsentID == "" && f.Status == "" {
		return zero, tpp.Errorf(tpp.EInternal, "payment list needs a client, consent or status")
	}
	limit, cur, err := p.Normalize()
	if err != nil {
		return zero, err
	}
	var where []string
	var args []any
	for _, c := range []struct{ col, v string }{
		{"client_id", f.ClientID}, {"consent_id", f.ConsentID}, {"kind", string(f.Kind)}, {"status", string(f.Status)},
	} {
		if c.v != "" {
			where = append(where, c.col+" = ?")
			args = append(args, c.v)
		}
	}
	rows, err := selectPage[paymentRow](ctx, s.db, `SELECT `+paymentColumns+` FROM payments`, where, args, limit, cur)
	if err != nil {
		return zero, s.db.errorf("list payments: %w", err)
	}
	out := make([]*tpp.Payment, len(rows))
	for i := range rows {
		out[i] = rows[i].payment()
	}
	page := pageOf(out, limit, func(p *tpp.Payment) tpp.Cursor { return tpp.Cursor{At: p.CreatedAt, ID: p.ID} })
	if err := withHistory(ctx, s.db, page.Items); err != nil {
		return zero, err
	}
	return page, nil
}

// TransitionPayment changes a payment's status and/or records its bank id,
// with history, audit and a payment.updated event in one transaction.
func (s *PaymentService) TransitionPayment(ctx context.Context, t tpp.PaymentTransition) (*tpp.Payment, error) {
	if err := checkActorScope(t.Actor, t.ClientID); err != nil {
		return nil, err
	}
	if t.To == "" && t.BunqID == 0 {
		return nil, tpp.Errorf(tpp.EInternal, "payment change has neither a status nor a bank id")
	}
	if t.To != "" && !t.To.Valid() {
		return nil, tpp.Errorf(tpp.EInternal, "unknown payment status %q", t.To)
	}
	now := s.db.Now()
	var out *tpp.Payment
	err := s.db.Tx(ctx, func(tx *Tx) error {
		p, err := s.scoped(ctx, tx, t.ClientID, t.ID)
		if err != nil {
			return err
		}
		set := []string{"updated_at = ?"}
		args := []any{s.db.Time(now)}
		if t.BunqID != 0 && p.BunqID != t.BunqID {
			if p.BunqID != 0 {
				return tpp.Errorf(tpp.EConflict, "payment %q already has bank id %d", t.ID, p.BunqID)
			}
			set = append(set, "bunq_id = ?")
			args = append(args, t.BunqID)
			if err := insertAudit(ctx, tx, now, tpp.AuditRecord{
				Actor: t.Actor, Action: tpp.AuditPaymentBankID, RequestID: t.RequestID, ClientID: p.ClientID,
				ConsentID: p.ConsentID, PaymentID: p.ID, Detail: fmt.Sprintf("bank id %d", t.BunqID),
			}); err != nil {
				return err
			}
		}
		if t.To != "" {
			if !p.Status.CanTransitionTo(t.To) {
				if t.To == tpp.PaymentCancelled {
					return tpp.Errorf(tpp.EPaymentNotCancellable, "payment %q is %s and can no longer be cancelled", t.ID, p.Status)
				}
				return tpp.Errorf(tpp.EConflict, "payment %q is %s and cannot become %s", t.ID, p.Status, t.To)
			}
			set = append(set, "status = ?", "error_code = ?")
			args = append(args, string(t.To), t.ErrorCode)
		}
		args = append(args, t.ID, string(p.Status))
		res, err := tx.ExecContext(ctx, `UPDATE payments SET `+strings.Join(set, ", ")+` WHERE id = ? AND status = ?`, args...)
		if err != nil {
			if s.db.dialect.IsUnique(err) {
				return tpp.Wrap(err, tpp.EConflict, "bank payment %d is already recorded", t.BunqID)
			}
			return s.db.errorf("update payment: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return tpp.Errorf(tpp.EConflict, "payment %q changed concurrently", t.ID)
		}
		if t.To != "" {
			if err := appendHistory(ctx, tx, p.ID, t.To, now); err != nil {
				return err
			}
			if err := insertAudit(ctx, tx, now, tpp.AuditRecord{
				Actor: t.Actor, Action: tpp.AuditPaymentTransition, RequestID: t.RequestID, ClientID: p.ClientID,
				ConsentID: p.ConsentID, PaymentID: p.ID, From: string(p.Status), To: string(t.To), Detail: t.Detail,
			}); err != nil {
				return err
			}
			if _, err := insertEvent(ctx, tx, now, p.ClientID, tpp.EventPaymentUpdated, tpp.PaymentEventData{
				PaymentID: p.ID, ConsentID: p.ConsentID, Kind: string(p.Kind), Status: string(t.To),
				PreviousStatus: string(p.Status), ErrorCode: t.ErrorCode,
			}); err != nil {
				return err
			}
		}
		out, err = s.scoped(ctx, tx, "", t.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
