package aisp_test

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/aisp"
	"github.com/bunqtpp/tpp/bankctx"
	"github.com/bunqtpp/tpp/internal/banktest"
	"github.com/bunqtpp/tpp/psd2"
)

// TestEgressIPChangeIsNotARevocation: bunq binds a device to the IP it was
// made from. After the TPP's egress IP changes, renewing the consent's
// session is refused with "User credentials are incorrect. Incorrect API
// key or IP address.": the fintech gets 503 service_unavailable with Retry-After,
// the consent stays active, the refusal is visible to the operator's hook,
// and the next request works from a context registered from the new IP.
func TestEgressIPChangeIsNotARevocation(t *testing.T) {
	t.Parallel()
	s, _ := setup(t, aisp.Config{})
	var refused atomic.Int32
	s.OnCall(func(ci psd2.CallInfo) {
		if bankctx.CredentialsRefused(ci.Err) {
			refused.Add(1)
		}
	})
	c := s.ActiveConsent(tpp.ScopeAccounts)
	base := "/v1/consents/" + c.ID + "/accounts"
	if res := s.Do("GET", base, nil, attended...); res.Status != 200 {
		t.Fatalf("%d %s", res.Status, res.Body)
	}

	s.Env.SetClientIP(t, "198.51.100.77") // NAT pool change, failover, new host
	// The stored session runs out, so the next call renews it from the new IP.
	s.Env.Fault(t, banktest.Fault{Method: "GET", Path: "/v1/user/*/monetary-account", Kind: banktest.FaultExpireSession, Count: 1})
	res := s.Do("GET", base, nil, append(attended, "Cache-Control", "no-cache")...)
	if res.Status != 503 || res.Code(t) != tpp.EServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Fatalf("after the IP change: %d %s", res.Status, res.Body)
	}
	if !strings.Contains(string(res.Body), "operator") {
		t.Fatalf("answer does not say the operator is alerted: %s", res.Body)
	}
	if refused.Load() == 0 {
		t.Fatal("the credentials refusal never reached the bank call hook")
	}
	got, err := s.Consents.ConsentByID(t.Context(), c.ID)
	if err != nil || got.Status != tpp.ConsentActive {
		t.Fatalf("consent after the IP change: %+v %v", got, err)
	}
	// The re-check registered a fresh device from the new IP: reads work.
	if res := s.Do("GET", base, nil, append(attended, "Cache-Control", "no-cache")...); res.Status != 200 {
		t.Fatalf("after the re-check: %d %s", res.Status, res.Body)
	}
}
