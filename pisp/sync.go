package pisp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/bankerr"
	"github.com/bunqtpp/tpp/psd2"
)

// errMismatch is a bank object that does not match the payment that names
// it. Nothing is changed on its account.
var errMismatch = errors.New("pisp: the bank's draft does not match the payment")

// draftOutcome maps a bunq draft payment to a payment status: ACCEPTED is
// executed once the draft holds the resulting payment (until then it is
// still pending here), COMPLETED executed, REJECTED rejected, CANCELLED
// cancelled, EXPIRED failed (consent_expired: never answered in time),
// PENDING pending. known is false for any other status: the payment then
// stays pending (the caller logs and counts it), as a guess could report
// moved money as failed.
func draftOutcome(d *psd2.DraftPayment) (to tpp.PaymentStatus, code string, known bool) {
	if d.Status == psd2.StatusAccepted {
		if _, ok := d.PaymentID(); ok {
			return tpp.PaymentExecuted, "", true
		}
		return tpp.PaymentPending, "", true
	}
	return pspOutcome(d.Status)
}

// pspOutcome maps a PSP draft payment's status. bunq shows no resulting
// payment on PSP drafts: ACCEPTED and COMPLETED are executed (bunq-api.md
// §12.1). known as in draftOutcome.
func pspOutcome(status string) (to tpp.PaymentStatus, code string, known bool) {
	switch status {
	case psd2.StatusPending:
		return tpp.PaymentPending, "", true
	case psd2.StatusAccepted, psd2.StatusCompleted:
		return tpp.PaymentExecuted, "", true
	case psd2.StatusRejected:
		return tpp.PaymentRejected, "", true
	case psd2.StatusCancelled:
		return tpp.PaymentCancelled, "", true
	case psd2.StatusExpired:
		return tpp.PaymentFailed, tpp.EConsentExpired, true
	}
	return tpp.PaymentPending, "", false
}

// unknownStatus reports a bank status pisp does not know: logged and
// counted (Config.OnUnknownStatus), the payment left pending.
func (s *Service) unknownStatus(ctx context.Context, p *tpp.Payment, status string) {
	s.log.ErrorContext(ctx, "bank reports a draft status this TPP does not know; the payment stays pending",
		"payment_id", p.ID, "kind", p.Kind, "bank_status", safeStatus(status))
	if s.onUnknown != nil {
		s.onUnknown(string(p.Kind))
	}
}

// safeStatus keeps a bank-supplied status loggable.
func safeStatus(v string) string {
	if len(v) > 32 {
		v = v[:32]
	}
	return strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '?'
	}, v)
}

// Sync brings a pending payment up to date with the bank: it reads the
// draft with the payment's own bank id and context (never trusting what a
// caller claims), checks that it is the payment's, and records a new
// status. It is idempotent: a payment already moved is returned as it is.
func (s *Service) Sync(ctx context.Context, p *tpp.Payment, requestID string) (*tpp.Payment, error) {
	if p.Status.Terminal() || p.BunqID == 0 {
		return p, nil
	}
	var (
		to     tpp.PaymentStatus
		code   string
		detail string
		err    error
	)
	switch p.Kind {
	case tpp.PaymentDraft:
		to, code, detail, err = s.draftStatus(ctx, p)
	case tpp.PaymentSingle:
		return s.syncSingle(ctx, p, "", requestID)
	default:
		return p, fmt.Errorf("pisp: payment %s has unknown kind %q", p.ID, p.Kind)
	}
	if err != nil || to == tpp.PaymentPending {
		return p, err
	}
	return s.record(ctx, p, to, code, detail, requestID)
}

// record moves p to a status the bank reported.
func (s *Service) record(ctx context.Context, p *tpp.Payment, to tpp.PaymentStatus, code, detail, requestID string) (*tpp.Payment, error) {
	np, err := s.payments.TransitionPayment(ctx, tpp.PaymentTransition{
		ID: p.ID, To: to, ErrorCode: code, Actor: tpp.ActorBank, RequestID: requestID, Detail: detail,
	})
	if err != nil {
		if c := tpp.ErrorCode(err); c == tpp.EConflict || c == tpp.EPaymentNotCancellable {
			// Someone recorded it first (a callback and the poller).
			return s.payments.PaymentByID(ctx, p.ID)
		}
		return p, err
	}
	s.log.InfoContext(ctx, "payment status changed", "payment_id", p.ID, "from", p.Status, "to", to)
	return np, nil
}

