package pisp

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/bankerr"
	"github.com/bunqtpp/tpp/psd2"
)

// CreateSingleInput is one POST /v1/single-payments.
type CreateSingleInput struct {
	Client      *tpp.FintechClient
	Key         string
	Fingerprint string
	Request     SinglePaymentRequest
	RequestID   string
}

// CreateSinglePayment records a single payment: a PSP draft payment made
// with the TPP's own context, and a consent (scope payments, marked with
// SinglePaymentUserRef) through which the user authorizes at bunq.
// authorize_url is the consent's /connect page, so the state, browser
// binding and code exchange are the OAuth flow's, and the browser ends at
// return_url.
//
// Nothing goes to the bank here. bunq's authorization page shows all of a
// PSP's pending drafts for the user, whatever the authorization is for,
// and decides them together: a draft made now would be shown, and
// approved, inside the next authorization of that user, even another
// fintech's accounts-only one. The PSP draft is made when the user
// continues from our consent page (PrepareSingle), and at most one
// unfinished single payment per debtor IBAN exists at a time (the store
// refuses a second with payment_in_progress).
func (s *Service) CreateSinglePayment(ctx context.Context, in CreateSingleInput) (*Created, error) {
	d, err := in.Request.validate(in.Client)
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
		return replay(rec, SinglePaymentLocation), nil
	}
	p, err := s.createSingle(ctx, in, d)
	return s.finish(ctx, in.Client.ID, in.Key, false, err, func() (*Created, error) {
		body, err := json.Marshal(singleView(p, s.authorizeURL(p.ConsentID)))
		if err != nil {
			return nil, err
		}
		return &Created{Status: http.StatusCreated, Body: body, Location: SinglePaymentLocation(p.ID)}, nil
	})
}

// InProgressRetry is the Retry-After of payment_in_progress: the earlier
// payment ends within its consent's 15 minutes, usually much sooner.
const InProgressRetry = time.Minute

func (s *Service) createSingle(ctx context.Context, in CreateSingleInput, d singleInput) (*tpp.Payment, error) {
	if s.tpp == nil {
		return nil, &tpp.Error{Code: tpp.EBankUnavailable, Message: "Single payments are not configured on this TPP."}
	}
	actor := tpp.ActorClient(in.Client.ID)
	c, err := s.consents.CreateConsent(ctx, tpp.NewConsent{
		ClientID: in.Client.ID, UserRef: SinglePaymentUserRef, Scopes: []tpp.Scope{tpp.ScopePayments},
		ReturnURL: d.returnURL, Actor: actor, RequestID: in.RequestID,
	})
	if err != nil {
		return nil, err
	}
	p, err := s.payments.CreatePayment(ctx, tpp.NewPayment{
		ConsentID: c.ID, ClientID: in.Client.ID, Kind: tpp.PaymentSingle,
		AmountMinor: d.amountMinor, Currency: d.currency, DebtorIBAN: d.debtorIBAN, DebtorName: d.debtorName,
		CounterpartyIBAN: d.creditorIBAN, CounterpartyName: d.creditorName, Description: d.description,
		ReturnURL: d.returnURL, IdempotencyKey: in.Key, Actor: actor, RequestID: in.RequestID,
	})
	if err != nil {
		s.closeConsent(ctx, c.ID, tpp.ErrorCode(err), in.RequestID)
		var te *tpp.Error
		if errors.As(err, &te) && te.Code == tpp.EPaymentInProgress {
			te.RetryAfter = InProgressRetry
		}
		return nil, err
	}
	return p, nil
}

// PrepareSingle makes the PSP draft of the single payment consent c was
// made for, as the user continues from our consent page to bunq (see
// CreateSinglePayment). Other consents need nothing. A draft made on an
// earlier continue is kept; a draft the bank may hold from an earlier
// attempt whose answer was lost is found first, so none is made twice.
// Two continues at once may both make one: the store records the first
// bank id only, and the other draft is cancelled at once.
func (s *Service) PrepareSingle(ctx context.Context, c *tpp.Consent, requestID string) error {
	if !c.Internal() {
		return nil
	}
	p, err := s.consents.SinglePaymentOf(ctx, c.ID)
	if err != nil {
		return err
	}
	if p.Status != tpp.PaymentPending {
		return tpp.Errorf(tpp.EConflict, "payment %s is %s", p.ID, p.Status)
	}
	if p.BunqID != 0 {
		return nil
	}
	// The browser flow carries no API client: name it, so the draft's bank
	// calls count for its fintech's share of the TPP's bank budget.
	ctx, cancel := context.WithTimeout(psd2.WithBudgetShare(context.WithoutCancel(ctx), c.ClientID), createTimeout)
	defer cancel()
	bc, err := s.tppContext(ctx)
	if err != nil {
		return bankerr.FromBank(err)
	}
	id, err := s.findPSPDraft(ctx, bc, p)
	if err != nil {
		return bankerr.FromBank(err)
	}
	if id == 0 {
		if id, err = s.makePSPDraft(ctx, bc, p, requestID); err != nil {
			return err
		}
	}
	if _, err := s.recordBankID(ctx, p, id, requestID); err != nil {
		if np, gerr := s.payments.PaymentByID(ctx, p.ID); gerr == nil && np.BunqID != 0 && np.BunqID != id {
			// Another continue recorded its draft first: this one must
			// not linger on bunq's page.
			if cerr := s.bank.UpdatePSPDraftPayment(ctx, bc, id, psd2.StatusCancelled); cerr != nil {
				s.log.ErrorContext(ctx, "cancelling a second PSP draft failed", "payment_id", p.ID, "bunq_id", id, "error", cerr)
			}
			return nil
		}
		return err
	}
	return nil
}

