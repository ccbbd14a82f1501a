package pisp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/bankerr"
	"github.com/bunqtpp/tpp/psd2"
)

// createTimeout bounds one create request's work. It runs detached from
// the caller's context: a client that hangs up must not cut a payment
// creation in half.
const createTimeout = 60 * time.Second

// Created is the answer to a create request, fresh or replayed.
type Created struct {
	Status   int
	Body     []byte // the JSON body
	Location string
	Replayed bool // the stored response of an earlier request with the key
	// RetryAfter is set on a 202: when to look at the payment again.
	RetryAfter time.Duration
}

// unrecordedRetry is the Retry-After of a 202: about when the poller, past
// the orphan grace, will have recorded the outcome.
const unrecordedRetry = 30 * time.Second

// unrecordedError: the bank took the payment but recording its bank id
// failed (the store was down or locked). The payment exists; the poller
// records the bank id and the key's answer once the store works.
type unrecordedError struct {
	payment *tpp.Payment
	err     error
}

func (e *unrecordedError) Error() string {
	return fmt.Sprintf("pisp: payment %s was taken by the bank but not recorded: %v", e.payment.ID, e.err)
}

func (e *unrecordedError) Unwrap() error { return e.err }

// CreatePaymentInput is one POST /v1/consents/{id}/payments.
type CreatePaymentInput struct {
	Client    *tpp.FintechClient
	ConsentID string
	// Key is the Idempotency-Key; Fingerprint the request's
	// tpp.RequestFingerprint.
	Key         string
	Fingerprint string
	Request     PaymentRequest
	RequestID   string
}

// CreatePayment prepares a draft payment at bunq for the user to approve.
//
// Idempotency: the same key and body replay the stored response (the bank
// is called once); another body gets idempotency_key_reused; a request
// while the first with the key is still running gets
// idempotency_key_in_flight (409: retry later; it never waits).
//
// Nothing is half-written: the payment is recorded (pending, with its id as
// the draft's merchant_reference) before the bank call, and then gets the
// bank's draft id, or becomes failed with the reason and the key is
// released. After an ambiguous failure (sent, no answer) the drafts at the
// bank are listed and searched for the payment's id before anything else:
// a draft that was made is adopted, never made twice. If even the listing
// fails the payment stays pending without a bank id and the key stays in
// flight; the poller settles both later.
func (s *Service) CreatePayment(ctx context.Context, in CreatePaymentInput) (*Created, error) {
	d, err := in.Request.validate()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), createTimeout)
	defer cancel()
	rec, fresh, err := s.idem.BeginIdempotent(ctx, in.Client.ID, in.Key, in.Fingerprint)
	if err != nil {
		return nil, err
	}
	if !fresh {
		return replay(rec, func(id string) string { return PaymentLocation(in.ConsentID, id) }), nil
	}
	p, keep, err := s.createDraft(ctx, in, d)
	return s.finish(ctx, in.Client.ID, in.Key, keep, err, func() (*Created, error) {
		body, err := json.Marshal(PaymentView(p))
		if err != nil {
			return nil, err
		}
		return &Created{Status: http.StatusCreated, Body: body, Location: PaymentLocation(p.ConsentID, p.ID)}, nil
	})
}

// finish completes or releases the idempotency record of a create request.
// keep leaves it in flight: the outcome at the bank is not known yet.
func (s *Service) finish(ctx context.Context, clientID, key string, keep bool, err error, ok func() (*Created, error)) (*Created, error) {
	var ue *unrecordedError
	if errors.As(err, &ue) {
		// Not a 500 inviting a blind retry: the payment exists. The key
		// stays in flight until the poller stores the 201.
		s.log.ErrorContext(ctx, "payment taken by the bank but not recorded; the poller will record it",
			"payment_id", ue.payment.ID, "error", ue.err)
		out, verr := ok()
		if verr != nil {
			return nil, err
		}
		out.Status, out.RetryAfter = http.StatusAccepted, unrecordedRetry
		return out, nil
	}
	if err == nil {
		var out *Created
		if out, err = ok(); err == nil {
			if cerr := s.idem.CompleteIdempotent(ctx, clientID, key, out.Status, out.Body); cerr != nil {
				// The payment exists; only the replay is lost. A retry
				// gets 409 until the key expires, never a second payment.
				s.log.ErrorContext(ctx, "storing idempotent response failed", "error", cerr)
			}
			return out, nil
		}
		keep = true // something exists at the bank; do not free the key
	}
	if !keep {
		if rerr := s.idem.ReleaseIdempotent(ctx, clientID, key); rerr != nil {
			s.log.ErrorContext(ctx, "releasing idempotency key failed", "error", rerr)
		}
	}
	return nil, err
}

