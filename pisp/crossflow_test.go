package pisp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/pisp"
)

// Issue 10 item 2, the reproduction: fintech B's €50 single payment must
// not execute when the user approves fintech A's accounts-only consent.
// bunq's page shows every pending PSP draft of the TPP for that user; B's
// draft exists only once the user continues from B's own consent page.
func TestSinglePaymentNotApprovedInAnotherAuthorization(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	from := h.payer().Accounts[0]
	_, keyB := h.newClient("Fintech B")
	b := h.reqAs(keyB, "POST", "/v1/single-payments", h.singleBody("50.00", "B's order"), key("b-1"))
	if b.status != 201 {
		t.Fatalf("B's single payment: %d %s", b.status, b.raw)
	}
	// The user approves fintech A's accounts-only consent (h's client).
	h.connect("accounts")
	if p := h.payment(b.str("id")); p.Status != tpp.PaymentPending {
		t.Fatalf("B's payment is %s after A's authorization, want pending", p.Status)
	}
	if got := h.account(from.ID).Balance.Value; got != from.Balance.Value {
		t.Fatalf("money moved in A's authorization: %s → %s", from.Balance.Value, got)
	}
	// B's own flow still works.
	if back := h.authorize(b.str("authorize_url"), "approve"); !strings.Contains(back, "status=executed") {
		t.Fatalf("B's flow ends at %s", back)
	}
	if got, want := minor(t, h.account(from.ID).Balance.Value), minor(t, from.Balance.Value)-5000; got != want {
		t.Fatalf("payer balance %d, want %d", got, want)
	}
}

// The variant: A's €0.21 and B's €999 from the same debtor at once. B's is
// refused while A's is unfinished (bunq would show both and decide them
// together), so approving A's flow moves exactly €0.21.
func TestSinglePaymentOnePerDebtor(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	from := h.payer().Accounts[0]
	_, keyB := h.newClient("Fintech B")
	a := h.req("POST", "/v1/single-payments", h.singleBody("0.21", "A's order"), key("a-1"))
	if a.status != 201 {
		t.Fatalf("A's single payment: %d %s", a.status, a.raw)
	}
	b := h.reqAs(keyB, "POST", "/v1/single-payments", h.singleBody("999.00", "B's order"), key("b-1"))
	if b.status != 409 || b.str("code") != tpp.EPaymentInProgress || b.header.Get("Retry-After") == "" {
		t.Fatalf("B's single payment from the same debtor: %d %s (Retry-After %q)", b.status, b.raw, b.header.Get("Retry-After"))
	}
	if n := h.count("payments"); n != 1 {
		t.Fatalf("%d payment records, want only A's", n)
	}
	if back := h.authorize(a.str("authorize_url"), "approve"); !strings.Contains(back, "status=executed") {
		t.Fatalf("A's flow ends at %s", back)
	}
	if got, want := minor(t, h.account(from.ID).Balance.Value), minor(t, from.Balance.Value)-21; got != want {
		t.Fatalf("payer balance %d, want %d (only A's €0.21)", got, want)
	}
	// Once A's is finished, B may go ahead.
	if b := h.reqAs(keyB, "POST", "/v1/single-payments", h.singleBody("999.00", "B's order"), key("b-1")); b.status != 201 {
		t.Fatalf("B's retry after A's finished: %d %s", b.status, b.raw)
	}
}

