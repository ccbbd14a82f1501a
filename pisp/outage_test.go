package pisp_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/internal/banktest"
)

// The bank takes the draft, then the database's write lock is held by
// someone else, so the bank id cannot be recorded: the create answers 202
// with the payment id and Retry-After (never a 500 that invites a blind
// retry), the key answers 409 with Retry-After meanwhile, and the poller
// later records the bank id and the key's 201. The bank holds one draft.
func TestCreateWhoseRecordFailsAnswers202(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{noDraftCallbacks: true})
	con := h.connect()
	from := h.payer().Accounts[0]
	path := "/v1/consents/" + con + "/payments"
	body := h.paymentBody("7.70", "Store locked")
	h.env.Fault(t, banktest.Fault{Method: "POST", Path: "/v1/user/*/monetary-account/*/draft-payment", Kind: banktest.FaultLatency, LatencyMS: 1500, Count: 1})

	answer := make(chan response, 1)
	go func() { answer <- h.req("POST", path, body, key("k-locked")) }()
	// Once the payment is recorded (before the bank call), take the lock.
	deadline := time.Now().Add(10 * time.Second)
	for h.count("payments") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the payment was never recorded")
		}
		time.Sleep(5 * time.Millisecond)
	}
	other, err := sql.Open("sqlite3", h.db.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	r := <-answer
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if r.status != 202 || r.str("id") == "" || r.header.Get("Retry-After") != "30" || r.str("status") != "pending" {
		t.Fatalf("create with the store locked: %d %s %v", r.status, r.raw, r.header)
	}
	id := r.str("id")
	if p := h.payment(id); p.Status != tpp.PaymentPending || p.BunqID != 0 {
		t.Fatalf("stored: %+v", p)
	}
	if n := h.bankDraftsFor(con, from.ID, id); n != 1 {
		t.Fatalf("the bank holds %d drafts for the payment", n)
	}
	again := h.req("POST", path, body, key("k-locked"))
	if again.status != 409 || again.str("code") != tpp.EIdempotencyInFlight || again.header.Get("Retry-After") == "" {
		t.Fatalf("retry while unrecorded: %d %s %v", again.status, again.raw, again.header)
	}

	h.clock.Advance(3 * time.Minute)
	if _, err := h.svc.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	replay := h.req("POST", path, body, key("k-locked"))
	if replay.status != 201 || replay.str("id") != id || bankID(t, replay) != h.payment(id).BunqID {
		t.Fatalf("replay after the poller: %d %s", replay.status, replay.raw)
	}
	if n := h.bankDraftsFor(con, from.ID, id); n != 1 {
		t.Fatalf("the bank holds %d drafts for the payment after the poller", n)
	}
}
