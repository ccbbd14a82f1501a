package cbpii_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/aisp/aisptest"
	"github.com/bunqtpp/tpp/cbpii"
	"github.com/bunqtpp/tpp/internal/banktest"
)

const fundsKey = "POST /v1/user/{id}/confirmation-of-funds"

func setup(t *testing.T) *aisptest.Stack {
	t.Helper()
	return setupOn(t, nil)
}

func setupOn(t *testing.T, env *banktest.Env) *aisptest.Stack {
	t.Helper()
	s := aisptest.NewOn(t, env)
	svc, err := cbpii.New(cbpii.Config{Gate: s.Gate, Bank: s.PSD2, Audit: s.Audit, Clock: s.Clock})
	if err != nil {
		t.Fatal(err)
	}
	s.OnCall(svc.ObserveCall)
	h, err := cbpii.NewHandler(svc)
	if err != nil {
		t.Fatal(err)
	}
	h.Register(s.V1)
	return s
}

func account(t *testing.T, s *aisptest.Stack, typ string) banktest.Account {
	t.Helper()
	for _, a := range s.Person.Accounts {
		if a.Type == typ {
			return a
		}
	}
	t.Fatalf("no %s", typ)
	return banktest.Account{}
}

func money(v string) map[string]string { return map[string]string{"amount": v, "currency": "EUR"} }

// checks returns the consent's funds-check audit details.
func checks(t *testing.T, s *aisptest.Stack, consentID string) []tpp.AuditRecord {
	t.Helper()
	recs, err := s.Audit.ListAudit(context.Background(), tpp.AuditFilter{ConsentID: consentID}, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []tpp.AuditRecord
	for _, r := range recs {
		if r.Action == cbpii.AuditFundsChecked {
			out = append(out, r)
		}
	}
	return out
}

var uuidRe = regexp.MustCompile(`bank_request_id=[0-9a-f-]{36} bank_response_id=[^-\s]\S+`)

func TestFundsBothWays(t *testing.T) {
	t.Parallel()
	s := setup(t)
	c := s.ActiveConsent(tpp.ScopeFunds)
	main := account(t, s, "MonetaryAccountBank")
	savings := account(t, s, "MonetaryAccountSavings")
	path := "/v1/consents/" + c.ID + "/funds-confirmations"
	spaced := strings.ToLower(main.IBAN[:4] + " " + main.IBAN[4:8] + " " + main.IBAN[8:])

	cases := []struct {
		name string
		body map[string]any
		want bool
	}{
		{"account, small amount", map[string]any{"account_id": tpp.AccountID(main.ID), "amount": money("0.01")}, true},
		{"account, the balance exactly", map[string]any{"account_id": tpp.AccountID(savings.ID), "amount": money(savings.Balance.Value)}, true},
		{"account, above the balance", map[string]any{"account_id": tpp.AccountID(savings.ID), "amount": money(addCent(t, savings.Balance.Value))}, false},
		{"iban, small amount", map[string]any{"iban": main.IBAN, "amount": money("1")}, true},
		{"iban with spaces and lower case", map[string]any{"iban": spaced, "amount": money("1.5")}, true},
		{"iban, far too much", map[string]any{"iban": main.IBAN, "amount": money("999999.99")}, false},
	}
	s.Env.ResetStats(t)
	for _, tc := range cases {
		res := s.Do("POST", path, tc.body)
		if res.Status != 200 {
			t.Fatalf("%s: %d %s", tc.name, res.Status, res.Body)
		}
		m := res.JSON(t)
		if m["sufficient"] != tc.want || m["checked_at"] != s.Clock.Now().UTC().Format(time.RFC3339) {
			t.Errorf("%s: %s", tc.name, res.Body)
		}
		if res.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q", tc.name, res.Header.Get("Cache-Control"))
		}
	}
	// Never cached: every check asks the bank.
	if n := s.Env.Stats(t)[fundsKey]; n != len(cases) {
		t.Errorf("%d checks made %d bank calls", len(cases), n)
	}
	recs := checks(t, s, c.ID)
	if len(recs) != len(cases) {
		t.Fatalf("%d audit records for %d checks", len(recs), len(cases))
	}
	for i, r := range recs {
		want := "result=sufficient"
		if !cases[i].want {
			want = "result=insufficient"
		}
		if r.Actor != tpp.ActorClient(s.Client.ID) || r.ClientID != s.Client.ID || r.RequestID == "" ||
			!strings.Contains(r.Detail, want) || !strings.Contains(r.Detail, " EUR ") || !uuidRe.MatchString(r.Detail) {
			t.Errorf("audit %d: %+v", i, r)
		}
	}
	if !strings.Contains(recs[3].Detail, "iban="+main.IBAN+" amount=1.00 EUR") {
		t.Errorf("audit of the IBAN check: %s", recs[3].Detail)
	}
}