// makePSPDraft creates p's PSP draft. After an ambiguous failure the bank's
// drafts are searched before anything else; a refusal fails the payment
// and closes its consent.
func (s *Service) makePSPDraft(ctx context.Context, bc *psd2.Context, p *tpp.Payment, requestID string) (int64, error) {
	id, err := s.bank.CreatePSPDraftPayment(ctx, bc, pspRequest(p))
	if err == nil {
		return id, nil
	}
	if ambiguous(err) {
		found, lerr := s.findPSPDraft(ctx, bc, p)
		switch {
		case lerr != nil:
			s.log.WarnContext(ctx, "PSP draft payment outcome unknown; the next continue or the poller looks again",
				"payment_id", p.ID, "error", err, "list_error", lerr)
			return 0, bankerr.FromBank(err)
		case found != 0:
			return found, nil
		}
		// Not at the bank: nothing happened; the user may try again.
		return 0, bankerr.FromBank(err)
	}
	mapped := s.failCreate(ctx, p, err, requestID)
	s.closeConsent(ctx, p.ConsentID, tpp.ErrorCode(mapped), requestID)
	return 0, mapped
}

// closeConsent rejects the consent of a single payment that never reached
// the bank, so nobody can authorize it.
func (s *Service) closeConsent(ctx context.Context, consentID, code, requestID string) {
	if _, err := s.consents.TransitionConsent(ctx, tpp.ConsentTransition{
		ID: consentID, From: tpp.ConsentPending, To: tpp.ConsentRejected, ErrorCode: code,
		Actor: tpp.ActorSystem, RequestID: requestID, Detail: "single payment could not be created at the bank",
	}); err != nil {
		s.log.ErrorContext(ctx, "closing consent of failed single payment", "consent_id", consentID, "error", err)
	}
}

func pspRequest(p *tpp.Payment) psd2.PSPDraftPaymentRequest {
	return psd2.PSPDraftPaymentRequest{
		SenderIBAN: p.DebtorIBAN, SenderName: p.DebtorName,
		CounterpartyIBAN: p.CounterpartyIBAN, CounterpartyName: p.CounterpartyName,
		Description: p.Description,
		Amount:      psd2.Amount{Value: tpp.FormatMinor(p.AmountMinor), Currency: p.Currency},
	}
}

func pspMatches(d *psd2.PSPDraftPayment, p *tpp.Payment) bool {
	minor, err := tpp.ParseMinor(d.Amount.Value)
	if err != nil {
		return false
	}
	sender, _ := tpp.NormalizeIBAN(d.SenderIBAN)
	receiver, _ := tpp.NormalizeIBAN(d.ReceiverIBAN)
	return sender == p.DebtorIBAN && receiver == p.CounterpartyIBAN && minor == p.AmountMinor &&
		d.Amount.Currency == p.Currency
}

// findPSPDraft searches the TPP's recent PSP drafts for p's: a pending
// match that no other payment has recorded. 0 when absent.
func (s *Service) findPSPDraft(ctx context.Context, bc *psd2.Context, p *tpp.Payment) (int64, error) {
	page := psd2.Page{Count: 200}
	for range reconcilePages {
		l, err := s.bank.ListPSPDraftPayments(ctx, bc, page)
		if err != nil {
			return 0, err
		}
		for i := range l.Items {
			d := &l.Items[i]
			if d.Status != psd2.StatusPending || !pspMatches(d, p) {
				continue
			}
			_, err := s.payments.PaymentByBunqID(ctx, tpp.PaymentSingle, d.ID)
			switch tpp.ErrorCode(err) {
			case tpp.EPaymentNotFound:
				return d.ID, nil
			case "":
				continue // another payment's draft
			default:
				return 0, err
			}
		}
		next, ok := l.Pagination.Older()
		if !ok {
			return 0, nil
		}
		page = next
	}
	return 0, nil
}

// SinglePayment returns a client's single payment, first bringing a
// pending one up to date with the bank (best effort). authorizeURL is
// empty once the user can no longer authorize it.
func (s *Service) SinglePayment(ctx context.Context, clientID, paymentID, requestID string) (p *tpp.Payment, authorizeURL string, err error) {
	if clientID == "" {
		return nil, "", tpp.Errorf(tpp.EPaymentNotFound, "payment %q not found", paymentID)
	}
	p, err = s.payments.Payment(ctx, clientID, paymentID)
	if err != nil {
		return nil, "", err
	}
	if p.Kind != tpp.PaymentSingle {
		return nil, "", tpp.Errorf(tpp.EPaymentNotFound, "payment %q not found", paymentID)
	}
	if np, err := s.Sync(ctx, p, requestID); err == nil {
		p = np
	} else {
		s.log.InfoContext(ctx, "single payment status not refreshed from the bank", "payment_id", p.ID, "error", err)
	}
	return p, s.singleAuthorizeURL(ctx, p), nil
}

// singleAuthorizeURL is the consent page while the payment waits for a
// consent the user can still authorize.
func (s *Service) singleAuthorizeURL(ctx context.Context, p *tpp.Payment) string {
	if p.Status != tpp.PaymentPending {
		return ""
	}
	c, err := s.consents.ConsentByID(ctx, p.ConsentID)
	if err != nil || c.StatusAt(s.clock.Now()) != tpp.ConsentPending {
		return ""
	}
	return s.authorizeURL(c.ID)
}

// SingleView renders a single payment for the API.
func SingleView(p *tpp.Payment, authorizeURL string) SinglePaymentJSON {
	return singleView(p, authorizeURL)
}
