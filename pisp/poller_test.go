package pisp_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/internal/banktest"
	"github.com/bunqtpp/tpp/internal/redistest"
	"github.com/bunqtpp/tpp/pisp"
	"github.com/bunqtpp/tpp/psd2"
	"github.com/bunqtpp/tpp/redis"
	"github.com/bunqtpp/tpp/sqlite"
)

const draftGet = "GET /v1/user/{id}/monetary-account/{id}/draft-payment/{id}"

// replica is another process's poller over the harness's database and
// bank, with its own connection to the shared Redis.
func (h *harness) replica(rs *redistest.Server, prefix string, interval time.Duration) (*pisp.Service, *redis.Locker) {
	h.t.Helper()
	svc, err := pisp.New(pisp.Config{
		Payments: h.payments, Consents: h.consents, Idempotency: sqlite.NewIdempotencyStore(h.db),
		Bank: h.bc, Contexts: h.provider, Gate: h.gate,
		TPP:          pisp.TPPContextFunc(func(context.Context) (*psd2.Context, error) { return h.bank.Context, nil }),
		AuthorizeURL: h.oauth.AuthorizeURL, PollInterval: interval, Clock: h.clock,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return svc, redis.NewLocker(rs.Client(h.t), redis.NewKeys(prefix))
}

// Two replicas poll the same pending payments: each round is done by one
// of them, so the bank sees each payment read once per round.
func TestPollRoundRunsOnOneReplica(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{noDraftCallbacks: true})
	rs := redistest.Start(t)
	a, la := h.replica(rs, "r:", time.Minute)
	b, lb := h.replica(rs, "r:", time.Minute)

	con := h.connect()
	r1 := h.createPayment(con, "k-r1", h.paymentBody("2.10", "Round one"))
	r2 := h.createPayment(con, "k-r2", h.paymentBody("2.20", "Round two"))
	h.env.AcceptDraftPayment(t, bankID(t, r1))
	h.env.ResetStats(t)

	type result struct {
		ran     bool
		changed int
		err     error
	}
	results := make(chan result, 2)
	start := make(chan struct{})
	for _, p := range []struct {
		svc *pisp.Service
		l   *redis.Locker
	}{{a, la}, {b, lb}} {
		go func() {
			<-start
			ran, n, err := p.svc.PollExclusive(context.Background(), p.l)
			results <- result{ran, n, err}
		}()
	}
	close(start)
	ran, changed := 0, 0
	for range 2 {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.ran {
			ran++
			changed += r.changed
		}
	}
	if ran != 1 || changed != 1 {
		t.Fatalf("%d replicas polled, %d payments changed; want 1 and 1", ran, changed)
	}
	if n := h.env.Stats(t)[draftGet]; n != 2 {
		t.Errorf("the bank saw %d draft reads for 2 pending payments in one round, want 2 (stats %v)", n, h.env.Stats(t))
	}
	if h.payment(r1.str("id")).Status != tpp.PaymentExecuted || h.payment(r2.str("id")).Status != tpp.PaymentPending {
		t.Fatal("the round did not apply the bank's answers")
	}

	// The round stays taken until the interval is nearly over: a replica
	// whose ticker fires just after does not poll again.
	for _, p := range []struct {
		svc *pisp.Service
		l   *redis.Locker
	}{{a, la}, {b, lb}} {
		if ran, _, err := p.svc.PollExclusive(context.Background(), p.l); ran || err != nil {
			t.Fatalf("a second round in the same interval: ran %v, %v", ran, err)
		}
	}
	if n := h.env.Stats(t)[draftGet]; n != 2 {
		t.Errorf("skipped rounds read from the bank: %d draft reads", n)
	}

	// With a short interval the next round comes once the first one's
	// lock has expired, on whichever replica asks.
	c, lc := h.replica(rs, "short:", 200*time.Millisecond)
	d, ld := h.replica(rs, "short:", 200*time.Millisecond)
	if ran, _, err := c.PollExclusive(context.Background(), lc); !ran || err != nil {
		t.Fatalf("first short round: %v, %v", ran, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ran, _, err := d.PollExclusive(context.Background(), ld)
		if err != nil {
			t.Fatal(err)
		}
		if ran {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no second round within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// RunExclusive on two replicas settles payments like Run does.
func TestRunExclusive(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{noDraftCallbacks: true})
	rs := redistest.Start(t)
	con := h.connect()
	r := h.createPayment(con, "k-run", h.paymentBody("3.10", "Run exclusive"))

	// Rejected before the rounds start: with the frozen clock a payment
	// is looked at once until the clock moves on.
	h.env.RejectDraftPayment(t, bankID(t, r))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	for range 2 {
		svc, l := h.replica(rs, "run:", 30*time.Millisecond)
		go func() { done <- svc.RunExclusive(ctx, l) }()
	}
	// A round cut short (a slow lock extension under -race) leaves the
	// payment for the next interval: let the frozen clock move on.
	deadline := time.Now().Add(10 * time.Second)
	for h.payment(r.str("id")).Status != tpp.PaymentRejected {
		if time.Now().After(deadline) {
			t.Fatalf("payment not rejected within 10 s\nlogs:\n%s", h.logs.String())
		}
		h.clock.Advance(time.Second)
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// More pending payments than one round takes: successive rounds walk the
// whole pending set, each payment read once per sweep, and an older
// payment whose create answer was lost comes first, although newer ones
// are pending.
func TestPollReachesEveryPendingPayment(t *testing.T) {
	t.Parallel()
	const batch, newer = 3, 7
	h := newHarness(t, options{noDraftCallbacks: true, pollBatch: batch})
	con := h.connect()
	path := "/v1/consents/" + con + "/payments"

	// The oldest: the bank makes the draft but its answer is lost, and
	// the search for it fails too. Pending, no bank id, key in flight.
	orphanBody := h.paymentBody("9.01", "Answer lost")
	h.env.Fault(t, banktest.Fault{Method: "POST", Path: "/v1/user/*/monetary-account/*/draft-payment", Kind: banktest.FaultDrop, Count: 1})
	h.env.Fault(t, banktest.Fault{Method: "GET", Path: "/v1/user/*/monetary-account/*/draft-payment", Kind: banktest.FaultStatus, Status: 503})
	if r := h.req("POST", path, orphanBody, key("k-orphan")); r.status != 502 {
		t.Fatalf("create with lost answer: %d %s", r.status, r.raw)
	}
	h.env.ClearFaults(t)
	var orphan string
	if err := h.db.GetContext(context.Background(), &orphan, `SELECT id FROM payments`); err != nil {
		t.Fatal(err)
	}

	var ids []string
	for i := range newer {
		r := h.createPayment(con, fmt.Sprintf("k-new-%d", i), h.paymentBody(fmt.Sprintf("1.%02d", i+1), "Newer"))
		h.env.AcceptDraftPayment(t, bankID(t, r))
		ids = append(ids, r.str("id"))
	}
	h.clock.Advance(3 * time.Minute) // past the orphan grace
	h.env.ResetStats(t)

	// Round one: the orphan first.
	if _, err := h.svc.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p := h.payment(orphan); p.BunqID == 0 {
		t.Fatal("the first round did not reconcile the payment without a bank id")
	}
	if r := h.req("POST", path, orphanBody, key("k-orphan")); r.status != 201 || r.str("id") != orphan {
		t.Fatalf("the orphan's key after round one: %d %s", r.status, r.raw)
	}
	// The rest within ceil((1+newer)/batch) rounds in all.
	rounds := 1
	for ; rounds < (1+newer+batch-1)/batch; rounds++ {
		if _, err := h.svc.Poll(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		if p := h.payment(id); p.Status != tpp.PaymentExecuted {
			t.Fatalf("after %d rounds of %d, payment %s is %s", rounds, batch, id, p.Status)
		}
	}
	if n := h.env.Stats(t)[draftGet]; n != newer {
		t.Errorf("the bank saw %d draft reads in one sweep of %d payments", n, newer)
	}
	// Everything was looked at within this interval: nothing is due.
	if n, err := h.svc.Poll(context.Background()); err != nil || n != 0 || h.env.Stats(t)[draftGet] != newer {
		t.Fatalf("a round before the interval is over: %d %v, %d reads", n, err, h.env.Stats(t)[draftGet])
	}
	// One interval later the payment still pending is due again.
	h.env.AcceptDraftPayment(t, h.payment(orphan).BunqID)
	h.clock.Advance(pisp.DefaultPollInterval)
	if n, err := h.svc.Poll(context.Background()); err != nil || n != 1 || h.payment(orphan).Status != tpp.PaymentExecuted {
		t.Fatalf("next interval: %d %v, orphan %s", n, err, h.payment(orphan).Status)
	}
}

// A pending set larger than a default batch is covered in
// ceil(pending/DefaultPollBatch) back-to-back rounds, each payment read
// once. The figure: TPP_SWEEP_PAYMENTS=10000 go test -run
// TestPollSweepCoversLargePendingSet -v ./pisp/ prints how long a full
// sweep takes (emulator rate limits off, unlimited client budget).
func TestPollSweepCoversLargePendingSet(t *testing.T) {
	t.Parallel()
	n := pisp.DefaultPollBatch + 100
	if v, err := strconv.Atoi(os.Getenv("TPP_SWEEP_PAYMENTS")); err == nil && v > 0 {
		n = v
	}
	h := newHarness(t, options{noDraftCallbacks: true})
	con := h.connect()
	h.seedPending(con, n)
	h.env.ResetStats(t)

	start := time.Now()
	rounds := 0
	for want := (n + pisp.DefaultPollBatch - 1) / pisp.DefaultPollBatch; rounds < want; rounds++ {
		if _, err := h.svc.Poll(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	took := time.Since(start)
	if got := h.env.Stats(t)[draftGet]; got != n {
		t.Fatalf("%d rounds read %d drafts of %d pending payments", rounds, got, n)
	}
	var stale int
	if err := h.db.GetContext(context.Background(), &stale,
		`SELECT count(*) FROM payments WHERE status = 'pending' AND next_check_at <= ?`,
		h.clock.Now().UTC().Format("2006-01-02T15:04:05.000000Z")); err != nil || stale != 0 {
		t.Fatalf("%d payments not looked at after a sweep (%v)", stale, err)
	}
	t.Logf("full sweep of %d pending payments: %d rounds of %d, %v (%v per payment)",
		n, rounds, pisp.DefaultPollBatch, took.Round(time.Millisecond), (took / time.Duration(n)).Round(time.Microsecond))
}

// seedPending makes n pending draft payments under consent con, each with
// its draft at the bank (made directly, four at a time, to keep the set-up
// short).
func (h *harness) seedPending(con string, n int) {
	h.t.Helper()
	ctx := context.Background()
	c := h.stack.Consent(con)
	bc := h.bankContext(con)
	from, to := h.payer().Accounts[0], h.payee()
	jobs := make(chan int)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			var first error
			for i := range jobs {
				if first != nil {
					continue // drain
				}
				p, err := h.payments.CreatePayment(ctx, tpp.NewPayment{
					ConsentID: c.ID, ClientID: c.ClientID, Kind: tpp.PaymentDraft, AccountID: from.ID,
					AmountMinor: int64(100 + i), Currency: "EUR", CounterpartyIBAN: to.IBAN, CounterpartyName: "Payee",
					Description: "Sweep", IdempotencyKey: fmt.Sprintf("sweep-%d", i), Actor: tpp.ActorClient(c.ClientID),
				})
				if err == nil {
					var id int64
					id, err = h.bc.CreateDraftPayment(ctx, bc, from.ID, psd2.DraftPaymentRequest{
						Entries: []psd2.DraftPaymentEntry{{
							Amount:            psd2.Amount{Value: tpp.FormatMinor(p.AmountMinor), Currency: "EUR"},
							CounterpartyAlias: psd2.IBANPointer(to.IBAN, "Payee"), Description: "Sweep", MerchantReference: p.ID,
						}},
						NumberOfRequiredAccepts: 1,
					})
					if err == nil {
						_, err = h.payments.TransitionPayment(ctx, tpp.PaymentTransition{ID: p.ID, BunqID: id, Actor: tpp.ActorSystem})
					}
				}
				first = err
			}
			errs <- first
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	for range 4 {
		if err := <-errs; err != nil {
			h.t.Fatal(err)
		}
	}
}
