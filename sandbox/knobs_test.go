package sandbox_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bunqtpp/tpp/internal/banktest"
)

func TestRateLimits(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t, banktest.WithRateLimits())
	u := seeded(t, env, 2)
	c := newClient(t, env)
	c.context(u.APIKey)
	acc := accountOf(t, u, "MonetaryAccountBank")
	tooMany := func(r tresp, limit, secs string) {
		t.Helper()
		want := "Too many requests. You can do a maximum of " + limit + " calls per " + secs + " second to this endpoint."
		if r.status != 429 || r.errText(t) != want {
			t.Fatalf("want 429 %q, got %d %s", want, r.status, r.raw)
		}
	}
	// GET: 3 per 3 s per endpoint; another endpoint has its own budget.
	list := userPath(c.userID, "/monetary-account")
	for i := 0; i < 3; i++ {
		c.get(list).must(t, 200)
	}
	tooMany(c.get(list), "3", "3")
	c.get(userPath(c.userID)).must(t, 200)
	env.AdvanceClock(t, 3*time.Second)
	c.get(list).must(t, 200)

	// POST: 5 per 3 s.
	inq := userPath(c.userID, "/monetary-account/", itoa(acc.ID), "/request-inquiry")
	body := map[string]any{"amount_inquired": map[string]string{"value": "1", "currency": "EUR"},
		"counterparty_alias": map[string]string{"type": "EMAIL", "value": "sugardaddy@bunq.com"}, "description": "x"}
	for i := 0; i < 5; i++ {
		c.post(inq, body, false).must(t, 200)
	}
	tooMany(c.post(inq, body, false), "5", "3")

	// PUT: 2 per 3 s.
	put := userPath(c.userID, "/monetary-account-bank/", itoa(acc.ID))
	for i := 0; i < 2; i++ {
		c.call("PUT", put, map[string]string{"description": "renamed"}, c.sessToken, "").must(t, 200)
	}
	tooMany(c.call("PUT", put, map[string]string{"description": "again"}, c.sessToken, ""), "2", "3")

	// session-server: 1 per 30 s (the first one was made by c.context).
	tooMany(c.call("POST", "/v1/session-server", map[string]string{"secret": u.APIKey}, c.instToken, "auto"), "1", "30")
	env.AdvanceClock(t, 26*time.Second) // 29 s after the first session (3 s were advanced above)
	tooMany(c.call("POST", "/v1/session-server", map[string]string{"secret": u.APIKey}, c.instToken, "auto"), "1", "30")
	env.AdvanceClock(t, time.Second)
	c.session(u.APIKey)

	// Limits are per source IP (bunq §6.4): another installation from the
	// same IP shares the budget; from another IP it has its own.
	env.AdvanceClock(t, 30*time.Second) // session-server: 1 per 30 s per IP
	d := newClient(t, env)
	d.context(u.APIKey)
	for i := 0; i < 3; i++ {
		c.get(list).must(t, 200)
	}
	tooMany(d.get(userPath(d.userID, "/monetary-account")), "3", "3")
	env.SetClientIP(t, "203.0.113.9")
	e := newClient(t, env)
	e.context(u.APIKey)
	e.get(userPath(e.userID, "/monetary-account")).must(t, 200)
	env.SetClientIP(t, "")

	// Switched off and on again through the control endpoint.
	env.SetRateLimits(t, false)
	for i := 0; i < 6; i++ {
		c.get(list).must(t, 200)
	}
	env.SetRateLimits(t, true)
	for i := 0; i < 3; i++ {
		c.get(list).must(t, 200)
	}
	tooMany(c.get(list), "3", "3")
	// Rate-limited calls are counted in stats.
	if n := env.Stats(t)["GET /v1/user/{id}/monetary-account"]; n < 15 {
		t.Fatalf("stats count %d", n)
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	u := seeded(t, env, 2)
	c := newClient(t, env)
	c.context(u.APIKey)
	env.ResetStats(t)
	list := userPath(c.userID, "/monetary-account")
	pattern := "/v1/user/*/monetary-account"

	// status: bunq's envelope, for count calls, then normal again.
	env.Fault(t, banktest.Fault{Method: "GET", Path: pattern, Kind: banktest.FaultStatus, Status: 503, Count: 2})
	for i := 0; i < 2; i++ {
		if r := c.get(list); r.status != 503 || !strings.Contains(r.errText(t), "unavailable") {
			t.Fatalf("status fault: %d %s", r.status, r.raw)
		}
	}
	c.get(list).must(t, 200)
	env.Fault(t, banktest.Fault{Path: pattern, Kind: banktest.FaultStatus, Status: 491, Count: 1})
	if r := c.get(list); r.status != 491 || !strings.Contains(r.errText(t), "maintenance") {
		t.Fatalf("491 fault: %d %s", r.status, r.raw)
	}

	// latency.
	env.Fault(t, banktest.Fault{Method: "*", Path: "/v1/user/**", Kind: banktest.FaultLatency, LatencyMS: 150, Count: 1})
	start := time.Now()
	c.get(list).must(t, 200)
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("latency fault took %v", d)
	}

	// bad_signature / no_signature: the client's verification must fail.
	env.Fault(t, banktest.Fault{Path: pattern, Kind: banktest.FaultBadSignature, Count: 1})
	key := c.serverKey
	c.serverKey = nil // our helper would report it
	r := c.get(list)
	c.serverKey = key
	if r.status != 200 || verifyServer(key, r.raw, r.header.Get("X-Bunq-Server-Signature")) == nil {
		t.Fatalf("bad_signature verified")
	}
	env.Fault(t, banktest.Fault{Path: pattern, Kind: banktest.FaultNoSignature, Count: 1})
	c.serverKey = nil
	r = c.get(list)
	c.serverKey = key
	if r.status != 200 || r.header.Get("X-Bunq-Server-Signature") != "" {
		t.Fatalf("no_signature: %d %q", r.status, r.header.Get("X-Bunq-Server-Signature"))
	}

	// expire_session.
	env.Fault(t, banktest.Fault{Path: pattern, Kind: banktest.FaultExpireSession, Count: 1})
	if r := c.get(list); r.status != 403 || r.errText(t) != "Insufficient authorisation." {
		t.Fatalf("expire_session: %d %s", r.status, r.raw)
	}
	c.session(u.APIKey)

	// drop_before: no answer and nothing applied; drop: no answer, applied.
	acc := accountOf(t, u, "MonetaryAccountBank")
	inq := userPath(c.userID, "/monetary-account/", itoa(acc.ID), "/request-inquiry")
	body := `{"amount_inquired":{"value":"10","currency":"EUR"},"counterparty_alias":{"type":"EMAIL","value":"sugardaddy@bunq.com"},"description":"x"}`
	send := func() error {
		req, _ := http.NewRequest("POST", c.base+inq, strings.NewReader(body))
		req.Header.Set("X-Bunq-Client-Authentication", c.sessToken)
		for h, v := range map[string]string{"User-Agent": "t", "Cache-Control": "no-cache", "X-Bunq-Geolocation": "0 0 0 0 000",
			"X-Bunq-Language": "en_US", "X-Bunq-Region": "nl_NL", "X-Bunq-Client-Request-Id": randomID()} {
			req.Header.Set(h, v)
		}
		resp, err := (&http.Transport{DisableKeepAlives: true}).RoundTrip(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return err
	}
	env.Fault(t, banktest.Fault{Method: "POST", Path: "/v1/user/*/monetary-account/*/request-inquiry", Kind: banktest.FaultDropBefore, Count: 1})
	if err := send(); err == nil {
		t.Fatalf("drop_before answered")
	}
	if got := balanceOf(t, c, acc.ID); got != acc.Balance.Value {
		t.Fatalf("drop_before applied the call: %s", got)
	}
	env.Fault(t, banktest.Fault{Method: "POST", Path: "/v1/user/*/monetary-account/*/request-inquiry", Kind: banktest.FaultDrop, Count: 1})
	if err := send(); err == nil {
		t.Fatalf("drop answered")
	}
	if got := balanceOf(t, c, acc.ID); got != minus(t, acc.Balance.Value, -1000) {
		t.Fatalf("drop did not apply the call: %s", got)
	}

	// count 0 lasts until cleared.
	env.Fault(t, banktest.Fault{Path: pattern, Kind: banktest.FaultStatus, Status: 500})
	for i := 0; i < 3; i++ {
		c.get(list).must(t, 500)
	}
	env.ClearFaults(t)
	c.get(list).must(t, 200)

	// Stats count by route pattern, including faulted calls.
	st := env.Stats(t)
	if st["GET /v1/user/{id}/monetary-account"] < 12 || st["POST /v1/session-server"] != 1 {
		t.Fatalf("stats %v", st)
	}
	env.ResetStats(t)
	if st := env.Stats(t); len(st) != 0 {
		t.Fatalf("stats after reset %v", st)
	}
}

func randomID() string { return "raw-" + itoa(requestSeq.Add(1)) }