// The store holds the rule, so replicas agree: a second pending single
// payment for one debtor cannot be written, whichever process writes it.
func TestSinglePaymentOnePerDebtorInStore(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	first := h.req("POST", "/v1/single-payments", h.singleBody("1.00", "First"), key("st-1"))
	if first.status != 201 {
		t.Fatalf("first: %d %s", first.status, first.raw)
	}
	p := h.payment(first.str("id"))
	c, err := h.consents.CreateConsent(context.Background(), tpp.NewConsent{
		ClientID: h.client.ID, UserRef: pisp.SinglePaymentUserRef, Scopes: []tpp.Scope{tpp.ScopePayments},
		ReturnURL: returnURL0, Actor: tpp.ActorClient(h.client.ID),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.payments.CreatePayment(context.Background(), tpp.NewPayment{
		ConsentID: c.ID, ClientID: h.client.ID, Kind: tpp.PaymentSingle, AmountMinor: 200, Currency: "EUR",
		DebtorIBAN: p.DebtorIBAN, DebtorName: "x", CounterpartyIBAN: p.CounterpartyIBAN, CounterpartyName: "y",
		Actor: tpp.ActorClient(h.client.ID),
	})
	if tpp.ErrorCode(err) != tpp.EPaymentInProgress {
		t.Fatalf("second pending single payment for %s: %v", p.DebtorIBAN, err)
	}
	if _, err := h.db.ExecContext(context.Background(), `INSERT INTO payments (id, consent_id, client_id, kind,
		amount_minor, currency, debtor_iban, counterparty_iban, counterparty_name, status, created_at, updated_at)
		VALUES ('pay_raw', ?, ?, 'single', 200, 'EUR', ?, ?, 'y', 'pending', 'x', 'x')`,
		c.ID, h.client.ID, p.DebtorIBAN, p.CounterpartyIBAN); err == nil || !strings.Contains(err.Error(), "UNIQUE") {
		t.Fatalf("raw insert past the check: %v", err)
	}
}

// A PSP draft decided on bunq's page of another authorization (the user
// continued to B's payment, left, then approved A's accounts-only consent,
// where bunq showed B's draft too) is settled with its real outcome and
// reported to B (webhook and audit), never attributed to A's consent.
func TestSinglePaymentDecidedOutsideItsFlow(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	clientB, keyB := h.newClient("Fintech B")
	b := h.reqAs(keyB, "POST", "/v1/single-payments", h.singleBody("5.00", "B's order"), key("b-1"))
	if b.status != 201 {
		t.Fatalf("B's single payment: %d %s", b.status, b.raw)
	}
	h.stack.NewBrowser().ToBank(b.str("authorize_url")) // made the draft, then left
	consentA := h.connect("accounts")
	p := h.payment(b.str("id"))
	if p.Status != tpp.PaymentExecuted {
		t.Fatalf("B's payment after its draft was approved on A's page: %s", p.Status)
	}
	var detail string
	if err := h.db.GetContext(context.Background(), &detail, `SELECT detail FROM audit_log
		WHERE payment_id = ? AND action = ? ORDER BY seq DESC LIMIT 1`, p.ID, tpp.AuditPaymentTransition); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(detail, "outside its own authorization") || !strings.Contains(detail, consentA) {
		t.Fatalf("audit detail %q", detail)
	}
	var rows []struct {
		ID      string `db:"id"`
		Client  string `db:"client_id"`
		Payload string `db:"payload"`
	}
	if err := h.db.SelectContext(context.Background(), &rows, `SELECT id, client_id, payload FROM webhook_events WHERE type = ?`,
		pisp.EventPaymentDecidedOutsideFlow); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Client != clientB.ID {
		t.Fatalf("decided-outside-flow events: %+v", rows)
	}
	hdr := http.Header{}
	hdr.Set("Content-Type", "application/json")
	hdr.Set("webhook-id", rows[0].ID)
	hdr.Set("webhook-timestamp", "1795341600")
	hdr.Set("webhook-signature", "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=")
	h.v.CheckWebhook(t, hdr, []byte(rows[0].Payload))
	var ev struct {
		Data pisp.DecidedOutsideFlowData `json:"data"`
	}
	if err := json.Unmarshal([]byte(rows[0].Payload), &ev); err != nil || ev.Data.PaymentID != p.ID || ev.Data.Status != "executed" {
		t.Fatalf("event %s (%v)", rows[0].Payload, err)
	}
	// A's consent is what the user approved, nothing more.
	if c := h.stack.Consent(consentA); c.Status != tpp.ConsentActive {
		t.Fatalf("A's consent: %s", c.Status)
	}
}
