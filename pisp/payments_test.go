package pisp_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/internal/banktest"
	"github.com/bunqtpp/tpp/psd2"
)

// A draft payment approved in the emulated app becomes executed (via the
// DRAFT_PAYMENT callback, re-read from the bank), the money moves at the
// bank, and each change is one payment.updated event.
func TestDraftPaymentExecuted(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	con := h.connect("accounts", "payments")
	from := h.payer().Accounts[0]
	to := h.payee()
	h.env.ResetStats(t)

	r := h.createPayment(con, "k-exec", h.paymentBody("12.50", "Order 1042"))
	if r.str("status") != "pending" || r.str("consent_id") != con || r.str("reference") != "INV-1" ||
		r.header.Get("Location") != "/v1/consents/"+con+"/payments/"+r.str("id") {
		t.Fatalf("created: %s %v", r.raw, r.header)
	}
	if n := h.env.Stats(t)[draftCreate]; n != 1 {
		t.Fatalf("draft-payment POSTs = %d, want 1", n)
	}
	id, did := r.str("id"), bankID(t, r)
	d := h.bankDraft(con, from.ID, did)
	if d.Status != "PENDING" || d.Entries[0].MerchantReference != id || d.Entries[0].Amount.Value != "12.50" {
		t.Fatalf("bank draft: %+v", d)
	}

	h.env.AcceptDraftPayment(t, did)
	p := h.waitStatus(id, tpp.PaymentExecuted)
	if len(p.StatusHistory) != 2 || p.StatusHistory[0].Status != tpp.PaymentPending || p.StatusHistory[1].Status != tpp.PaymentExecuted {
		t.Fatalf("history: %+v", p.StatusHistory)
	}
	g := h.req("GET", "/v1/consents/"+con+"/payments/"+id, "", nil)
	if g.status != 200 || g.str("status") != "executed" || len(g.body["status_history"].([]any)) != 2 {
		t.Fatalf("get: %d %s", g.status, g.raw)
	}
	// The money moved at the bank.
	if got, want := minor(t, h.account(from.ID).Balance.Value), minor(t, from.Balance.Value)-1250; got != want {
		t.Errorf("payer balance %d, want %d", got, want)
	}
	if got, want := minor(t, h.account(to.ID).Balance.Value), minor(t, to.Balance.Value)+1250; got != want {
		t.Errorf("payee balance %d, want %d", got, want)
	}
	if pid, ok := func() (int64, bool) { d := h.bankDraft(con, from.ID, did); return d.PaymentID() }(); !ok || pid == 0 {
		t.Error("the accepted draft holds no payment")
	}
	evs := h.events(id)
	if len(evs) != 1 || evs[0].Status != "executed" || evs[0].PreviousStatus != "pending" || evs[0].Kind != "draft" || evs[0].ConsentID != con {
		t.Fatalf("events: %+v", evs)
	}
	// Polling an executed payment changes nothing and asks nothing.
	h.env.ResetStats(t)
	if n, err := h.svc.Poll(context.Background()); err != nil || n != 0 {
		t.Fatalf("poll: %d %v", n, err)
	}
	if len(h.events(id)) != 1 {
		t.Fatal("a second event for one change")
	}
}