func addCent(t *testing.T, v string) string {
	t.Helper()
	n, err := tpp.ParseSignedMinor(v)
	if err != nil {
		t.Fatal(err)
	}
	return tpp.FormatMinor(n + 1)
}

func TestFundsRefusals(t *testing.T) {
	t.Parallel()
	s := setup(t)
	c := s.ActiveConsent(tpp.ScopeFunds)
	main := account(t, s, "MonetaryAccountBank")
	path := "/v1/consents/" + c.ID + "/funds-confirmations"
	var foreign banktest.Account
	for _, u := range s.Env.Users(t) {
		if u.ID != s.Person.ID && len(u.Accounts) > 0 {
			foreign = u.Accounts[0]
		}
	}
	ok := map[string]any{"account_id": tpp.AccountID(main.ID), "amount": money("1.00")}

	// Refused before the bank: no bank call, no audit record.
	bad := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"both references", map[string]any{"account_id": tpp.AccountID(main.ID), "iban": main.IBAN, "amount": money("1")}, 400, tpp.EInvalid},
		{"no reference", map[string]any{"amount": money("1")}, 400, tpp.EInvalid},
		{"empty account_id", map[string]any{"account_id": "", "amount": money("1")}, 400, tpp.EInvalid},
		{"bad IBAN checksum", map[string]any{"iban": "NL91BUNQ2025341012", "amount": money("1")}, 400, tpp.EInvalidIBAN},
		{"IBAN too short", map[string]any{"iban": "NL91BUNQ20253410", "amount": money("1")}, 400, tpp.EInvalidIBAN},
		{"no amount", map[string]any{"iban": main.IBAN}, 400, tpp.EInvalidAmount},
		{"three decimals", map[string]any{"iban": main.IBAN, "amount": money("1.001")}, 400, tpp.EInvalidAmount},
		{"negative", map[string]any{"iban": main.IBAN, "amount": money("-1.00")}, 400, tpp.EInvalidAmount},
		{"zero", map[string]any{"iban": main.IBAN, "amount": money("0.00")}, 400, tpp.EInvalidAmount},
		{"above the limit", map[string]any{"iban": main.IBAN, "amount": money("1000000.01")}, 400, tpp.EInvalidAmount},
		{"amount as a number", []byte(`{"iban":"` + main.IBAN + `","amount":{"amount":12.5,"currency":"EUR"}}`), 400, tpp.EInvalid},
		{"bad currency", map[string]any{"iban": main.IBAN, "amount": map[string]string{"amount": "1.00", "currency": "EURO"}}, 400, tpp.EInvalidCurrency},
		{"lower-case currency", map[string]any{"iban": main.IBAN, "amount": map[string]string{"amount": "1.00", "currency": "eur"}}, 400, tpp.EInvalidCurrency},
		{"unknown field", map[string]any{"iban": main.IBAN, "amount": money("1"), "note": "x"}, 400, tpp.EInvalid},
		{"unknown amount field", map[string]any{"iban": main.IBAN, "amount": map[string]string{"amount": "1.00", "currency": "EUR", "value": "1"}}, 400, tpp.EInvalid},
		{"not JSON", []byte(`{"iban":`), 400, tpp.EInvalid},
		{"empty body", []byte(``), 400, tpp.EInvalid},
		{"two objects", []byte(`{"iban":"` + main.IBAN + `","amount":{"amount":"1","currency":"EUR"}}{}`), 400, tpp.EInvalid},
		{"unknown consent", nil, 404, tpp.EConsentNotFound},
		{"malformed account id", map[string]any{"account_id": "acc_nope", "amount": money("1")}, 404, tpp.EAccountNotFound},
	}
	s.Env.ResetStats(t)
	for _, tc := range bad {
		p, body := path, tc.body
		if tc.name == "unknown consent" {
			p, body = "/v1/consents/con_unknown/funds-confirmations", ok
		}
		res := s.Do("POST", p, body)
		if res.Status != tc.status || res.Code(t) != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, res.Status, res.Body, tc.status, tc.code)
		}
	}
	if n := s.Env.Stats(t)[fundsKey]; n != 0 {
		t.Errorf("refused requests reached the bank %d times", n)
	}
	if recs := checks(t, s, c.ID); len(recs) != 0 {
		t.Errorf("refused requests were audited as checks: %+v", recs)
	}
	if tr := s.Transitions(c.ID); len(tr) != 1 {
		t.Errorf("refused requests changed the consent: %v", tr)
	}

	// Another user's account: the bank does not know it in this consent's
	// context. The check happened, so it is audited.
	for _, body := range []map[string]any{
		{"iban": foreign.IBAN, "amount": money("1")},
		{"account_id": tpp.AccountID(foreign.ID), "amount": money("1")},
	} {
		res := s.Do("POST", path, body)
		if res.Status != 404 || res.Code(t) != tpp.EAccountNotFound || strings.Contains(string(res.Body), "sufficient") {
			t.Errorf("foreign account %v: %d %s", body, res.Status, res.Body)
		}
	}
	if recs := checks(t, s, c.ID); len(recs) != 2 || !strings.Contains(recs[0].Detail, "result=error:account_not_found") {
		t.Errorf("audit of failed checks: %+v", recs)
	}

	// What each consent state answers is held for every role at once in
	// package consent (TestEveryRoleAnswersTheSameForTheSameConsent).
	if res := s.DoAs("", "POST", path, ok); res.Status != 401 {
		t.Errorf("no key: %d %s", res.Status, res.Body)
	}
}

