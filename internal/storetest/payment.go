package storetest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
)

const (
	ibanNL = "NL91ABNA0417164300"
	ibanDE = "DE89370400440532013000"
)

func newDraft(c *tpp.FintechClient, con *tpp.Consent) tpp.NewPayment {
	return tpp.NewPayment{
		ConsentID: con.ID, ClientID: c.ID, Kind: tpp.PaymentDraft, AccountID: 12, AmountMinor: 1250, Currency: "EUR",
		CounterpartyIBAN: "nl91 abna 0417 1643 00", CounterpartyName: "Shop", Description: "order 1",
		IdempotencyKey: "k1", Actor: tpp.ActorClient(c.ID), RequestID: "req-pay",
	}
}

func testPaymentLifecycle(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	c, _ := f.client(t)
	con := f.activate(t, f.consent(t, c, "u"), 1)

	p, err := f.payments.CreatePayment(ctx, newDraft(c, con))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p.ID, "pay_") || p.Status != tpp.PaymentPending || p.CounterpartyIBAN != ibanNL ||
		p.Amount() != (tpp.Money{Amount: "12.50", Currency: "EUR"}) || p.BunqID != 0 || len(p.StatusHistory) != 1 {
		t.Fatalf("payment = %+v", p)
	}

	f.clock.Add(time.Second)
	p, err = f.payments.TransitionPayment(ctx, tpp.PaymentTransition{ID: p.ID, BunqID: 555, Actor: tpp.ActorBank})
	if err != nil || p.BunqID != 555 || p.Status != tpp.PaymentPending {
		t.Fatalf("record bank id: %+v, %v", p, err)
	}
	if got, err := f.payments.PaymentByBunqID(ctx, tpp.PaymentDraft, 555); err != nil || got.ID != p.ID {
		t.Fatalf("PaymentByBunqID = %v, %v", got, err)
	}
	_, err = f.payments.PaymentByBunqID(ctx, tpp.PaymentSingle, 555)
	wantCode(t, err, tpp.EPaymentNotFound)
	_, err = f.payments.TransitionPayment(ctx, tpp.PaymentTransition{ID: p.ID, BunqID: 556, Actor: tpp.ActorBank})
	wantCode(t, err, tpp.EConflict)

	f.clock.Add(time.Second)
	p, err = f.payments.TransitionPayment(ctx, tpp.PaymentTransition{ID: p.ID, To: tpp.PaymentExecuted,
		Actor: tpp.ActorBank, Detail: "ACCEPTED"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.StatusHistory) != 2 || p.StatusHistory[0].Status != tpp.PaymentPending ||
		p.StatusHistory[1].Status != tpp.PaymentExecuted || !p.StatusHistory[1].At.After(p.StatusHistory[0].At) {
		t.Fatalf("history = %+v", p.StatusHistory)
	}

	// Final: nothing leaves executed, and a failed attempt writes nothing.
	auditBefore := count(t, f.db, `SELECT COUNT(*) FROM audit_log`)
	_, err = f.payments.TransitionPayment(ctx, tpp.PaymentTransition{ID: p.ID, ClientID: c.ID, To: tpp.PaymentCancelled,
		Actor: tpp.ActorClient(c.ID)})
	wantCode(t, err, tpp.EPaymentNotCancellable)
	_, err = f.payments.TransitionPayment(ctx, tpp.PaymentTransition{ID: p.ID, To: tpp.PaymentFailed, Actor: tpp.ActorBank})
	wantCode(t, err, tpp.EConflict)
	if count(t, f.db, `SELECT COUNT(*) FROM audit_log`) != auditBefore {
		t.Fatal("failed transition wrote audit records")
	}

	recs, _ := f.audit.ListAudit(ctx, tpp.AuditFilter{PaymentID: p.ID}, 0, 0)
	var actions []string
	for _, r := range recs {
		actions = append(actions, r.Action)
	}
	if strings.Join(actions, ",") != "payment.created,payment.bank_id_recorded,payment.status_changed" {
		t.Fatalf("audit = %v", actions)
	}
	// One payment.updated event, for the one status change.
	var payloads []string
	f.db.SelectContext(context.Background(), &payloads, `SELECT payload FROM webhook_events WHERE type = 'payment.updated'`)
	if len(payloads) != 1 {
		t.Fatalf("%d payment events", len(payloads))
	}
	var body struct{ Data tpp.PaymentEventData }
	json.Unmarshal([]byte(payloads[0]), &body)
	if body.Data.PaymentID != p.ID || body.Data.Status != "executed" || body.Data.PreviousStatus != "pending" {
		t.Fatalf("event = %s", payloads[0])
	}
	// History rows are append-only too.
	if _, err := f.db.ExecContext(context.Background(), `DELETE FROM payment_status_history`); err == nil {
		t.Fatal("payment history row deleted")
	}
}