func (s *Service) draftStatus(ctx context.Context, p *tpp.Payment) (tpp.PaymentStatus, string, string, error) {
	c, err := s.consents.ConsentByID(ctx, p.ConsentID)
	if err != nil {
		return "", "", "", err
	}
	if c.Status != tpp.ConsentActive {
		// No grant to read with; the status stays as last seen.
		return tpp.PaymentPending, "", "", nil
	}
	bc, err := s.contexts.Get(ctx, c)
	if err != nil {
		return "", "", "", s.gate.BankError(ctx, c, err)
	}
	d, err := s.bank.GetDraftPayment(ctx, bc, p.AccountID, p.BunqID)
	if err != nil {
		return "", "", "", s.gate.BankError(ctx, c, err)
	}
	if d.ID != p.BunqID || !draftMatches(&d, p) {
		s.log.ErrorContext(ctx, "bank draft does not match payment", "payment_id", p.ID, "bunq_id", p.BunqID)
		return "", "", "", errMismatch
	}
	to, code, known := draftOutcome(&d)
	if !known {
		s.unknownStatus(ctx, p, d.Status)
	}
	return to, code, "bank draft payment status " + d.Status, nil
}

// syncSingle reads p's PSP draft with the TPP's context and settles p
// (settleSingle).
func (s *Service) syncSingle(ctx context.Context, p *tpp.Payment, during, requestID string) (*tpp.Payment, error) {
	bc, err := s.tppContext(ctx)
	if err != nil {
		return p, bankerr.FromBank(err)
	}
	d, err := s.bank.GetPSPDraftPayment(ctx, bc, p.BunqID)
	if err != nil {
		return p, bankerr.FromBank(err)
	}
	if d.ID != p.BunqID || !pspMatches(&d, p) {
		s.log.ErrorContext(ctx, "bank PSP draft does not match payment", "payment_id", p.ID, "bunq_id", p.BunqID)
		return p, errMismatch
	}
	return s.settleSingle(ctx, bc, p, &d, during, requestID)
}

// settleSingle records what p's PSP draft d says. A decided draft belongs
// to p's own flow once p's consent came back from bunq (active or
// rejected). While that consent can still come back, a decision waits for
// it (bunq's callback may overtake the browser), unless during names the
// other authorization that just came back: bunq showed and decided d on
// that one's page. Then, as for a consent that ran out, the payment gets
// the real outcome, audited as decided outside its flow and reported to
// its fintech (EventPaymentDecidedOutsideFlow), never attributed to the
// other consent. A pending draft whose authorization has ended is
// cancelled (abandoned).
func (s *Service) settleSingle(ctx context.Context, bc *psd2.Context, p *tpp.Payment, d *psd2.PSPDraftPayment, during, requestID string) (*tpp.Payment, error) {
	to, code, known := pspOutcome(d.Status)
	if !known {
		s.unknownStatus(ctx, p, d.Status)
		return p, nil
	}
	if to == tpp.PaymentPending {
		to, code, detail, err := s.abandoned(ctx, bc, p)
		if err != nil || to == tpp.PaymentPending {
			return p, err
		}
		return s.record(ctx, p, to, code, detail, requestID)
	}
	if to == tpp.PaymentCancelled {
		// The TPP cancels the PSP draft of an abandoned payment (abandoned):
		// read back, that is the abandonment, not a cancellation. The
		// bank's callback about it can land before the poller records it.
		ato, acode, err := s.abandonment(ctx, p)
		if err != nil {
			return p, err
		}
		if ato != tpp.PaymentPending {
			return s.record(ctx, p, ato, acode, "authorization not given; PSP draft payment cancelled at the bank", requestID)
		}
	}
	detail := "bank PSP draft payment status " + d.Status
	if to != tpp.PaymentExecuted && to != tpp.PaymentRejected {
		// Not the user's decision (cancelled by us, expired at the bank).
		return s.record(ctx, p, to, code, detail, requestID)
	}
	c, err := s.consents.ConsentByID(ctx, p.ConsentID)
	if err != nil {
		return p, err
	}
	switch {
	case c.Status == tpp.ConsentActive || c.Status == tpp.ConsentRejected:
		if to == tpp.PaymentRejected && code == "" {
			code = c.ErrorCode // why the authorization was declined
		}
		return s.record(ctx, p, to, code, detail, requestID)
	case during == "" && c.StatusAt(s.clock.Now()) == tpp.ConsentPending:
		return p, nil
	case during != "":
		detail += fmt.Sprintf(", decided outside its own authorization (on bunq's page of consent %s); not attributed to that consent", during)
	default:
		detail += ", decided outside its own authorization (which never came back from bunq)"
	}
	np, err := s.record(ctx, p, to, code, detail, requestID)
	if err == nil && np.Status == to && np.Status != p.Status {
		s.reportOutsideFlow(ctx, np, during)
	}
	return np, err
}