func replay(rec *tpp.IdempotencyRecord, location func(id string) string) *Created {
	out := &Created{Status: rec.ResponseStatus, Body: rec.ResponseBody, Replayed: true}
	var v struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(rec.ResponseBody, &v) == nil && v.ID != "" {
		out.Location = location(v.ID)
	}
	return out
}

// createDraft does the work of CreatePayment. keep reports that the bank
// may hold a draft for the payment although err is set.
func (s *Service) createDraft(ctx context.Context, in CreatePaymentInput, d draftInput) (p *tpp.Payment, keep bool, err error) {
	c, err := s.gate.Open(ctx, in.Client.ID, in.ConsentID, tpp.ScopePayments)
	if err != nil {
		return nil, false, err
	}
	bc, err := s.contexts.Get(ctx, c)
	if err != nil {
		return nil, false, s.gate.BankError(ctx, c, err)
	}
	if err := s.checkAccount(ctx, c, bc, d); err != nil {
		return nil, false, err
	}
	p, err = s.payments.CreatePayment(ctx, tpp.NewPayment{
		ConsentID: c.ID, ClientID: in.Client.ID, Kind: tpp.PaymentDraft, AccountID: d.accountID,
		AmountMinor: d.amountMinor, Currency: d.currency, CounterpartyIBAN: d.iban, CounterpartyName: d.name,
		Description: d.description, Reference: d.reference, IdempotencyKey: in.Key,
		Actor: tpp.ActorClient(in.Client.ID), RequestID: in.RequestID,
	})
	if err != nil {
		return nil, false, err
	}
	id, err := s.bank.CreateDraftPayment(ctx, bc, p.AccountID, draftRequest(p))
	if err != nil {
		if ambiguous(err) {
			found, lerr := s.findDraft(ctx, bc, p)
			switch {
			case lerr != nil:
				s.log.WarnContext(ctx, "draft payment outcome unknown; the poller will reconcile it",
					"payment_id", p.ID, "error", err, "list_error", lerr)
				return nil, true, bankerr.FromBank(err)
			case found != 0:
				s.log.InfoContext(ctx, "draft payment found at the bank after an ambiguous failure", "payment_id", p.ID, "bunq_id", found)
				id, err = found, nil
			}
		}
		if err != nil {
			return nil, false, s.failCreate(ctx, p, s.gate.BankError(ctx, c, err), in.RequestID)
		}
	}
	np, err := s.recordBankID(ctx, p, id, in.RequestID)
	if err != nil {
		return p, true, &unrecordedError{payment: p, err: err}
	}
	return np, false, nil
}

// checkAccount refuses, before anything is recorded, a payment from an
// account the consent does not see or in a currency the account does not
// hold: a request the bank would refuse leaves no payment behind.
func (s *Service) checkAccount(ctx context.Context, c *tpp.Consent, bc *psd2.Context, d draftInput) error {
	a, err := s.bank.GetMonetaryAccount(ctx, bc, d.accountID)
	if err != nil {
		mapped := s.gate.BankError(ctx, c, err)
		if tpp.ErrorCode(mapped) == tpp.ENotFound {
			return tpp.Wrap(err, tpp.EAccountNotFound, "no account %q under this consent", tpp.AccountID(d.accountID))
		}
		return mapped
	}
	if a.Currency != "" && a.Currency != d.currency {
		return tpp.Errorf(tpp.EInvalidCurrency, "account %q holds %s; the payment's currency must be %s",
			tpp.AccountID(d.accountID), a.Currency, a.Currency)
	}
	return nil
}

// recordBankID stores the bank's id of a payment.
func (s *Service) recordBankID(ctx context.Context, p *tpp.Payment, id int64, requestID string) (*tpp.Payment, error) {
	np, err := s.payments.TransitionPayment(ctx, tpp.PaymentTransition{
		ID: p.ID, BunqID: id, Actor: tpp.ActorSystem, RequestID: requestID,
		Detail: fmt.Sprintf("bank %s payment %d", p.Kind, id),
	})
	if err != nil {
		return nil, fmt.Errorf("pisp: record bank id %d of payment %s: %w", id, p.ID, err)
	}
	return np, nil
}

// failCreate marks a payment failed after a bank call that did nothing
// and returns the API error for the caller.
func (s *Service) failCreate(ctx context.Context, p *tpp.Payment, bankErr error, requestID string) error {
	mapped := bankerr.FromBank(bankErr)
	if tpp.ErrorCode(mapped) == tpp.ENotFound && p.Kind == tpp.PaymentDraft {
		// The bank's 404 on …/monetary-account/{id}/draft-payment: the
		// account is not the user's.
		mapped = tpp.Wrap(bankErr, tpp.EAccountNotFound, "no account %q under this consent", tpp.AccountID(p.AccountID))
	}
	if _, err := s.payments.TransitionPayment(ctx, tpp.PaymentTransition{
		ID: p.ID, To: tpp.PaymentFailed, ErrorCode: tpp.ErrorCode(mapped), Actor: tpp.ActorSystem,
		RequestID: requestID, Detail: "bank refused or did not take the payment: " + tpp.ErrorMessage(mapped),
	}); err != nil {
		s.log.ErrorContext(ctx, "marking payment failed", "payment_id", p.ID, "error", err)
	}
	return mapped
}