func testCreatePaymentChecksConsent(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	c, _ := f.client(t)
	other, _ := f.client(t)
	active := f.activate(t, f.consent(t, c, "u"), 1)
	accountsOnly := f.activate(t, f.consent(t, c, "u", tpp.ScopeAccounts), 1)
	pending := f.consent(t, c, "u")

	cases := []struct {
		name string
		mod  func(*tpp.NewPayment)
		code string
	}{
		{"other client's consent", func(p *tpp.NewPayment) {
			p.ClientID, p.Actor = other.ID, tpp.ActorClient(other.ID)
		}, tpp.EConsentNotFound},
		{"no payments scope", func(p *tpp.NewPayment) { p.ConsentID = accountsOnly.ID }, tpp.EScopeNotGranted},
		{"draft on pending consent", func(p *tpp.NewPayment) { p.ConsentID = pending.ID }, tpp.EConsentNotActive},
		{"bad iban", func(p *tpp.NewPayment) { p.CounterpartyIBAN = "NL91ABNA0417164301" }, tpp.EInvalidIBAN},
		{"zero amount", func(p *tpp.NewPayment) { p.AmountMinor = 0 }, tpp.EInvalidAmount},
		{"too much", func(p *tpp.NewPayment) { p.AmountMinor = tpp.MaxPaymentMinor + 1 }, tpp.EInvalidAmount},
		{"currency", func(p *tpp.NewPayment) { p.Currency = "EURO" }, tpp.EInvalidCurrency},
		{"single without debtor", func(p *tpp.NewPayment) { p.Kind = tpp.PaymentSingle }, tpp.EInvalidIBAN},
		{"no name", func(p *tpp.NewPayment) { p.CounterpartyName = " " }, tpp.EInvalid},
	}
	for _, tc := range cases {
		in := newDraft(c, active)
		tc.mod(&in)
		if _, err := f.payments.CreatePayment(ctx, in); tpp.ErrorCode(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	if n := count(t, f.db, `SELECT COUNT(*) FROM payments`); n != 0 {
		t.Fatalf("%d payments stored", n)
	}

	// A single payment rides on a pending consent.
	in := newDraft(c, pending)
	in.Kind, in.DebtorIBAN, in.DebtorName, in.BunqID, in.AccountID = tpp.PaymentSingle, ibanDE, "Jane", 900, 0
	sp, err := f.payments.CreatePayment(ctx, in)
	if err != nil || sp.Kind != tpp.PaymentSingle || sp.DebtorIBAN != ibanDE || sp.BunqID != 900 {
		t.Fatalf("single payment = %+v, %v", sp, err)
	}
	// A second unfinished single payment from the same debtor is refused,
	// whichever client asks (bunq would decide both on one page).
	_, err = f.payments.CreatePayment(ctx, in)
	wantCode(t, err, tpp.EPaymentInProgress)
	// The same bank id cannot be recorded twice.
	in.DebtorIBAN = "NL20INGB0001234567"
	_, err = f.payments.CreatePayment(ctx, in)
	wantCode(t, err, tpp.EConflict)
	// Once the first is final, the debtor may pay again.
	if _, err := f.payments.TransitionPayment(ctx, tpp.PaymentTransition{ID: sp.ID, To: tpp.PaymentExecuted, Actor: tpp.ActorBank}); err != nil {
		t.Fatal(err)
	}
	in.DebtorIBAN, in.BunqID = ibanDE, 901
	if _, err := f.payments.CreatePayment(ctx, in); err != nil {
		t.Fatalf("single payment after the first was final: %v", err)
	}
}

func testPaymentScopingAndList(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	a, _ := f.client(t)
	b, _ := f.client(t)
	ca := f.activate(t, f.consent(t, a, "u"), 1)
	cb := f.activate(t, f.consent(t, b, "u"), 2)
	var mine []string
	for i := 0; i < 5; i++ {
		p, err := f.payments.CreatePayment(ctx, newDraft(a, ca))
		if err != nil {
			t.Fatal(err)
		}
		mine = append(mine, p.ID)
		if _, err := f.payments.CreatePayment(ctx, newDraft(b, cb)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := f.payments.Payment(ctx, b.ID, mine[0])
	wantCode(t, err, tpp.EPaymentNotFound)
	_, err = f.payments.TransitionPayment(ctx, tpp.PaymentTransition{ID: mine[0], ClientID: b.ID,
		To: tpp.PaymentCancelled, Actor: tpp.ActorClient(b.ID)})
	wantCode(t, err, tpp.EPaymentNotFound)
	if p, err := f.payments.Payment(ctx, a.ID, mine[0]); err != nil || p.ID != mine[0] {
		t.Fatalf("own payment: %v", err)
	}

	seen := map[string]bool{}
	cursor := ""
	for {
		page, err := f.payments.ListPayments(ctx, tpp.PaymentFilter{ConsentID: ca.ID}, tpp.PageRequest{Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page.Items {
			if seen[p.ID] || p.ClientID != a.ID || len(p.StatusHistory) != 1 {
				t.Fatalf("bad list item %+v", p)
			}
			seen[p.ID] = true
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if len(seen) != len(mine) {
		t.Fatalf("listed %d, want %d", len(seen), len(mine))
	}
	page, err := f.payments.ListPayments(ctx, tpp.PaymentFilter{Status: tpp.PaymentPending}, tpp.PageRequest{Limit: 100})
	if err != nil || len(page.Items) != 10 {
		t.Fatalf("pending list = %d, %v", len(page.Items), err)
	}
}