func TestDraftPaymentRejectedAtBank(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	con := h.connect()
	from := h.payer().Accounts[0]
	r := h.createPayment(con, "k-rej", h.paymentBody("3.00", "Rejected one"))
	h.env.RejectDraftPayment(t, bankID(t, r))
	h.waitStatus(r.str("id"), tpp.PaymentRejected)
	if got := h.account(from.ID).Balance.Value; got != from.Balance.Value {
		t.Errorf("balance moved on a rejected draft: %s → %s", from.Balance.Value, got)
	}
	g := h.req("GET", "/v1/consents/"+con+"/payments/"+r.str("id"), "", nil)
	if g.str("status") != "rejected" {
		t.Fatalf("get: %s", g.raw)
	}
	// Too late to cancel.
	d := h.req("DELETE", "/v1/consents/"+con+"/payments/"+r.str("id"), "", nil)
	if d.status != 409 || d.str("code") != tpp.EPaymentNotCancellable {
		t.Fatalf("cancel rejected: %d %s", d.status, d.raw)
	}
	if evs := h.events(r.str("id")); len(evs) != 1 || evs[0].Status != "rejected" {
		t.Fatalf("events: %+v", evs)
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	con := h.connect()
	from := h.payer().Accounts[0]

	// Our DELETE: cancelled at the bank first.
	r := h.createPayment(con, "k-c1", h.paymentBody("1.00", "To cancel"))
	id, did := r.str("id"), bankID(t, r)
	d := h.req("DELETE", "/v1/consents/"+con+"/payments/"+id, "", nil)
	if d.status != 200 || d.str("status") != "cancelled" {
		t.Fatalf("cancel: %d %s", d.status, d.raw)
	}
	if bd := h.bankDraft(con, from.ID, did); bd.Status != "CANCELLED" {
		t.Fatalf("bank draft after cancel: %s", bd.Status)
	}
	again := h.req("DELETE", "/v1/consents/"+con+"/payments/"+id, "", nil)
	if again.status != 200 || again.str("status") != "cancelled" {
		t.Fatalf("second cancel: %d %s", again.status, again.raw)
	}
	if evs := h.events(id); len(evs) != 1 || evs[0].Status != "cancelled" {
		t.Fatalf("events: %+v", evs)
	}

	// Cancelled at the bank by another channel: the callback tells us.
	r2 := h.createPayment(con, "k-c2", h.paymentBody("1.00", "Cancelled elsewhere"))
	ctx := context.Background()
	c, _ := h.consents.ConsentByID(ctx, con)
	bc, err := h.provider.Get(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.bc.UpdateDraftPayment(ctx, bc, from.ID, bankID(t, r2), psd2.DraftPaymentUpdate{Status: psd2.StatusCancelled}); err != nil {
		t.Fatal(err)
	}
	h.waitStatus(r2.str("id"), tpp.PaymentCancelled)

	// Executed at the bank before our DELETE: not cancellable, and the
	// answer says what it is now.
	r3 := h.createPayment(con, "k-c3", h.paymentBody("1.00", "Too late"))
	h.env.AcceptDraftPayment(t, bankID(t, r3))
	d3 := h.req("DELETE", "/v1/consents/"+con+"/payments/"+r3.str("id"), "", nil)
	if d3.status != 409 || d3.str("code") != tpp.EPaymentNotCancellable {
		t.Fatalf("cancel executed: %d %s", d3.status, d3.raw)
	}
	if p := h.waitStatus(r3.str("id"), tpp.PaymentExecuted); p.Status != tpp.PaymentExecuted {
		t.Fatal(p.Status)
	}
}

func TestIdempotency(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	con := h.connect()
	path := "/v1/consents/" + con + "/payments"
	body := h.paymentBody("7.00", "Idempotent")
	h.env.ResetStats(t)

	first := h.createPayment(con, "k-1", body)
	// Same key and body (reformatted): the stored response, no bank call.
	var v any
	_ = json.Unmarshal([]byte(body), &v)
	pretty, _ := json.MarshalIndent(v, "", "   ")
	replay := h.req("POST", path, string(pretty), key("k-1"))
	if replay.status != 201 || string(replay.raw) != string(first.raw) || replay.header.Get("Idempotent-Replayed") != "true" ||
		replay.header.Get("Location") != first.header.Get("Location") {
		t.Fatalf("replay: %d %s %v", replay.status, replay.raw, replay.header)
	}
	if first.header.Get("Idempotent-Replayed") != "" {
		t.Error("first response marked as replay")
	}
	// Same key, another body.
	other := h.req("POST", path, h.paymentBody("7.01", "Idempotent"), key("k-1"))
	if other.status != 422 || other.str("code") != tpp.EIdempotencyKeyReused {
		t.Fatalf("other body: %d %s", other.status, other.raw)
	}
	// The same body under another consent path is another request too.
	if n := h.env.Stats(t)[draftCreate]; n != 1 {
		t.Fatalf("draft POSTs = %d, want 1", n)
	}

	// Concurrent requests with one key: one bank call; the others replay
	// or are told the first is in flight.
	h.env.ResetStats(t)
	h.env.Fault(t, banktest.Fault{Method: "POST", Path: "/v1/user/*/monetary-account/*/draft-payment", Kind: banktest.FaultLatency, LatencyMS: 300, Count: 1})
	body2 := h.paymentBody("8.00", "Concurrent")
	var wg sync.WaitGroup
	results := make([]response, 6)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = h.req("POST", path, body2, key("k-concurrent"))
		}()
	}
	wg.Wait()
	ids := map[string]bool{}
	created := 0
	for _, r := range results {
		switch {
		case r.status == 201:
			created++
			ids[r.str("id")] = true
		case r.status == 409 && r.str("code") == tpp.EIdempotencyInFlight:
		default:
			t.Errorf("concurrent answer %d %s", r.status, r.raw)
		}
	}
	if created == 0 || len(ids) != 1 {
		t.Fatalf("concurrent: %d created, ids %v", created, ids)
	}
	if n := h.env.Stats(t)[draftCreate]; n != 1 {
		t.Fatalf("concurrent draft POSTs = %d, want 1", n)
	}
	var rows int
	if err := h.db.GetContext(context.Background(), &rows, `SELECT count(*) FROM payments WHERE idempotency_key = 'k-concurrent'`); err != nil || rows != 1 {
		t.Fatalf("payments with the key: %d %v", rows, err)
	}
	// A new request after the in-flight ones replays the one payment.
	after := h.req("POST", path, body2, key("k-concurrent"))
	if after.status != 201 || !ids[after.str("id")] {
		t.Fatalf("after: %d %s", after.status, after.raw)
	}
}

