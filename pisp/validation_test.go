package pisp_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/bunqtpp/tpp"
)

// snapshot is everything a refused request must leave alone.
type snapshot struct {
	rows  map[string]int
	stats map[string]int
}

func (h *harness) snapshot() snapshot {
	h.t.Helper()
	s := snapshot{rows: map[string]int{}}
	for _, tb := range []string{"payments", "payment_status_history", "idempotency_records", "consents", "webhook_events", "audit_log"} {
		s.rows[tb] = h.count(tb)
	}
	s.stats = h.env.Stats(h.t)
	return s
}

// TestBadInputs sends invalid requests to every endpoint: each gets its
// status and code, and nothing changes: no row, no bank call.
func TestBadInputs(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	con := h.connect("accounts", "payments")
	accountsOnly := h.connect("accounts")
	pay := h.createPayment(con, "seed", h.paymentBody("1.00", "Seed"))
	payID := pay.str("id")
	// A revoked consent.
	revoked := h.connect("payments")
	if r := h.req("DELETE", "/v1/consents/"+revoked, "", nil); r.status != 200 {
		t.Fatalf("revoke: %d %s", r.status, r.raw)
	}
	// A pending consent (never authorized).
	pc := h.req("POST", "/v1/consents", `{"user_ref":"u","scopes":["payments"],"return_url":"`+returnURL0+`"}`, nil)
	pending := pc.str("id")

	good := map[string]any{}
	_ = json.Unmarshal([]byte(h.paymentBody("10.00", "Good")), &good)
	with := func(k string, v any) string {
		m := maps.Clone(good)
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	money := func(a, c string) map[string]string { return map[string]string{"amount": a, "currency": c} }
	cp := func(iban, name string) map[string]string { return map[string]string{"iban": iban, "name": name} }
	payee := h.payee().IBAN
	goodSingle := map[string]any{}
	_ = json.Unmarshal([]byte(h.singleBody("10.00", "Good")), &goodSingle)
	single := func(k string, v any) string {
		m := maps.Clone(goodSingle)
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return string(b)
	}

	goodDebtorIBAN, _ := goodSingle["debtor"].(map[string]any)["iban"].(string)
	payments := "/v1/consents/" + con + "/payments"
	k := key("bad-1")
	tests := []struct {
		name, method, path, body string
		hdr                      map[string]string
		status                   int
		code                     string
	}{
		{"no idempotency key", "POST", payments, with("description", "x"), nil, 400, tpp.EIdempotencyKeyRequired},
		{"idempotency key with a space", "POST", payments, with("description", "x"), key("a b"), 400, tpp.EInvalid},
		{"idempotency key too long", "POST", payments, with("description", "x"), key(strings.Repeat("k", 256)), 400, tpp.EInvalid},
		{"empty body", "POST", payments, "", k, 400, tpp.EInvalid},
		{"not JSON", "POST", payments, "{amount:", k, 400, tpp.EInvalid},
		{"unknown field", "POST", payments, with("priority", "high"), k, 400, tpp.EInvalid},
		{"two objects", "POST", payments, with("description", "x") + "{}", k, 400, tpp.EInvalid},
		{"body over 64 KiB", "POST", payments, with("description", strings.Repeat("x", 70<<10)), k, 413, tpp.EBodyTooLarge},
		{"amount as a number", "POST", payments, with("amount", map[string]any{"amount": 12.5, "currency": "EUR"}), k, 400, tpp.EInvalid},
		{"amount missing", "POST", payments, with("amount", nil), k, 400, tpp.EInvalidAmount},
		{"amount zero", "POST", payments, with("amount", money("0.00", "EUR")), k, 400, tpp.EInvalidAmount},
		{"amount negative", "POST", payments, with("amount", money("-5.00", "EUR")), k, 400, tpp.EInvalidAmount},
		{"amount three decimals", "POST", payments, with("amount", money("1.005", "EUR")), k, 400, tpp.EInvalidAmount},
		{"amount with exponent", "POST", payments, with("amount", money("1e3", "EUR")), k, 400, tpp.EInvalidAmount},
		{"amount above limit", "POST", payments, with("amount", money("1000000.01", "EUR")), k, 400, tpp.EInvalidAmount},
		{"currency unknown", "POST", payments, with("amount", money("1.00", "EUX")), k, 400, tpp.EInvalidCurrency},
		{"currency lower case", "POST", payments, with("amount", money("1.00", "eur")), k, 400, tpp.EInvalidCurrency},
		{"IBAN bad checksum", "POST", payments, with("counterparty", cp("NL91ABNA0417164301", "X")), k, 400, tpp.EInvalidIBAN},
		{"IBAN wrong length", "POST", payments, with("counterparty", cp("NL91ABNA041716430", "X")), k, 400, tpp.EInvalidIBAN},
		{"IBAN unknown country", "POST", payments, with("counterparty", cp("XX91ABNA0417164300", "X")), k, 400, tpp.EInvalidIBAN},
		{"counterparty missing", "POST", payments, with("counterparty", nil), k, 400, tpp.EInvalid},
		{"counterparty name empty", "POST", payments, with("counterparty", cp(payee, " ")), k, 400, tpp.EInvalid},
		{"counterparty name too long", "POST", payments, with("counterparty", cp(payee, strings.Repeat("n", 71))), k, 400, tpp.EInvalid},
		{"description missing", "POST", payments, with("description", nil), k, 400, tpp.EInvalidDescription},
		{"description 141 characters", "POST", payments, with("description", strings.Repeat("é", 141)), k, 400, tpp.EInvalidDescription},
		{"description with newline", "POST", payments, with("description", "line\nbreak"), k, 400, tpp.EInvalidDescription},
		{"description with NUL", "POST", payments, with("description", "nul\x00"), k, 400, tpp.EInvalidDescription},
		{"description with right-to-left override", "POST", payments, with("description", "Invoice \u202Efdp.exe"), k, 400, tpp.EInvalidDescription},
		{"description with zero-width joiner", "POST", payments, with("description", "Ac\u200Dme"), k, 400, tpp.EInvalidDescription},
		{"reference with isolate", "POST", payments, with("reference", "ref\u2066x\u2069"), k, 400, tpp.EInvalidDescription},
		{"counterparty name with override", "POST", payments, with("counterparty", cp(payee, "Acme \u202Eevil")), k, 400, tpp.EInvalid},
		{"reference with tab", "POST", payments, with("reference", "a\tb"), k, 400, tpp.EInvalidDescription},
		{"account id malformed", "POST", payments, with("account_id", "acc_nope"), k, 404, tpp.EAccountNotFound},
		{"account id missing", "POST", payments, with("account_id", nil), k, 400, tpp.EInvalid},
		{"scope not granted", "POST", "/v1/consents/" + accountsOnly + "/payments", with("description", "x"), k, 403, tpp.EScopeNotGranted},
		{"consent revoked", "POST", "/v1/consents/" + revoked + "/payments", with("description", "x"), k, 403, tpp.EConsentRevoked},
		{"consent pending", "POST", "/v1/consents/" + pending + "/payments", with("description", "x"), k, 409, tpp.EConsentNotActive},
		{"consent unknown", "POST", "/v1/consents/con_unknown/payments", with("description", "x"), k, 404, tpp.EConsentNotFound},
		{"same key, other body", "POST", payments, h.paymentBody("1.01", "Seed"), key("seed"), 422, tpp.EIdempotencyKeyReused},
		{"no API key", "POST", payments, with("description", "x"), map[string]string{"Idempotency-Key": "z", "Authorization": "Bearer nope"}, 401, tpp.EUnauthorized},
		{"list: limit 0", "GET", payments + "?limit=0", "", nil, 400, tpp.EInvalid},
		{"list: limit 101", "GET", payments + "?limit=101", "", nil, 400, tpp.EInvalid},
		{"list: limit not a number", "GET", payments + "?limit=ten", "", nil, 400, tpp.EInvalid},
		{"list: forged cursor", "GET", payments + "?cursor=bm90LWEtY3Vyc29y", "", nil, 400, tpp.EInvalidCursor},
		{"list: scope not granted", "GET", "/v1/consents/" + accountsOnly + "/payments", "", nil, 403, tpp.EScopeNotGranted},
		{"get: unknown payment", "GET", payments + "/pay_unknown", "", nil, 404, tpp.EPaymentNotFound},
		{"get: payment under another consent", "GET", "/v1/consents/" + revoked + "/payments/" + payID, "", nil, 404, tpp.EPaymentNotFound},
		{"cancel: unknown payment", "DELETE", payments + "/pay_unknown", "", nil, 404, tpp.EPaymentNotFound},
		{"cancel: under another consent", "DELETE", "/v1/consents/" + accountsOnly + "/payments/" + payID, "", nil, 403, tpp.EScopeNotGranted},
		{"single: no idempotency key", "POST", "/v1/single-payments", single("description", "x"), nil, 400, tpp.EIdempotencyKeyRequired},
		{"single: unknown field", "POST", "/v1/single-payments", single("debtor_bic", "BUNQNL2A"), k, 400, tpp.EInvalid},
		{"single: debtor IBAN invalid", "POST", "/v1/single-payments", single("debtor", cp("NL00BUNQ0000000000", "Jan")), k, 400, tpp.EInvalidIBAN},
		{"single: debtor not at bunq", "POST", "/v1/single-payments", single("debtor", cp("NL91ABNA0417164300", "Jan")), k, 400, tpp.EInvalidIBAN},
		{"single: creditor IBAN missing", "POST", "/v1/single-payments", single("creditor", cp("", "Acme")), k, 400, tpp.EInvalidIBAN},
		{"single: creditor missing", "POST", "/v1/single-payments", single("creditor", nil), k, 400, tpp.EInvalid},
		{"single: creditor as flat fields", "POST", "/v1/single-payments", single("creditor_iban", payee), k, 400, tpp.EInvalid},
		{"single: same debtor and creditor", "POST", "/v1/single-payments", single("creditor", goodSingle["debtor"]), k, 400, tpp.EInvalidIBAN},
		{"single: debtor name missing", "POST", "/v1/single-payments", single("debtor", cp(goodDebtorIBAN, "")), k, 400, tpp.EInvalid},
		{"single: amount two decimals plus", "POST", "/v1/single-payments", single("amount", money("0.001", "EUR")), k, 400, tpp.EInvalidAmount},
		{"single: description control char", "POST", "/v1/single-payments", single("description", "bell\a"), k, 400, tpp.EInvalidDescription},
		{"single: description with override", "POST", "/v1/single-payments", single("description", "x\u202Ey"), k, 400, tpp.EInvalidDescription},
		{"single: creditor name with zero-width joiner", "POST", "/v1/single-payments", single("creditor", cp(payee, "Ac\u200Dme")), k, 400, tpp.EInvalid},
		{"single: debtor name with isolate", "POST", "/v1/single-payments", single("debtor", cp(goodDebtorIBAN, "\u2067Jan")), k, 400, tpp.EInvalid},
		{"single: return URL not registered", "POST", "/v1/single-payments", single("return_url", "https://evil.example/back"), k, 400, tpp.EInvalidReturnURL},
		{"single: return URL missing", "POST", "/v1/single-payments", single("return_url", nil), k, 400, tpp.EInvalidReturnURL},
		{"single: get a draft payment's id", "GET", "/v1/single-payments/" + payID, "", nil, 404, tpp.EPaymentNotFound},
		{"single: get unknown", "GET", "/v1/single-payments/pay_unknown", "", nil, 404, tpp.EPaymentNotFound},
	}
	if len(tests) < 25 {
		t.Fatal("the table must hold at least 25 bad inputs")
	}
	before := h.snapshot()
	for _, tc := range tests {
		r := h.req(tc.method, tc.path, tc.body, tc.hdr)
		if r.status != tc.status || r.str("code") != tc.code {
			t.Errorf("%s: got %d %s, want %d %s", tc.name, r.status, r.str("code"), tc.status, tc.code)
		}
		after := h.snapshot()
		if fmt.Sprint(after.rows) != fmt.Sprint(before.rows) {
			t.Errorf("%s: rows changed: %v → %v", tc.name, before.rows, after.rows)
		}
		if !maps.Equal(after.stats, before.stats) {
			t.Errorf("%s: bank called: %v → %v", tc.name, before.stats, after.stats)
		}
		before = after
	}
	// The seed payment is untouched.
	if p := h.payment(payID); p.Status != tpp.PaymentPending || len(p.StatusHistory) != 1 {
		t.Fatalf("seed payment changed: %+v", p)
	}
}

// Another client's consent and payment ids answer exactly like unknown ones.
func TestOtherClientsAreInvisible(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	con := h.connect()
	pay := h.createPayment(con, "idor", h.paymentBody("2.00", "Mine")).str("id")
	sp := h.req("POST", "/v1/single-payments", h.singleBody("2.00", "Mine too"), key("idor-s"))
	if sp.status != 201 {
		t.Fatalf("single: %d %s", sp.status, sp.raw)
	}
	_, otherKey := h.newClient("Other Fintech")
	otherCon := h.connectAs(otherKey, "payments")
	before := h.snapshot()

	for _, tc := range []struct {
		name, method, path, body string
		hdr                      map[string]string
		code                     string
	}{
		{"get payment via their consent", "GET", "/v1/consents/" + con + "/payments/" + pay, "", nil, tpp.EConsentNotFound},
		{"list their consent", "GET", "/v1/consents/" + con + "/payments", "", nil, tpp.EConsentNotFound},
		{"cancel via their consent", "DELETE", "/v1/consents/" + con + "/payments/" + pay, "", nil, tpp.EConsentNotFound},
		{"pay from their consent", "POST", "/v1/consents/" + con + "/payments", h.paymentBody("2.00", "Theft"), key("idor"), tpp.EConsentNotFound},
		{"their payment under own consent", "GET", "/v1/consents/" + otherCon + "/payments/" + pay, "", nil, tpp.EPaymentNotFound},
		{"cancel their payment under own consent", "DELETE", "/v1/consents/" + otherCon + "/payments/" + pay, "", nil, tpp.EPaymentNotFound},
		{"their single payment", "GET", "/v1/single-payments/" + sp.str("id"), "", nil, tpp.EPaymentNotFound},
	} {
		r := h.reqAs(otherKey, tc.method, tc.path, tc.body, tc.hdr)
		unknown := strings.NewReplacer(con, "con_aaaaaaaaaaaaaaaaaaaaaaaaaa", pay, "pay_aaaaaaaaaaaaaaaaaaaaaaaaaa", sp.str("id"), "pay_aaaaaaaaaaaaaaaaaaaaaaaaaa").Replace(tc.path)
		u := h.reqAs(otherKey, tc.method, unknown, tc.body, tc.hdr)
		if r.status != 404 || r.str("code") != tc.code || u.status != r.status || u.str("code") != r.str("code") {
			t.Errorf("%s: %d %s (unknown id: %d %s), want 404 %s", tc.name, r.status, r.str("code"), u.status, u.str("code"), tc.code)
		}
	}
	after := h.snapshot()
	if fmt.Sprint(after.rows) != fmt.Sprint(before.rows) || !maps.Equal(after.stats, before.stats) {
		t.Errorf("state changed: %v → %v, bank %v → %v", before.rows, after.rows, before.stats, after.stats)
	}
	if p := h.payment(pay); p.Status != tpp.PaymentPending {
		t.Fatalf("their payment changed: %s", p.Status)
	}
}

// The account ids payments take are the ones the accounts API hands out.
func TestAccountIDs(t *testing.T) {
	t.Parallel()
	for _, n := range []int64{1, 42, 1 << 40, 9_223_372_036_854_775_807} {
		id := tpp.AccountID(n)
		back, err := tpp.ParseAccountID(id)
		if err != nil || back != n {
			t.Errorf("%d → %s → %d %v", n, id, back, err)
		}
	}
	for _, bad := range []string{"", "acc_", "acc_AAAA", "xyz_aaaaaaaaaaaaa", tpp.AccountID(5) + "a", "acc_aaaaaaaaaaaaa"} {
		if _, err := tpp.ParseAccountID(bad); tpp.ErrorCode(err) != tpp.EAccountNotFound {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
