package aisp_test

import (
	"net/url"
	"testing"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/aisp"
)

// Bad requests are refused with a clear code, before the bank is asked and
// before the PSD2 budget or the consent change.
func TestBadInputs(t *testing.T) {
	t.Parallel()
	s, _ := setup(t, aisp.Config{})
	c := s.ActiveConsent(tpp.ScopeAccounts)
	acc := tpp.AccountID(mainAccount(t, s).ID)
	tx := "/v1/consents/" + c.ID + "/accounts/" + acc + "/transactions"
	cases := []struct {
		name   string
		path   string
		header []string
		status int
		code   string
	}{
		{"limit 0", tx + "?limit=0", nil, 400, tpp.EInvalid},
		{"limit 201", tx + "?limit=201", nil, 400, tpp.EInvalid},
		{"limit -1", tx + "?limit=-1", nil, 400, tpp.EInvalid},
		{"limit text", tx + "?limit=ten", nil, 400, tpp.EInvalid},
		{"limit empty", tx + "?limit=", nil, 400, tpp.EInvalid},
		{"limit twice", tx + "?limit=5&limit=6", nil, 400, tpp.EInvalid},
		{"from garbage", tx + "?from=yesterday", nil, 400, tpp.EInvalid},
		{"from bad month", tx + "?from=2026-13-01", nil, 400, tpp.EInvalid},
		{"to without zone", tx + "?to=" + url.QueryEscape("2026-11-01T10:00:00"), nil, 400, tpp.EInvalid},
		{"from after to", tx + "?from=2026-11-02&to=2026-11-01", nil, 400, tpp.EInvalid},
		{"cursor garbage", tx + "?cursor=bm90IGEgY3Vyc29y", nil, 400, tpp.EInvalidCursor},
		{"PSU-IP-Address not an IP", "/v1/consents/" + c.ID + "/accounts", []string{"PSU-IP-Address", "localhost"}, 400, tpp.EInvalid},
		{"PSU-IP-Address too short", "/v1/consents/" + c.ID + "/accounts", []string{"PSU-IP-Address", "1"}, 400, tpp.EInvalid},
		{"account id garbage", "/v1/consents/" + c.ID + "/accounts/acc_zzz", nil, 404, tpp.EAccountNotFound},
		{"account id other prefix", "/v1/consents/" + c.ID + "/accounts/pay_aaaaaaaaaad5c/transactions", nil, 404, tpp.EAccountNotFound},
		{"account id non-canonical", "/v1/consents/" + c.ID + "/accounts/" + acc + "a", nil, 404, tpp.EAccountNotFound},
		{"unknown consent", "/v1/consents/con_unknown/accounts", nil, 404, tpp.EConsentNotFound},
	}
	s.Env.ResetStats(t)
	for _, tc := range cases {
		res := s.Do("GET", tc.path, nil, tc.header...)
		if res.Status != tc.status || res.Code(t) != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, res.Status, res.Body, tc.status, tc.code)
		}
		if res.Header.Get("RateLimit-Remaining") != "" {
			t.Errorf("%s: counted against the PSD2 budget", tc.name)
		}
	}
	if st := s.Env.Stats(t); len(st) != 0 {
		t.Errorf("bad requests reached the bank: %v", st)
	}
	if tr := s.Transitions(c.ID); len(tr) != 1 {
		t.Errorf("bad requests changed the consent: %v", tr)
	}
	// The whole budget is still there.
	if res := s.Do("GET", "/v1/consents/"+c.ID+"/accounts", nil); res.Status != 200 || res.Header.Get("RateLimit-Remaining") != "3" {
		t.Errorf("first good unattended read: %d, RateLimit-Remaining %q", res.Status, res.Header.Get("RateLimit-Remaining"))
	}
}

func TestAccountIDRoundTrip(t *testing.T) {
	t.Parallel()
	for _, n := range []int64{1, 42, 1 << 40, 1<<63 - 1} {
		id := tpp.AccountID(n)
		got, err := tpp.ParseAccountID(id)
		if err != nil || got != n {
			t.Errorf("%d → %s → %d, %v", n, id, got, err)
		}
	}
	for _, bad := range []string{"", "acc_", "acc_AAAAAAAAAAAAA", tpp.AccountID(0), "acc_aaaaaaaaaaaaa=", "x" + tpp.AccountID(5)} {
		if _, err := tpp.ParseAccountID(bad); tpp.ErrorCode(err) != tpp.EAccountNotFound {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