// The bank applies the create and the connection drops: the TPP lists the
// drafts, finds its own by the payment id, and never makes a second one.
func TestAmbiguousFailureReconciles(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	con := h.connect()
	from := h.payer().Accounts[0]
	path := "/v1/consents/" + con + "/payments"
	h.env.ResetStats(t)
	h.env.Fault(t, banktest.Fault{Method: "POST", Path: "/v1/user/*/monetary-account/*/draft-payment", Kind: banktest.FaultDrop, Count: 1})

	body := h.paymentBody("9.99", "Dropped answer")
	r := h.createPayment(con, "k-drop", body)
	st := h.env.Stats(t)
	if st[draftCreate] != 1 || st[draftList] < 1 {
		t.Fatalf("stats after drop: %v", st)
	}
	if n := h.bankDraftsFor(con, from.ID, r.str("id")); n != 1 {
		t.Fatalf("drafts at the bank for the payment: %d", n)
	}
	if p := h.payment(r.str("id")); p.BunqID != bankID(t, r) || p.Status != tpp.PaymentPending {
		t.Fatalf("recorded: %+v", p)
	}
	// The client retries (it did not hear us either): replay, no new draft.
	again := h.req("POST", path, body, key("k-drop"))
	if again.status != 201 || again.str("id") != r.str("id") || h.env.Stats(t)[draftCreate] != 1 {
		t.Fatalf("retry: %d %s stats %v", again.status, again.raw, h.env.Stats(t))
	}
	// And it is a real draft: accepting it executes the payment.
	h.env.AcceptDraftPayment(t, bankID(t, r))
	h.waitStatus(r.str("id"), tpp.PaymentExecuted)

	// An answer with a bad server signature is never data, but the bank
	// may have acted: the same reconciliation applies.
	h.env.ResetStats(t)
	h.env.Fault(t, banktest.Fault{Method: "POST", Path: "/v1/user/*/monetary-account/*/draft-payment", Kind: banktest.FaultBadSignature, Count: 1})
	sig := h.createPayment(con, "k-sig", h.paymentBody("9.98", "Bad signature"))
	if n := h.bankDraftsFor(con, from.ID, sig.str("id")); n != 1 || h.env.Stats(t)[draftCreate] != 1 {
		t.Fatalf("drafts for the payment: %d, stats %v", n, h.env.Stats(t))
	}
}

