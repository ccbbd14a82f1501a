package pisp

import (
	"context"
	"slices"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/bankerr"
	"github.com/bunqtpp/tpp/psd2"
)

// Events queues webhook events outside a payment change (*sqlite.Outbox).
type Events interface {
	EnqueueEvent(ctx context.Context, clientID, typ string, data any) (*tpp.WebhookEvent, error)
}

// EventPaymentDecidedOutsideFlow tells a fintech that the user decided its
// single payment at bunq during an authorization that was not the
// payment's own (bunq shows all pending PSP drafts on its page).
const EventPaymentDecidedOutsideFlow = "payment.decided_outside_flow"

// DecidedOutsideFlowData is the data of EventPaymentDecidedOutsideFlow.
type DecidedOutsideFlowData struct {
	PaymentID string `json:"payment_id"`
	Kind      string `json:"kind"`
	Status    string `json:"status"`
	ErrorCode string `json:"error_code,omitempty"`
}

// AfterAuthorization runs after every authorization that came back from
// bunq (consent c's, whatever the outcome). bunq's page shows, and
// decides together, all of the PSP's pending drafts for that user, so
// any pending single payment may have been decided there. The bank's PSP
// drafts are read once and every pending single payment whose draft was
// decided is settled; one that is not c's own was decided outside its
// flow: it is recorded with the real outcome (never attributed to c),
// audited as such and reported to its fintech with
// EventPaymentDecidedOutsideFlow. c's own payment is always re-read, so an
// authorization the user declined cancels its draft at once. Failures are
// logged: the poller settles what is left.
func (s *Service) AfterAuthorization(ctx context.Context, consentID, requestID string) {
	ctx = context.WithoutCancel(ctx)
	c, err := s.consents.ConsentByID(ctx, consentID)
	if err != nil {
		s.log.WarnContext(ctx, "consent not read after an authorization", "consent_id", consentID, "error", err)
		return
	}
	pending, err := s.pendingSingles(ctx)
	if err != nil {
		s.log.WarnContext(ctx, "pending single payments not read after an authorization", "consent_id", c.ID, "error", err)
		return
	}
	if len(pending) == 0 {
		return
	}
	bc, err := s.tppContext(ctx)
	if err != nil {
		s.log.WarnContext(ctx, "no TPP context to settle PSP drafts", "consent_id", c.ID, "error", err)
		return
	}
	var decided map[int64]psd2.PSPDraftPayment
	if slices.ContainsFunc(pending, func(p *tpp.Payment) bool { return p.ConsentID != c.ID && p.BunqID != 0 }) {
		// Only drafts that exist can have been shown on bunq's page.
		if decided, err = s.decidedPSPDrafts(ctx, bc); err != nil {
			s.log.WarnContext(ctx, "PSP drafts not read after an authorization", "consent_id", c.ID, "error", err)
		}
	}
	for _, p := range pending {
		var err error
		switch d, ok := decided[p.BunqID]; {
		case p.ConsentID == c.ID:
			_, err = s.Sync(ctx, p, requestID)
		case ok && p.BunqID != 0:
			if !pspMatches(&d, p) {
				err = errMismatch
				break
			}
			_, err = s.settleSingle(ctx, bc, p, &d, c.ID, requestID)
		}
		if err != nil {
			s.log.WarnContext(ctx, "single payment not settled after an authorization", "payment_id", p.ID, "error", err)
		}
	}
}

// pendingSingles lists the pending single payments.
func (s *Service) pendingSingles(ctx context.Context) ([]*tpp.Payment, error) {
	var out []*tpp.Payment
	pr := tpp.PageRequest{Limit: tpp.MaxPageLimit}
	for len(out) < s.batch {
		page, err := s.payments.ListPayments(ctx, tpp.PaymentFilter{Status: tpp.PaymentPending, Kind: tpp.PaymentSingle}, pr)
		if err != nil {
			return nil, err
		}
		for _, p := range page.Items {
			if p.Kind == tpp.PaymentSingle {
				out = append(out, p)
			}
		}
		if page.NextCursor == "" {
			break
		}
		pr.Cursor = page.NextCursor
	}
	return out, nil
}

// decidedPSPDrafts reads the TPP's recent PSP drafts that are no longer
// pending, by id.
func (s *Service) decidedPSPDrafts(ctx context.Context, bc *psd2.Context) (map[int64]psd2.PSPDraftPayment, error) {
	out := map[int64]psd2.PSPDraftPayment{}
	page := psd2.Page{Count: 200}
	for range reconcilePages {
		l, err := s.bank.ListPSPDraftPayments(ctx, bc, page)
		if err != nil {
			return out, bankerr.FromBank(err)
		}
		for _, d := range l.Items {
			if d.Status != psd2.StatusPending {
				out[d.ID] = d
			}
		}
		next, ok := l.Pagination.Older()
		if !ok {
			break
		}
		page = next
	}
	return out, nil
}

// reportOutsideFlow logs and queues EventPaymentDecidedOutsideFlow for p.
func (s *Service) reportOutsideFlow(ctx context.Context, p *tpp.Payment, during string) {
	s.log.WarnContext(ctx, "single payment decided outside its own authorization",
		"payment_id", p.ID, "status", p.Status, "during_consent_id", during)
	if s.events == nil {
		return
	}
	if _, err := s.events.EnqueueEvent(ctx, p.ClientID, EventPaymentDecidedOutsideFlow, DecidedOutsideFlowData{
		PaymentID: p.ID, Kind: string(p.Kind), Status: string(p.Status), ErrorCode: p.ErrorCode,
	}); err != nil {
		s.log.ErrorContext(ctx, "queueing the decided-outside-flow event failed", "payment_id", p.ID, "error", err)
	}
}
