package pisp

import (
	"context"
	"encoding/json"
	"net/http"

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

// CreateSinglePayment prepares a single payment: a PSP draft payment made
// with the TPP's own context, and a consent (scope payments, marked with
// SinglePaymentUserRef) through which the user authorizes at bunq. bunq
// shows the payment on its authorization page; approving the
// authorization approves the payment. authorize_url is the consent's
// /connect page, so the state, browser binding and code exchange are the
// OAuth flow's, and the browser ends at return_url.
//
// Idempotency and failures work as in CreatePayment. PSP drafts read back
// without a description, so after an ambiguous failure the draft is found
// by sender, receiver, amount and pending status among those no payment
// has claimed yet.
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
	p, keep, err := s.createSingle(ctx, in, d)
	return s.finish(ctx, in.Client.ID, in.Key, keep, err, func() (*Created, error) {
		body, err := json.Marshal(singleView(p, s.authorizeURL(p.ConsentID)))
		if err != nil {
			return nil, err
		}
		return &Created{Status: http.StatusCreated, Body: body, Location: SinglePaymentLocation(p.ID)}, nil
	})
}

func (s *Service) createSingle(ctx context.Context, in CreateSingleInput, d singleInput) (p *tpp.Payment, keep bool, err error) {
	bc, err := s.tppContext(ctx)
	if err != nil {
		return nil, false, bankerr.FromBank(err)
	}
	actor := tpp.ActorClient(in.Client.ID)
	c, err := s.consents.CreateConsent(ctx, tpp.NewConsent{
		ClientID: in.Client.ID, UserRef: SinglePaymentUserRef, Scopes: []tpp.Scope{tpp.ScopePayments},
		ReturnURL: d.returnURL, Actor: actor, RequestID: in.RequestID,
	})
	if err != nil {
		return nil, false, err
	}
	p, err = s.payments.CreatePayment(ctx, tpp.NewPayment{
		ConsentID: c.ID, ClientID: in.Client.ID, Kind: tpp.PaymentSingle,
		AmountMinor: d.amountMinor, Currency: d.currency, DebtorIBAN: d.debtorIBAN, DebtorName: d.debtorName,
		CounterpartyIBAN: d.creditorIBAN, CounterpartyName: d.creditorName, Description: d.description,
		ReturnURL: d.returnURL, IdempotencyKey: in.Key, Actor: actor, RequestID: in.RequestID,
	})
	if err != nil {
		s.closeConsent(ctx, c.ID, tpp.ErrorCode(err), in.RequestID)
		return nil, false, err
	}
	id, err := s.bank.CreatePSPDraftPayment(ctx, bc, pspRequest(p))
	if err != nil {
		if ambiguous(err) {
			found, lerr := s.findPSPDraft(ctx, bc, p)
			switch {
			case lerr != nil:
				s.log.WarnContext(ctx, "PSP draft payment outcome unknown; the poller will reconcile it",
					"payment_id", p.ID, "error", err, "list_error", lerr)
				return nil, true, bankerr.FromBank(err)
			case found != 0:
				id, err = found, nil
			}
		}
		if err != nil {
			mapped := s.failCreate(ctx, p, err, in.RequestID)
			s.closeConsent(ctx, c.ID, tpp.ErrorCode(mapped), in.RequestID)
			return nil, false, mapped
		}
	}
	np, err := s.recordBankID(ctx, p, id, in.RequestID)
	if err != nil {
		return p, true, &unrecordedError{payment: p, err: err}
	}
	return np, false, nil
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
	if err != nil || c.Status != tpp.ConsentPending || !s.clock.Now().Before(c.ExpiresAt) {
		return ""
	}
	return s.authorizeURL(c.ID)
}

// SingleView renders a single payment for the API.
func SingleView(p *tpp.Payment, authorizeURL string) SinglePaymentJSON {
	return singleView(p, authorizeURL)
}