// Failed before anything reached the bank: the payment is failed with the
// reason and the key is free for a retry, which then succeeds.
func TestDefiniteFailureReleasesKey(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	con := h.connect()
	path := "/v1/consents/" + con + "/payments"
	body := h.paymentBody("4.00", "Retry me")

	h.env.Fault(t, banktest.Fault{Method: "POST", Path: "/v1/user/*/monetary-account/*/draft-payment", Kind: banktest.FaultDropBefore, Count: 1})
	r := h.req("POST", path, body, key("k-def"))
	if r.status != 502 || r.str("code") != tpp.EBankUnavailable {
		t.Fatalf("dropped before: %d %s", r.status, r.raw)
	}
	var failed []struct {
		ID        string `db:"id"`
		Status    string `db:"status"`
		ErrorCode string `db:"error_code"`
	}
	if err := h.db.SelectContext(context.Background(), &failed, `SELECT id, status, error_code FROM payments`); err != nil {
		t.Fatal(err)
	}
	if len(failed) != 1 || failed[0].Status != "failed" || failed[0].ErrorCode != tpp.EBankUnavailable {
		t.Fatalf("payments after failure: %+v", failed)
	}
	if evs := h.events(failed[0].ID); len(evs) != 1 || evs[0].Status != "failed" || evs[0].ErrorCode != tpp.EBankUnavailable {
		t.Fatalf("events: %+v", evs)
	}
	ok := h.createPayment(con, "k-def", body)
	if ok.str("id") == failed[0].ID {
		t.Fatal("retry reused the failed payment")
	}

	// The bank refuses (400): bank_rejected with the bank's reason.
	h.env.Fault(t, banktest.Fault{Method: "POST", Path: "/v1/user/*/monetary-account/*/draft-payment", Kind: banktest.FaultStatus, Status: 400, Count: 1})
	rej := h.req("POST", path, h.paymentBody("4.01", "Refused"), key("k-400"))
	if rej.status != 422 || rej.str("code") != tpp.EBankRejected {
		t.Fatalf("bank 400: %d %s", rej.status, rej.raw)
	}
	if n := h.count("idempotency_records WHERE key = 'k-400'"); n != 0 {
		t.Fatalf("key of a refused request kept: %d", n)
	}
}

// The create's answer is lost and the listing fails too: the outcome is
// unknown, so the payment waits without a bank id and the key stays in
// flight; the poller then finds the draft and settles both.
func TestUnknownOutcomeSettledByPoller(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	con := h.connect()
	path := "/v1/consents/" + con + "/payments"
	body := h.paymentBody("5.55", "Unknown outcome")
	h.env.Fault(t, banktest.Fault{Method: "POST", Path: "/v1/user/*/monetary-account/*/draft-payment", Kind: banktest.FaultDrop, Count: 1})
	h.env.Fault(t, banktest.Fault{Method: "GET", Path: "/v1/user/*/monetary-account/*/draft-payment", Kind: banktest.FaultStatus, Status: 503})

	r := h.req("POST", path, body, key("k-unknown"))
	if r.status != 502 || r.str("code") != tpp.EBankUnavailable {
		t.Fatalf("unknown outcome: %d %s", r.status, r.raw)
	}
	var id string
	if err := h.db.GetContext(context.Background(), &id, `SELECT id FROM payments`); err != nil {
		t.Fatal(err)
	}
	if p := h.payment(id); p.Status != tpp.PaymentPending || p.BunqID != 0 {
		t.Fatalf("payment: %+v", p)
	}
	if again := h.req("POST", path, body, key("k-unknown")); again.status != 409 || again.str("code") != tpp.EIdempotencyInFlight {
		t.Fatalf("retry while unknown: %d %s", again.status, again.raw)
	}
	h.env.ClearFaults(t)
	// Within the grace period the poller leaves it alone.
	if n, _ := h.svc.Poll(context.Background()); n != 0 || h.payment(id).BunqID != 0 {
		t.Fatal("poller touched a payment that may still be in creation")
	}
	h.clock.Advance(3 * time.Minute)
	if n, err := h.svc.Poll(context.Background()); err != nil || n != 1 {
		t.Fatalf("poll: %d %v", n, err)
	}
	p := h.payment(id)
	if p.BunqID == 0 || p.Status != tpp.PaymentPending {
		t.Fatalf("after poll: %+v", p)
	}
	h.env.ResetStats(t)
	replay := h.req("POST", path, body, key("k-unknown"))
	if replay.status != 201 || replay.str("id") != id || bankID(t, replay) != p.BunqID || h.env.Stats(t)[draftCreate] != 0 {
		t.Fatalf("replay after reconcile: %d %s", replay.status, replay.raw)
	}
}

