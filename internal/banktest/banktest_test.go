package banktest

import (
	"strings"
	"testing"
)

func TestEnv(t *testing.T) {
	env := Start(t, WithSeed(5))
	users := env.Users(t)
	if len(users) < 3 || !strings.HasPrefix(users[0].APIKey, "sandbox_") || len(users[0].Accounts) == 0 {
		t.Fatalf("users %+v", users)
	}
	env.Fault(t, Fault{Path: "/v1/user/**", Kind: FaultStatus, Status: 503, Count: 1})
	env.ClearFaults(t)
	env.SetRateLimits(t, true)
	env.AdvanceClock(t, 0)
	env.ResetStats(t)
	if st := env.Stats(t); len(st) != 0 {
		t.Fatalf("stats %v", st)
	}
	if cbs := env.Callbacks(t); len(cbs) != 0 {
		t.Fatalf("callbacks %v", cbs)
	}
	// Non-2xx answers are errors.
	if err := env.control("POST", "/_sandbox/draft-payments/1/accept", nil, nil); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("unknown draft: %v", err)
	}
	if err := env.control("POST", "/_sandbox/faults", Fault{Path: "/x", Kind: "nonsense"}, nil); err == nil {
		t.Fatal("bad fault kind accepted")
	}
}