// abandonment is what a single payment becomes when its consent can no
// longer be authorized: rejected when the user denied it, failed with
// consent_expired when it expired; pending while it can still be given.
func (s *Service) abandonment(ctx context.Context, p *tpp.Payment) (tpp.PaymentStatus, string, error) {
	c, err := s.consents.ConsentByID(ctx, p.ConsentID)
	if err != nil {
		return "", "", err
	}
	switch {
	case c.Status == tpp.ConsentRejected:
		return tpp.PaymentRejected, c.ErrorCode, nil
	case c.StatusAt(s.clock.Now()) == tpp.ConsentExpired:
		return tpp.PaymentFailed, tpp.EConsentExpired, nil
	}
	return tpp.PaymentPending, "", nil
}

// abandoned ends a pending single payment whose consent the user can no
// longer authorize (denied, or never came in time): the PSP draft is
// cancelled at the bank first, so it cannot be approved later unseen.
func (s *Service) abandoned(ctx context.Context, bc *psd2.Context, p *tpp.Payment) (tpp.PaymentStatus, string, string, error) {
	to, code, err := s.abandonment(ctx, p)
	if err != nil || to == tpp.PaymentPending {
		return to, "", "", err
	}
	if err := s.bank.UpdatePSPDraftPayment(ctx, bc, p.BunqID, psd2.StatusCancelled); err != nil {
		// Maybe accepted meanwhile: the next look decides.
		return "", "", "", bankerr.FromBank(err)
	}
	return to, code, "authorization not given; PSP draft payment cancelled at the bank", nil
}

// OnDraftPayment handles a bunq DRAFT_PAYMENT notification: objectType is
// the key of its object (DraftPayment or PaymentServiceProviderDraftPayment)
// and object the value. The notification is only a hint: the payment is
// looked up by the id it names and re-read from the bank, so a forged or
// replayed callback changes nothing. An error means "try again later" (the
// callback endpoint answers 500 and bunq retries). See the package doc for
// the wiring.
func (s *Service) OnDraftPayment(ctx context.Context, objectType string, object json.RawMessage, requestID string) error {
	var kind tpp.PaymentKind
	switch objectType {
	case "DraftPayment":
		kind = tpp.PaymentDraft
	case "PaymentServiceProviderDraftPayment":
		kind = tpp.PaymentSingle
	default:
		return nil
	}
	var v struct {
		ID json.Number `json:"id"`
	}
	dec := json.NewDecoder(bytes.NewReader(object))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return nil
	}
	id, err := v.ID.Int64()
	if err != nil || id <= 0 {
		return nil
	}
	p, err := s.payments.PaymentByBunqID(ctx, kind, id)
	if tpp.ErrorCode(err) == tpp.EPaymentNotFound {
		return nil // not ours (or not recorded yet: the poller covers that)
	}
	if err != nil {
		return err
	}
	if _, err := s.Sync(ctx, p, requestID); err != nil {
		switch tpp.ErrorCode(err) {
		case tpp.EBankUnavailable, tpp.EBankRateLimited, tpp.EInternal:
			return err
		}
		s.log.WarnContext(ctx, "draft payment callback not applied", "payment_id", p.ID, "error", err)
	}
	return nil
}

// Run polls pending payments every PollInterval until ctx ends. It covers
// lost callbacks and settles payments whose creation was left unknown.
// Every process running it polls; with several replicas use RunExclusive.
func (s *Service) Run(ctx context.Context) error {
	return s.every(ctx, func(ctx context.Context) error {
		s.countRound()
		_, err := s.Poll(ctx)
		return err
	})
}

// every runs round each PollInterval until ctx ends, logging failures.
func (s *Service) every(ctx context.Context, round func(context.Context) error) error {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := round(ctx); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "payment poll failed", "error", err)
			}
		}
	}
}

// Locker takes cross-replica locks (*redis.Locker).
type Locker interface {
	TryAcquire(ctx context.Context, name string, ttl time.Duration) (tpp.Lock, error)
}

// pollLock names the lock that gives one replica each poll round.
const pollLock = "pisp:poll"

