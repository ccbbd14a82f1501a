package sandbox_test

import (
	"reflect"
	"sync"
	"testing"

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
