package sandbox_test

import (
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/internal/banktest"
	"github.com/bunqtpp/tpp/sandbox"
)

func TestSeedIsDeterministic(t *testing.T) {
	t.Parallel()
	a, b := banktest.Start(t, banktest.WithSeed(42)), banktest.Start(t, banktest.WithSeed(42))
	other := banktest.Start(t, banktest.WithSeed(43))
	ua, ub, uo := a.Users(t), b.Users(t), other.Users(t)
	if !reflect.DeepEqual(ua, ub) {
		t.Fatalf("same seed, different users:\n%+v\n%+v", ua, ub)
	}
	if reflect.DeepEqual(ua, uo) {
		t.Fatalf("different seeds, same users")
	}
	if len(ua) < 3 {
		t.Fatalf("%d seeded users", len(ua))
	}
	// The joint account is shared by the first two users.
	j0, j1 := accountOf(t, ua[0], "MonetaryAccountJoint"), accountOf(t, ua[1], "MonetaryAccountJoint")
	if j0.ID != j1.ID {
		t.Fatalf("joint accounts %d and %d", j0.ID, j1.ID)
	}
	// Same history: the same payments, page by page.
	history := func(env *banktest.Env, u banktest.User) []map[string]any {
		c := newClient(t, env)
		c.context(u.APIKey)
		var out []map[string]any
		for _, e := range c.get(userPath(c.userID, "/monetary-account/", itoa(accountOf(t, u, "MonetaryAccountBank").ID), "/payment?count=200")).must(t, 200).elems(t) {
			delete(e.obj, "created") // timestamps follow the clock at start
			delete(e.obj, "updated")
			out = append(out, e.obj)
		}
		return out
	}
	if ha, hb := history(a, ua[0]), history(b, ub[0]); !reflect.DeepEqual(ha, hb) || len(ha) != 200 {
		t.Fatalf("histories differ (%d vs %d payments)", len(ha), len(hb))
	}
	// Seed 0 means 1.
	b0, err := sandbox.New(sandbox.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer b0.Close()
	b1, err := sandbox.New(sandbox.Config{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b1.Close()
	u0, _ := b0.Users()
	u1, _ := b1.Users()
	if !reflect.DeepEqual(u0, u1) {
		t.Fatalf("seed 0 is not seed 1")
	}
}

// TestConcurrentUse hammers one bank from several clients at once; run
// with -race it checks the locking.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	users := env.Users(t)
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		u := users[i]
		c := newClient(t, env)
		c.context(u.APIKey)
		acc := accountOf(t, u, "MonetaryAccountBank")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 10; j++ {
				c.get(userPath(c.userID, "/monetary-account")).must(t, 200)
				c.post(userPath(c.userID, "/monetary-account/", itoa(acc.ID), "/request-inquiry"), map[string]any{
					"amount_inquired":    map[string]string{"value": "1", "currency": "EUR"},
					"counterparty_alias": map[string]string{"type": "EMAIL", "value": "sugardaddy@bunq.com"}, "description": "x"}, false).must(t, 200)
				env.Stats(t)
			}
		}()
	}
	wg.Wait()
	if n := env.Stats(t)["POST /v1/user/{id}/monetary-account/{id}/request-inquiry"]; n != 30 {
		t.Fatalf("stats counted %d inquiries", n)
	}
}

// seededPayment is what the ordering checks read of a listed payment.
type seededPayment struct {
	id              int64
	created         string // bunq timestamps sort as text
	amount, balance int64
}

// allPayments walks an account's payments with older_id, count per page,
// and returns them newest first with the number of pages read.
func allPayments(t *testing.T, c *tclient, accountID int64, count int) ([]seededPayment, int) {
	t.Helper()
	minor := func(v any) int64 {
		t.Helper()
		n, err := tpp.ParseSignedMinor(v.(map[string]any)["value"].(string))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	base := userPath(c.userID, "/monetary-account/", itoa(accountID), "/payment")
	var out []seededPayment
	pages := 0
	for next := base + "?count=" + strconv.Itoa(count); next != ""; pages++ {
		r := c.get(next).must(t, 200)
		for _, e := range r.elems(t) {
			out = append(out, seededPayment{num(e.obj["id"]), e.obj["created"].(string),
				minor(e.obj["amount"]), minor(e.obj["balance_after_mutation"])})
		}
		next, _ = r.json(t)["Pagination"].(map[string]any)["older_url"].(string)
	}
	return out, pages
}

// TestSeedIDsFollowTime checks what the TPP's date filter relies on: on
// every seeded account, a payment with a higher id was not created
// earlier, and balances after mutation add up in that order.
func TestSeedIDsFollowTime(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	users := env.Users(t)
	byID := map[int64]seededPayment{}
	for _, u := range users[:4] { // the seeded persons and company
		c := newClient(t, env)
		c.context(u.APIKey)
		for _, a := range u.Accounts {
			ps, _ := allPayments(t, c, a.ID, 200)
			if len(ps) == 0 {
				t.Fatalf("user %d account %d (%s) has no history", u.ID, a.ID, a.Type)
			}
			if a.Description == "Main account" && len(ps) != 300 {
				t.Errorf("Alice's main account has %d payments, want 300", len(ps))
			}
			var bal int64
			for i := len(ps) - 1; i >= 0; i-- { // oldest first
				p := ps[i]
				if i < len(ps)-1 {
					prev := ps[i+1]
					if p.id <= prev.id || p.created < prev.created {
						t.Fatalf("account %d (%s): payment %d created %s follows %d created %s",
							a.ID, a.Type, p.id, p.created, prev.id, prev.created)
					}
				}
				bal += p.amount
				if p.balance != bal {
					t.Fatalf("account %d (%s): payment %d balance after mutation %d, want %d", a.ID, a.Type, p.id, p.balance, bal)
				}
				byID[p.id] = p
			}
			if want, err := tpp.ParseSignedMinor(a.Balance.Value); err != nil || want != bal {
				t.Fatalf("account %d (%s): balance %s, history adds up to %d", a.ID, a.Type, a.Balance.Value, bal)
			}
		}
	}
	// Across accounts too: ids are one sequence in time.
	ids := make([]int64, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for i := 1; i < len(ids); i++ {
		if a, b := byID[ids[i-1]], byID[ids[i]]; b.created < a.created {
			t.Fatalf("payment %d created %s, after %d created %s", b.id, b.created, a.id, a.created)
		}
	}

	// Paging the joint account with older_id gives the same history, in
	// time order, page after page.
	alice := users[0]
	joint := accountOf(t, alice, "MonetaryAccountJoint")
	c := newClient(t, env)
	c.context(alice.APIKey)
	whole, _ := allPayments(t, c, joint.ID, 200)
	paged, pages := allPayments(t, c, joint.ID, 3)
	if pages < 3 || !reflect.DeepEqual(paged, whole) {
		t.Fatalf("joint account paged in %d pages: %d payments, unpaged %d", pages, len(paged), len(whole))
	}
	for i := 1; i < len(paged); i++ {
		if paged[i].created > paged[i-1].created {
			t.Fatalf("joint account page order: %s after %s", paged[i].created, paged[i-1].created)
		}
	}
}