// RunExclusive is Run for several replicas sharing l: each PollInterval
// one of them polls, the others skip the round (PollExclusive).
func (s *Service) RunExclusive(ctx context.Context, l Locker) error {
	return s.every(ctx, func(ctx context.Context) error {
		ran, _, err := s.PollExclusive(ctx, l)
		if ran {
			s.countRound()
		}
		return err
	})
}

// countRound reports a poll round to Config.OnPollRound.
func (s *Service) countRound() {
	if s.onPollRound != nil {
		s.onPollRound()
	}
}

// PollExclusive polls unless another replica has polled within the last
// 9/10 of PollInterval; ran reports whether this call did. The lock is
// kept (not released) after the round, so it marks the round as done for
// everyone until it expires; a round longer than that extends it, so two
// rounds never overlap. Without Redis no round runs: the bank calls need
// it anyway (contexts, rate budget).
func (s *Service) PollExclusive(ctx context.Context, l Locker) (ran bool, changed int, err error) {
	ttl := max(s.interval*9/10, time.Millisecond)
	lock, err := l.TryAcquire(ctx, pollLock, ttl)
	if errors.Is(err, tpp.ErrLocked) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, fmt.Errorf("pisp: poll lock: %w", err)
	}
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(max(ttl/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := lock.Extend(rctx, ttl); err != nil {
					// Another replica may be polling by now: stop, as
					// it would otherwise read the same payments again.
					cancel(fmt.Errorf("pisp: poll lock lost: %w", err))
					return
				}
			}
		}
	}()
	changed, err = s.Poll(rctx)
	close(done)
	if cause := context.Cause(rctx); err != nil && cause != nil && ctx.Err() == nil {
		err = cause
	}
	if ctx.Err() != nil {
		// Shutting down mid-round: let another replica take the next one.
		rel, stop := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		_ = lock.Release(rel)
		stop()
	}
	return true, changed, err
}

// Poll looks at the pending payments that are due, at most PollBatch of
// them, and returns how many changed. Each payment it takes is due again
// one PollInterval later, so a pending set larger than a batch is covered
// in ceil(pending/PollBatch) rounds. A payment the bank cannot answer for
// waits for its next turn.
func (s *Service) Poll(ctx context.Context) (int, error) {
	now := s.clock.Now()
	due, err := s.queue.DuePayments(ctx, now, s.batch)
	if err != nil {
		return 0, err
	}
	ids := make([]string, len(due))
	for i, d := range due {
		ids[i] = d.Payment.ID
	}
	// Taken before the bank calls: a round cut short still moves the
	// schedule on, and two rounds never read the same payments.
	if err := s.queue.ScheduleChecks(ctx, now.Add(s.interval), ids...); err != nil {
		return 0, err
	}
	changed := 0
	for _, d := range due {
		if ctx.Err() != nil {
			return changed, ctx.Err()
		}
		if s.pollOne(ctx, d, now) {
			changed++
		}
	}
	return changed, nil
}

// pollOne refreshes one due payment and reports whether it changed.
func (s *Service) pollOne(ctx context.Context, d tpp.DuePayment, now time.Time) bool {
	p := d.Payment
	settled := now.Sub(p.CreatedAt) >= s.grace // its create request is over
	var np *tpp.Payment
	var err error
	switch {
	case p.BunqID == 0 && !settled:
		// Its create request may still be running: look once it is over.
		if err := s.queue.ScheduleChecks(ctx, p.CreatedAt.Add(s.grace), p.ID); err != nil {
			s.log.WarnContext(ctx, "payment not rescheduled", "payment_id", p.ID, "error", err)
		}
		return false
	case p.BunqID == 0:
		np, err = s.reconcile(ctx, p)
	default:
		np, err = s.Sync(ctx, p, "")
		if err == nil && d.KeyInFlight && settled {
			// The create's answer was never stored (the store failed after
			// the bank took the draft): store it now, so the key replays.
			s.storeResponse(ctx, np)
		}
	}
	if err != nil {
		s.log.WarnContext(ctx, "payment not refreshed", "payment_id", p.ID, "error", err)
		return false
	}
	return np.Status != p.Status || np.BunqID != p.BunqID
}