// ambiguous reports whether the bank may have acted on a create call that
// failed: sent without an answer, a 2xx answer we cannot trust or read, or a
// server error.
func ambiguous(err error) bool {
	var te *psd2.TransportError
	if errors.As(err, &te) {
		return te.Ambiguous()
	}
	var ae *psd2.APIError
	if errors.As(err, &ae) {
		return ae.Kind == psd2.KindServer || ae.Kind == psd2.KindMaintenance
	}
	return errors.Is(err, psd2.ErrBadServerSignature) || errors.Is(err, psd2.ErrUnexpectedResponse) ||
		errors.Is(err, context.DeadlineExceeded)
}

func draftRequest(p *tpp.Payment) psd2.DraftPaymentRequest {
	return psd2.DraftPaymentRequest{
		Entries: []psd2.DraftPaymentEntry{{
			Amount:            psd2.Amount{Value: tpp.FormatMinor(p.AmountMinor), Currency: p.Currency},
			CounterpartyAlias: psd2.IBANPointer(p.CounterpartyIBAN, p.CounterpartyName),
			Description:       p.Description,
			// The payment id marks the draft as ours: reconciliation
			// finds it by this, never by amount alone.
			MerchantReference: p.ID,
		}},
		NumberOfRequiredAccepts: 1,
	}
}

// draftMatches reports whether a bank draft is the one made for p: one
// entry with p's amount, counterparty and description, and p's id as its
// merchant_reference when the bank echoes one. bunq does not document the
// echo (real payloads show null), so an empty reference is no mismatch.
func draftMatches(d *psd2.DraftPayment, p *tpp.Payment) bool {
	if len(d.Entries) != 1 {
		return false
	}
	e := d.Entries[0]
	if e.MerchantReference != "" && e.MerchantReference != p.ID {
		return false
	}
	minor, err := tpp.ParseMinor(e.Amount.Value)
	if err != nil {
		return false
	}
	cp, _ := tpp.NormalizeIBAN(e.CounterpartyAlias.IBAN)
	return minor == p.AmountMinor && e.Amount.Currency == p.Currency && cp == p.CounterpartyIBAN &&
		e.Description == p.Description
}

// reconcileSkew widens the window around a payment's creation in which an
// unreferenced draft may have been made for it: the create call lasts up
// to createTimeout, and the bank's clock is not ours.
const reconcileSkew = 5 * time.Minute

// findDraft searches the account's recent drafts for p's; 0 when absent. A
// draft carrying p's id as merchant_reference is p's. Without the echo, a
// draft is taken for p only by content (draftMatches), still pending,
// made within the create window and claimed by no other payment; of
// several, the oldest (identical drafts are interchangeable; the others
// stay unclaimed).
func (s *Service) findDraft(ctx context.Context, bc *psd2.Context, p *tpp.Payment) (int64, error) {
	from, to := p.CreatedAt.Add(-reconcileSkew), p.CreatedAt.Add(createTimeout+reconcileSkew)
	var found int64
	page := psd2.Page{Count: 200}
	for range reconcilePages {
		l, err := s.bank.ListDraftPayments(ctx, bc, p.AccountID, page)
		if err != nil {
			return 0, err
		}
		for i := range l.Items {
			d := &l.Items[i]
			if !draftMatches(d, p) {
				continue
			}
			if d.Entries[0].MerchantReference == p.ID {
				return d.ID, nil
			}
			if d.Status != psd2.StatusPending || d.Created.Before(from) || d.Created.After(to) {
				continue
			}
			switch _, err := s.payments.PaymentByBunqID(ctx, tpp.PaymentDraft, d.ID); tpp.ErrorCode(err) {
			case tpp.EPaymentNotFound:
				found = d.ID // listings are newest first: the last seen is the oldest
			case "":
			default:
				return 0, err
			}
		}
		next, ok := l.Pagination.Older()
		if !ok {
			break
		}
		page = next
	}
	return found, nil
}

// Payment returns a draft payment of a client's consent, first bringing a
// pending one up to date with the bank (best effort: when the bank cannot
// be asked, the stored state is returned).
func (s *Service) Payment(ctx context.Context, clientID, consentID, paymentID, requestID string) (*tpp.Payment, error) {
	c, err := s.gate.Read(ctx, clientID, consentID, tpp.ScopePayments)
	if err != nil {
		return nil, err
	}
	p, err := s.payments.Payment(ctx, clientID, paymentID)
	if err != nil {
		return nil, err
	}
	if p.ConsentID != c.ID || p.Kind != tpp.PaymentDraft {
		return nil, tpp.Errorf(tpp.EPaymentNotFound, "payment %q not found", paymentID)
	}
	if np, err := s.Sync(ctx, p, requestID); err == nil {
		p = np
	} else {
		s.log.InfoContext(ctx, "payment status not refreshed from the bank", "payment_id", p.ID, "error", err)
	}
	return p, nil
}