// A lost create whose draft never reached the bank: the poller fails the
// payment and frees the key.
func TestOrphanWithoutDraftFails(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	con := h.connect()
	path := "/v1/consents/" + con + "/payments"
	body := h.paymentBody("2.22", "Never arrived")
	// drop_before on the create is a definite failure; to get an unknown
	// one without a draft, fail the listing and make the create a 500
	// (the bank may or may not have acted on it).
	h.env.Fault(t, banktest.Fault{Method: "POST", Path: "/v1/user/*/monetary-account/*/draft-payment", Kind: banktest.FaultStatus, Status: 500, Count: 1})
	h.env.Fault(t, banktest.Fault{Method: "GET", Path: "/v1/user/*/monetary-account/*/draft-payment", Kind: banktest.FaultStatus, Status: 503})
	if r := h.req("POST", path, body, key("k-orphan")); r.status != 502 {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	h.env.ClearFaults(t)
	h.clock.Advance(3 * time.Minute)
	if n, err := h.svc.Poll(context.Background()); err != nil || n != 1 {
		t.Fatalf("poll: %d %v", n, err)
	}
	var st, code string
	if err := h.db.QueryRowxContext(context.Background(), `SELECT status, error_code FROM payments`).Scan(&st, &code); err != nil {
		t.Fatal(err)
	}
	if st != "failed" || code != tpp.EBankUnavailable {
		t.Fatalf("orphan: %s %s", st, code)
	}
	// The operator sees it in the logs, not only in the audit log.
	if logs := h.logs.String(); !strings.Contains(logs, "payment failed: the bank has no draft for it") {
		t.Errorf("the poller failed a payment without logging it:\n%s", logs)
	}
	if r := h.createPayment(con, "k-orphan", body); r.str("status") != "pending" {
		t.Fatalf("retry: %s", r.raw)
	}
}

// Callbacks are lost (no DRAFT_PAYMENT filter): the poller sees the change.
func TestPollerCoversLostCallbacks(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{noDraftCallbacks: true, pollInterval: 20 * time.Millisecond})
	con := h.connect()
	r1 := h.createPayment(con, "k-p1", h.paymentBody("1.10", "Poll me"))
	r2 := h.createPayment(con, "k-p2", h.paymentBody("1.20", "Poll me too"))
	h.env.AcceptDraftPayment(t, bankID(t, r1))
	h.env.RejectDraftPayment(t, bankID(t, r2))
	// The bank records every callback it sends: none went out, so none
	// can have moved the payments (no sleep-and-hope).
	for _, cb := range h.env.Callbacks(t) {
		if cb.Category == "DRAFT_PAYMENT" {
			t.Fatalf("the bank sent a DRAFT_PAYMENT callback without a filter; the test proves nothing: %+v", cb)
		}
	}
	if h.payment(r1.str("id")).Status != tpp.PaymentPending {
		t.Fatal("a payment moved without a callback or a poll")
	}
	n, err := h.svc.Poll(context.Background())
	if err != nil || n != 2 {
		t.Fatalf("poll: %d %v", n, err)
	}
	if h.payment(r1.str("id")).Status != tpp.PaymentExecuted || h.payment(r2.str("id")).Status != tpp.PaymentRejected {
		t.Fatal("poll did not apply the bank's answers")
	}

	// Run does the same on its own, every PollInterval.
	r3 := h.createPayment(con, "k-p3", h.paymentBody("1.30", "Run me"))
	h.env.AcceptDraftPayment(t, bankID(t, r3))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.svc.Run(ctx) }()
	h.waitStatus(r3.str("id"), tpp.PaymentExecuted)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A callback is a hint: a forged one claiming ACCEPTED for a pending draft