func TestFundsBankFaults(t *testing.T) {
	t.Parallel()
	s := setup(t)
	c := s.ActiveConsent(tpp.ScopeFunds)
	main := account(t, s, "MonetaryAccountBank")
	path := "/v1/consents/" + c.ID + "/funds-confirmations"
	body := map[string]any{"iban": main.IBAN, "amount": money("1")}
	if res := s.Do("POST", path, body); res.Status != 200 {
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
		{banktest.Fault{Kind: banktest.FaultStatus, Status: 400}, 422, tpp.EBankRejected},
		{banktest.Fault{Kind: banktest.FaultDrop}, 502, tpp.EBankUnavailable},
		{banktest.Fault{Kind: banktest.FaultDropBefore}, 502, tpp.EBankUnavailable},
		{banktest.Fault{Kind: banktest.FaultBadSignature}, 502, tpp.EBankUnavailable},
		{banktest.Fault{Kind: banktest.FaultNoSignature}, 502, tpp.EBankUnavailable},
	}
	for _, tc := range cases {
		f := tc.fault
		f.Method, f.Path = "POST", "/v1/user/*/confirmation-of-funds"
		s.Env.Fault(t, f)
		res := s.Do("POST", path, body)
		s.Env.ClearFaults(t)
		if res.Status != tc.status || res.Code(t) != tc.code || strings.Contains(string(res.Body), "sufficient") {
			t.Errorf("%s %d: %d %s, want %d %s", f.Kind, f.Status, res.Status, res.Body, tc.status, tc.code)
		}
	}
	recs := checks(t, s, c.ID)
	if len(recs) != 1+len(cases) {
		t.Fatalf("%d audit records", len(recs))
	}
	for i, r := range recs[1:] {
		if !strings.Contains(r.Detail, "result=error:"+cases[i].code) || strings.Contains(r.Detail, "bank_request_id=-") {
			t.Errorf("audit of fault %d: %s", i, r.Detail)
		}
	}
	// The grant withdrawn at the bank: consent_revoked, consent revoked.
	s.Env.RevokeGrant(t, s.Person.ID, s.Bank.ClientID)
	if res := s.Do("POST", path, body); res.Status != 403 || res.Code(t) != tpp.EConsentRevoked {
		t.Errorf("revoked grant: %d %s", res.Status, res.Body)
	}
	if st := s.Consent(c.ID).Status; st != tpp.ConsentRevoked {
		t.Errorf("consent is %s", st)
	}
}

// TestFundsAnswerShapes: bunq's OpenAPI document answers a funds check
// with {"Id": {"id": …}} only (the emulator's "id" switch). The client reads
// both shapes; one without a result answers bank_unavailable with its own
// message, never a guess.
func TestFundsAnswerShapes(t *testing.T) {
	t.Parallel()
	s := setupOn(t, banktest.Start(t, banktest.WithFundsAnswer("id")))
	c := s.ActiveConsent(tpp.ScopeFunds)
	main := account(t, s, "MonetaryAccountBank")
	res := s.Do("POST", "/v1/consents/"+c.ID+"/funds-confirmations", map[string]any{"account_id": tpp.AccountID(main.ID), "amount": money("1.00")})
	if res.Status != 502 || res.Code(t) != tpp.EBankUnavailable || !strings.Contains(string(res.Body), "did not say whether the funds are sufficient") {
		t.Fatalf("id-only answer: %d %s", res.Status, res.Body)
	}
}