// Payments lists the draft payments of a client's consent, newest first.
func (s *Service) Payments(ctx context.Context, clientID, consentID string, pr tpp.PageRequest) (tpp.Page[*tpp.Payment], error) {
	c, err := s.gate.Read(ctx, clientID, consentID, tpp.ScopePayments)
	if err != nil {
		return tpp.Page[*tpp.Payment]{}, err
	}
	return s.payments.ListPayments(ctx, tpp.PaymentFilter{ClientID: clientID, ConsentID: c.ID, Kind: tpp.PaymentDraft}, pr)
}

// CancelPayment cancels a pending draft payment at bunq (PUT status
// CANCELLED) and then here. A cancelled payment is returned unchanged;
// one in another final status gives payment_not_cancellable.
func (s *Service) CancelPayment(ctx context.Context, clientID, consentID, paymentID, requestID string) (*tpp.Payment, error) {
	c, err := s.gate.Read(ctx, clientID, consentID, tpp.ScopePayments)
	if err != nil {
		return nil, err
	}
	p, err := s.payments.Payment(ctx, clientID, paymentID)
	if err != nil {
		return nil, err
	}
	if p.ConsentID != c.ID || p.Kind != tpp.PaymentDraft {
		return nil, tpp.Errorf(tpp.EPaymentNotFound, "payment %q not found", paymentID)
	}
	switch {
	case p.Status == tpp.PaymentCancelled:
		return p, nil
	case p.Status.Terminal():
		return nil, notCancellable(p)
	case p.BunqID == 0:
		return nil, tpp.Errorf(tpp.EConflict, "payment %s is still being created at the bank; try again shortly", p.ID)
	}
	if c, err = s.gate.Open(ctx, clientID, consentID, tpp.ScopePayments); err != nil {
		return nil, err
	}
	bc, err := s.contexts.Get(ctx, c)
	if err != nil {
		return nil, s.gate.BankError(ctx, c, err)
	}
	d, err := s.bank.GetDraftPayment(ctx, bc, p.AccountID, p.BunqID)
	if err != nil {
		return nil, s.gate.BankError(ctx, c, err)
	}
	if d.Status == psd2.StatusPending {
		err = s.bank.UpdateDraftPayment(ctx, bc, p.AccountID, p.BunqID, psd2.DraftPaymentUpdate{
			Status: psd2.StatusCancelled, Entries: writeEntries(d.Entries), NumberOfRequiredAccepts: 1,
			PreviousUpdatedTimestamp: d.Updated.Raw,
		})
		if err == nil {
			np, terr := s.payments.TransitionPayment(ctx, tpp.PaymentTransition{
				ID: p.ID, ClientID: clientID, To: tpp.PaymentCancelled, Actor: tpp.ActorClient(clientID),
				RequestID: requestID, Detail: "cancelled by the client",
			})
			if terr == nil {
				return np, nil
			}
			if tpp.ErrorCode(terr) != tpp.EConflict && tpp.ErrorCode(terr) != tpp.EPaymentNotCancellable {
				return nil, terr
			}
		} else if mapped := s.gate.BankError(ctx, c, err); tpp.ErrorCode(mapped) != tpp.EBankRejected {
			return nil, mapped
		}
	}
	// The draft was answered at the bank meanwhile (or just now by us
	// and someone else recorded it): take the bank's word.
	np, err := s.Sync(ctx, p, requestID)
	if err != nil {
		return nil, err
	}
	if np.Status == tpp.PaymentCancelled {
		return np, nil
	}
	return nil, notCancellable(np)
}

func notCancellable(p *tpp.Payment) error {
	return tpp.Errorf(tpp.EPaymentNotCancellable, "payment %s is %s and can no longer be cancelled", p.ID, p.Status)
}

// writeEntries turns a draft's entries as read back into the entries an
// update must repeat.
func writeEntries(in []psd2.DraftPaymentEntryRead) []psd2.DraftPaymentEntry {
	out := make([]psd2.DraftPaymentEntry, 0, len(in))
	for _, e := range in {
		out = append(out, psd2.DraftPaymentEntry{
			ID: e.ID, Amount: e.Amount,
			CounterpartyAlias: psd2.IBANPointer(e.CounterpartyAlias.IBAN, e.CounterpartyAlias.DisplayName),
			Description:       e.Description, MerchantReference: e.MerchantReference,
		})
	}
	return out
}