// changes nothing, because the bank still says PENDING.
func TestForgedCallbackChangesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{noDraftCallbacks: true})
	con := h.connect()
	r := h.createPayment(con, "k-forge", h.paymentBody("6.00", "Forge target"))
	did := bankID(t, r)
	h.env.ResetStats(t)
	forged := func(objType string, id int64, status string) string {
		b, _ := json.Marshal(map[string]any{"NotificationUrl": map[string]any{
			"target_url": h.srv.URL + "/bank/callbacks", "category": "DRAFT_PAYMENT", "event_type": "DRAFT_PAYMENT_ACCEPTED",
			"object": map[string]any{objType: map[string]any{"id": id, "status": status,
				"object": map[string]any{"Payment": map[string]any{"id": 999}}}}}})
		return string(b)
	}
	post := func(body string) int {
		res, err := h.srv.Client().Post(h.srv.URL+"/bank/callbacks", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, body := range []string{
		forged("DraftPayment", did, "ACCEPTED"),
		forged("PaymentServiceProviderDraftPayment", did, "ACCEPTED"),
		forged("DraftPayment", did+1000, "ACCEPTED"),
		forged("DraftPayment", -1, "ACCEPTED"),
	} {
		if st := post(body); st != 200 {
			t.Fatalf("callback answered %d", st)
		}
	}
	p := h.payment(r.str("id"))
	if p.Status != tpp.PaymentPending || len(h.events(p.ID)) != 0 {
		t.Fatalf("forged callback moved the payment: %+v", p)
	}
	if h.env.Stats(t)["GET /v1/user/{id}/monetary-account/{id}/draft-payment/{id}"] != 1 {
		t.Fatalf("the hint for our draft was not checked with the bank: %v", h.env.Stats(t))
	}
	// The real answer, delivered the same way, is applied (after a re-read).
	h.env.RejectDraftPayment(t, did)
	if st := post(forged("DraftPayment", did, "ACCEPTED")); st != 200 {
		t.Fatal(st)
	}
	if got := h.payment(p.ID).Status; got != tpp.PaymentRejected {
		t.Fatalf("status after the hint: %s (the bank says REJECTED, whatever the callback claims)", got)
	}
}

func TestListPayments(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	con := h.connect()
	var ids []string
	for i, k := range []string{"l1", "l2", "l3"} {
		r := h.createPayment(con, k, h.paymentBody("1.0"+string(rune('1'+i)), "List "+k))
		ids = append(ids, r.str("id"))
		h.clock.Advance(time.Second)
	}
	p1 := h.req("GET", "/v1/consents/"+con+"/payments?limit=2", "", nil)
	data := p1.body["data"].([]any)
	if p1.status != 200 || len(data) != 2 || data[0].(map[string]any)["id"] != ids[2] || p1.str("next_cursor") == "" {
		t.Fatalf("page 1: %d %s", p1.status, p1.raw)
	}
	p2 := h.req("GET", "/v1/consents/"+con+"/payments?limit=2&cursor="+p1.str("next_cursor"), "", nil)
	data = p2.body["data"].([]any)
	if p2.status != 200 || len(data) != 1 || data[0].(map[string]any)["id"] != ids[0] || p2.body["next_cursor"] != nil {
		t.Fatalf("page 2: %d %s", p2.status, p2.raw)
	}
	all := h.req("GET", "/v1/consents/"+con+"/payments", "", nil)
	if len(all.body["data"].([]any)) != 3 {
		t.Fatalf("default page: %s", all.raw)
	}
}

// The user withdrew the grant at bunq and no OAUTH callback came: the next
// payment finds out, the bank confirms, and the consent becomes revoked.
func TestGrantWithdrawnAtBank(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{noCallbacks: true})
	con := h.connect()
	path := "/v1/consents/" + con + "/payments"
	pending := h.createPayment(con, "k-g0", h.paymentBody("1.00", "Before"))
	h.env.RevokeGrant(t, h.payer().ID, h.bank.ClientID)

	r := h.req("POST", path, h.paymentBody("1.00", "After"), key("k-g1"))
	if r.status != 403 || r.str("code") != tpp.EConsentRevoked {
		t.Fatalf("after revocation: %d %s\nlogs:\n%s", r.status, r.raw, h.logs.String())
	}
	c, err := h.consents.ConsentByID(context.Background(), con)
	if err != nil || c.Status != tpp.ConsentRevoked {
		t.Fatalf("consent: %+v %v", c, err)
	}
	if n := h.count("idempotency_records WHERE key = 'k-g1'"); n != 0 {
		t.Fatal("key of a refused payment kept")
	}
	// Payments stay readable; the pending one cannot be cancelled any more.
	if g := h.req("GET", path+"/"+pending.str("id"), "", nil); g.status != 200 || g.str("status") != "pending" {
		t.Fatalf("get: %d %s", g.status, g.raw)
	}
	if d := h.req("DELETE", path+"/"+pending.str("id"), "", nil); d.status != 403 || d.str("code") != tpp.EConsentRevoked {
		t.Fatalf("cancel: %d %s", d.status, d.raw)
	}
}

// After 180 days the consent needs the user again; the answer says where.
func TestReauthorizationDue(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{noCallbacks: true})
	con := h.connect()
	h.clock.Advance(181 * 24 * time.Hour)
	h.env.ResetStats(t)
	r := h.req("POST", "/v1/consents/"+con+"/payments", h.paymentBody("1.00", "Late"), key("k-re"))
	if r.status != 403 || r.str("code") != tpp.EConsentReauthRequired || r.str("reauthorize_url") != h.srv.URL+"/connect/"+con {
		t.Fatalf("reauth: %d %s", r.status, r.raw)
	}
	if n := h.env.Stats(t)[draftCreate]; n != 0 {
		t.Fatal("bank called for a consent due for re-authorization")
	}
}