// reconcile settles a payment whose creation ended without a known outcome:
// the bank's drafts are searched for it; found, it gets its bank id and its
// idempotency key the response; not found, it fails and the key is freed.
func (s *Service) reconcile(ctx context.Context, p *tpp.Payment) (*tpp.Payment, error) {
	if p.Kind == tpp.PaymentSingle {
		return s.reconcileSingle(ctx, p)
	}
	found, looked, err := s.locate(ctx, p)
	if err != nil || !looked {
		return p, err
	}
	if found == 0 {
		np, err := s.payments.TransitionPayment(ctx, tpp.PaymentTransition{
			ID: p.ID, To: tpp.PaymentFailed, ErrorCode: tpp.EBankUnavailable, Actor: tpp.ActorSystem,
			Detail: "the bank has no draft for this payment after an unanswered create",
		})
		if err != nil {
			return nil, err
		}
		s.log.WarnContext(ctx, "payment failed: the bank has no draft for it after an unanswered create",
			"payment_id", p.ID, "kind", p.Kind)
		if p.IdempotencyKey != "" {
			if err := s.idem.ReleaseIdempotent(ctx, p.ClientID, p.IdempotencyKey); err != nil {
				s.log.WarnContext(ctx, "releasing idempotency key", "payment_id", p.ID, "error", err)
			}
		}
		return np, nil
	}
	np, err := s.recordBankID(ctx, p, found, "")
	if err != nil {
		return nil, err
	}
	s.storeResponse(ctx, np)
	return np, nil
}

// reconcileSingle settles a single payment without a PSP draft id. Its
// draft is made when the user continues to bunq (PrepareSingle), so while
// the consent can still be authorized there is nothing to do. Later the
// bank's drafts are searched (a continue whose answer was lost): found,
// the id is recorded and the next look reads its status; not found, the
// payment ends as its authorization did (never given: failed with
// consent_expired; declined: rejected). Its POST was answered at once, so
// no idempotency record waits for it.
func (s *Service) reconcileSingle(ctx context.Context, p *tpp.Payment) (*tpp.Payment, error) {
	c, err := s.consents.ConsentByID(ctx, p.ConsentID)
	if err != nil {
		return p, err
	}
	if c.StatusAt(s.clock.Now()) == tpp.ConsentPending {
		return p, nil
	}
	found, _, err := s.locate(ctx, p)
	if err != nil {
		return p, err
	}
	if found != 0 {
		return s.recordBankID(ctx, p, found, "")
	}
	to, code, detail := tpp.PaymentFailed, tpp.EConsentExpired, "authorization not given in time; no PSP draft was made"
	switch c.Status {
	case tpp.ConsentRejected:
		to, code, detail = tpp.PaymentRejected, c.ErrorCode, "authorization declined; no PSP draft was made"
	case tpp.ConsentActive:
		to, code, detail = tpp.PaymentFailed, tpp.EBankUnavailable, "authorized, but the bank has no PSP draft for it"
	}
	return s.payments.TransitionPayment(ctx, tpp.PaymentTransition{
		ID: p.ID, To: to, ErrorCode: code, Actor: tpp.ActorSystem, Detail: detail,
	})
}

// storeResponse completes the in-flight idempotency record of p's create
// request with the answer it would have had, so retries replay it.
func (s *Service) storeResponse(ctx context.Context, p *tpp.Payment) {
	if p.IdempotencyKey == "" {
		return
	}
	var body []byte
	var err error
	if p.Kind == tpp.PaymentSingle {
		body, err = json.Marshal(singleView(p, s.authorizeURL(p.ConsentID)))
	} else {
		body, err = json.Marshal(PaymentView(p))
	}
	if err == nil {
		err = s.idem.CompleteIdempotent(ctx, p.ClientID, p.IdempotencyKey, http.StatusCreated, body)
	}
	if err != nil {
		s.log.WarnContext(ctx, "storing reconciled response", "payment_id", p.ID, "error", err)
	}
}

// locate searches the bank for the draft made for p. looked is false when
// the bank cannot be asked now (the consent is no longer active).
func (s *Service) locate(ctx context.Context, p *tpp.Payment) (found int64, looked bool, err error) {
	if p.Kind == tpp.PaymentSingle {
		bc, err := s.tppContext(ctx)
		if err != nil {
			return 0, false, bankerr.FromBank(err)
		}
		found, err := s.findPSPDraft(ctx, bc, p)
		if err != nil {
			return 0, false, bankerr.FromBank(err)
		}
		return found, true, nil
	}
	c, err := s.consents.ConsentByID(ctx, p.ConsentID)
	if err != nil {
		return 0, false, err
	}
	if c.Status != tpp.ConsentActive {
		return 0, false, nil
	}
	bc, err := s.contexts.Get(ctx, c)
	if err != nil {
		return 0, false, s.gate.BankError(ctx, c, err)
	}
	found, err = s.findDraft(ctx, bc, p)
	if err != nil {
		return 0, false, s.gate.BankError(ctx, c, err)
	}
	return found, true, nil
}
