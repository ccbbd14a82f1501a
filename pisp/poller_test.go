package pisp_test

import (
	"context"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
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
		Bank: h.bc, Contexts: h.provider,
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

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	for range 2 {
		svc, l := h.replica(rs, "run:", 30*time.Millisecond)
		go func() { done <- svc.RunExclusive(ctx, l) }()
	}
	h.env.RejectDraftPayment(t, bankID(t, r))
	h.waitStatus(r.str("id"), tpp.PaymentRejected)
	cancel()
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
