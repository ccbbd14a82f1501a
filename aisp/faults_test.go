package aisp_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/aisp"
	"github.com/bunqtpp/tpp/internal/banktest"
)

// Bank failures map to stable codes, and never leak data from an answer
// that could not be verified.
func TestBankFaults(t *testing.T) {
	t.Parallel()
	s, _ := setup(t, aisp.Config{})
	c := s.ActiveConsent(tpp.ScopeAccounts)
	acc := mainAccount(t, s)
	base := "/v1/consents/" + c.ID + "/accounts"
	paths := map[string]string{
		"/v1/user/*/monetary-account":           base,
		"/v1/user/*/monetary-account/*":         base + "/" + tpp.AccountID(acc.ID),
		"/v1/user/*/monetary-account/*/payment": base + "/" + tpp.AccountID(acc.ID) + "/transactions",
	}
	// A working read first, so that the context exists and faults hit reads.
	if res := s.Do("GET", base, nil, attended...); res.Status != 200 {
		t.Fatalf("%d %s", res.Status, res.Body)
	}
	cases := []struct {
		fault  banktest.Fault
		status int
		code   string
	}{
		{banktest.Fault{Kind: banktest.FaultStatus, Status: 500}, 502, tpp.EBankUnavailable},
		{banktest.Fault{Kind: banktest.FaultStatus, Status: 503}, 502, tpp.EBankUnavailable},
		{banktest.Fault{Kind: banktest.FaultStatus, Status: 429}, 429, tpp.EBankRateLimited},
		// The read contract has no 422: a bank refusing a read is a bank failure.
		{banktest.Fault{Kind: banktest.FaultStatus, Status: 400}, 502, tpp.EBankUnavailable},
		{banktest.Fault{Kind: banktest.FaultDrop}, 502, tpp.EBankUnavailable},
		{banktest.Fault{Kind: banktest.FaultBadSignature}, 502, tpp.EBankUnavailable},
		{banktest.Fault{Kind: banktest.FaultNoSignature}, 502, tpp.EBankUnavailable},
	}
	for bankPath, path := range paths {
		for _, tc := range cases {
			f := tc.fault
			f.Method, f.Path = "GET", bankPath
			s.Env.Fault(t, f)
			res := s.Do("GET", path, nil, append(attended, "Cache-Control", "no-cache")...)
			s.Env.ClearFaults(t)
			name := f.Kind + " " + strconv.Itoa(f.Status) + " " + path
			if res.Status != tc.status || res.Code(t) != tc.code {
				t.Errorf("%s: %d %s, want %d %s", name, res.Status, res.Body, tc.status, tc.code)
				continue
			}
			if strings.Contains(string(res.Body), acc.IBAN) || strings.Contains(string(res.Body), `"data"`) {
				t.Errorf("%s: error answer carries data: %s", name, res.Body)
			}
			if tc.status == 429 || (tc.status == 502 && f.Status != 400) {
				if n, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || n < 1 {
					t.Errorf("%s: Retry-After %q", name, res.Header.Get("Retry-After"))
				}
			}
			if f.Status == 400 && !strings.Contains(res.JSON(t)["detail"].(string), "The bank rejected the request") {
				t.Errorf("%s: detail should carry the bank's reason: %s", name, res.Body)
			}
		}
	}
	if st := s.Consent(c.ID).Status; st != tpp.ConsentActive {
		t.Errorf("bank faults changed the consent to %s", st)
	}

	// An expired session is renewed: the read still works.
	s.Env.Fault(t, banktest.Fault{Method: "GET", Path: "/v1/user/*/monetary-account", Kind: banktest.FaultExpireSession, Count: 1})
	if res := s.Do("GET", base, nil, append(attended, "Cache-Control", "no-cache")...); res.Status != 200 {
		t.Errorf("expired session: %d %s", res.Status, res.Body)
	}
	s.Env.ClearFaults(t)
}

// The user withdraws the grant in the bunq app: the next read finds out,
// checks again with the bank, and the consent becomes revoked (audited).
func TestGrantRevokedAtTheBank(t *testing.T) {
	t.Parallel()
	s, _ := setup(t, aisp.Config{})
	c := s.ActiveConsent(tpp.ScopeAccounts)
	path := "/v1/consents/" + c.ID + "/accounts"
	if res := s.Do("GET", path, nil, attended...); res.Status != 200 {
		t.Fatalf("%d %s", res.Status, res.Body)
	}
	s.Env.RevokeGrant(t, s.Person.ID, s.Bank.ClientID)
	res := s.Do("GET", path, nil, append(attended, "Cache-Control", "no-cache")...)
	if res.Status != 403 || res.Code(t) != tpp.EConsentRevoked {
		t.Fatalf("after the bank revoked the grant: %d %s", res.Status, res.Body)
	}
	if st := s.Consent(c.ID).Status; st != tpp.ConsentRevoked {
		t.Errorf("consent is %s, want revoked", st)
	}
	if tr := s.Transitions(c.ID); len(tr) != 2 || tr[1] != "active>revoked bank" {
		t.Errorf("audit trail %v", tr)
	}
	// From now on the consent answers revoked without asking the bank.
	s.Env.ResetStats(t)
	if res := s.Do("GET", path, nil, attended...); res.Code(t) != tpp.EConsentRevoked {
		t.Errorf("later read: %d %s", res.Status, res.Body)
	}
	if n := s.Env.Stats(t)[accountListKey]; n != 0 {
		t.Errorf("a revoked consent still reads the bank (%d calls)", n)
	}
}

// A short bank hiccup on authorization (the grant still valid) must not
// revoke the consent.
func TestAuthHiccupDoesNotRevoke(t *testing.T) {
	t.Parallel()
	s, _ := setup(t, aisp.Config{})
	c := s.ActiveConsent(tpp.ScopeAccounts)
	path := "/v1/consents/" + c.ID + "/accounts"
	if res := s.Do("GET", path, nil, attended...); res.Status != 200 {
		t.Fatalf("%d %s", res.Status, res.Body)
	}
	s.Env.Fault(t, banktest.Fault{Method: "GET", Path: "/v1/user/*/monetary-account", Kind: banktest.FaultStatus, Status: 401, Count: 1})
	res := s.Do("GET", path, nil, append(attended, "Cache-Control", "no-cache")...)
	if res.Code(t) == tpp.EConsentRevoked {
		t.Fatalf("a single 401 revoked the consent: %s", res.Body)
	}
	if st := s.Consent(c.ID).Status; st != tpp.ConsentActive {
		t.Errorf("consent is %s", st)
	}
}
