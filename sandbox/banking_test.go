package sandbox_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/bunqtpp/tpp/internal/banktest"
)

func balanceOf(t testing.TB, c *tclient, accountID int64) string {
	t.Helper()
	es := c.get(userPath(c.userID, "/monetary-account/", itoa(accountID))).must(t, 200).elems(t)
	return es[0].obj["balance"].(map[string]any)["value"].(string)
}

func TestPaymentPaging(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	u := seeded(t, env, 0)
	main := accountOf(t, u, "MonetaryAccountBank")
	c := newClient(t, env)
	c.context(u.APIKey)
	base := userPath(c.userID, "/monetary-account/", itoa(main.ID), "/payment")

	fetch := func(pathQuery string) ([]int64, map[string]any) {
		t.Helper()
		r := c.get(pathQuery).must(t, 200)
		var ids []int64
		for _, e := range r.elems(t) {
			if e.typ != "Payment" {
				t.Fatalf("element %s", e.typ)
			}
			ids = append(ids, num(e.obj["id"]))
		}
		pg, ok := r.json(t)["Pagination"].(map[string]any)
		if !ok {
			t.Fatalf("no Pagination: %s", r.raw)
		}
		return ids, pg
	}
	// Default count is 10, newest first; the first page has a future_url.
	first, pg := fetch(base)
	if len(first) != 10 || pg["newer_url"] != nil || pg["future_url"] == nil || pg["older_url"] == nil {
		t.Fatalf("first page %v %v", first, pg)
	}
	// Walk to the end with older_url, then back with newer_url.
	seen := map[int64]bool{}
	var all []int64
	next := base + "?count=25"
	var lastPG map[string]any
	for next != "" {
		ids, pg := fetch(next)
		for i, id := range ids {
			if seen[id] {
				t.Fatalf("duplicate %d", id)
			}
			if i > 0 && id >= ids[i-1] {
				t.Fatalf("not newest first: %v", ids)
			}
			seen[id] = true
			all = append(all, id)
		}
		lastPG = pg
		next, _ = pg["older_url"].(string)
		if next != "" && !strings.HasPrefix(next, base+"?count=25&older_id=") {
			t.Fatalf("older_url %q", next)
		}
	}
	if len(all) != 300 {
		t.Fatalf("walked %d payments, want 300", len(all))
	}
	back := lastPG["newer_url"].(string)
	var again []int64
	for back != "" {
		ids, pg := fetch(back)
		again = append(ids, again...)
		back, _ = pg["newer_url"].(string)
		if back == "" && pg["future_url"] == nil {
			t.Fatalf("newest page without future_url: %v", pg)
		}
	}
	// Walking back covers everything except the oldest page we started from.
	if want := all[:len(all)-25]; len(again) != len(want) {
		t.Fatalf("walked back %d, want %d", len(again), len(want))
	} else {
		for i := range want {
			if want[i] != again[i] {
				t.Fatalf("walk back differs at %d: %d vs %d", i, want[i], again[i])
			}
		}
	}
	// The SDK scenario: latest page + older page = first 4 of a count=4 list.
	p1, pg1 := fetch(base + "?count=2")
	u2, _ := url.Parse(pg1["older_url"].(string))
	p2, pg2 := fetch(u2.String())
	four, _ := fetch(base + "?count=4")
	if got := append(p1, p2...); len(got) != 4 || got[0] != four[0] || got[3] != four[3] {
		t.Fatalf("scenario: %v + %v vs %v", p1, p2, four)
	}
	p3, _ := fetch(pg2["newer_url"].(string))
	if len(p3) != 2 || p3[0] != p1[0] || p3[1] != p1[1] {
		t.Fatalf("newer page %v, want %v", p3, p1)
	}
	// Count limits.
	if ids, _ := fetch(base + "?count=200"); len(ids) != 200 {
		t.Fatalf("count=200 gave %d", len(ids))
	}
	for _, bad := range []string{"201", "0", "x"} {
		if r := c.get(base + "?count=" + bad); r.status != 400 {
			t.Fatalf("count=%s: %d", bad, r.status)
		}
	}
	// A payment by id, with bunq's fields.
	p := c.get(base+"/"+itoa(all[0])).must(t, 200).elems(t)[0].obj
	for _, f := range []string{"amount", "alias", "counterparty_alias", "description", "type", "balance_after_mutation", "monetary_account_id"} {
		if _, ok := p[f]; !ok {
			t.Fatalf("payment lacks %s: %v", f, p)
		}
	}
	if last := p["balance_after_mutation"].(map[string]any)["value"]; last != main.Balance.Value {
		t.Fatalf("newest balance_after_mutation %v, account balance %s", last, main.Balance.Value)
	}
}

func TestPaymentsAndSugarDaddy(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	alice, bob := seeded(t, env, 0), seeded(t, env, 1)
	from, to := accountOf(t, alice, "MonetaryAccountBank"), accountOf(t, bob, "MonetaryAccountBank")
	c := newClient(t, env)
	c.context(alice.APIKey)
	pay := userPath(c.userID, "/monetary-account/", itoa(from.ID), "/payment")
	body := map[string]any{"amount": map[string]string{"value": "12.50", "currency": "EUR"},
		"counterparty_alias": map[string]string{"type": "IBAN", "value": to.IBAN, "name": bob.DisplayName},
		"description":        "Dinner"}
	if r := c.post(pay, body, false); r.status != 466 {
		t.Fatalf("unsigned payment: %d", r.status)
	}
	id := num(c.post(pay, body, true).must(t, 200).elems(t)[0].obj["id"])
	after := env.Users(t)
	if got := accountOf(t, after[0], "MonetaryAccountBank").Balance.Value; got != minus(t, from.Balance.Value, 1250) {
		t.Fatalf("alice balance %s (was %s)", got, from.Balance.Value)
	}
	if got := accountOf(t, after[1], "MonetaryAccountBank").Balance.Value; got != minus(t, to.Balance.Value, -1250) {
		t.Fatalf("bob balance %s (was %s)", got, to.Balance.Value)
	}
	p := c.get(pay+"/"+itoa(id)).must(t, 200).elems(t)[0].obj
	if p["amount"].(map[string]any)["value"] != "-12.50" {
		t.Fatalf("payment amount %v", p["amount"])
	}
	// Outside IBAN without a name is refused; overdraft beyond the limit too.
	if r := c.post(pay, map[string]any{"amount": map[string]string{"value": "1.00", "currency": "EUR"},
		"counterparty_alias": map[string]string{"type": "IBAN", "value": "NL91ABNA0417164300"}, "description": "x"}, true); r.status != 400 {
		t.Fatalf("nameless IBAN: %d", r.status)
	}
	if r := c.post(pay, map[string]any{"amount": map[string]string{"value": "99999.00", "currency": "EUR"},
		"counterparty_alias": map[string]string{"type": "IBAN", "value": "NL91ABNA0417164300", "name": "X"}, "description": "x"}, true); r.status != 400 || !strings.Contains(r.errText(t), "insufficient") {
		t.Fatalf("overdraft: %d %s", r.status, r.raw)
	}

	// Sugar daddy on a fresh user's zero account.
	n := newClient(t, env)
	key := n.call("POST", "/v1/sandbox-user-person", nil, "", "").must(t, 200).elems(t)[0].obj["api_key"].(string)
	n.context(key)
	acc := num(n.get(userPath(n.userID, "/monetary-account-bank")).must(t, 200).elems(t)[0].obj["id"])
	inq := userPath(n.userID, "/monetary-account/", itoa(acc), "/request-inquiry")
	sd := func(v string) tresp {
		return n.post(inq, map[string]any{"amount_inquired": map[string]string{"value": v, "currency": "EUR"},
			"counterparty_alias": map[string]string{"type": "EMAIL", "value": "sugardaddy@bunq.com", "name": "Sugar Daddy"},
			"description":        "please", "allow_bunqme": false}, false)
	}
	if r := sd("500.01"); r.status != 400 {
		t.Fatalf("more than 500: %d", r.status)
	}
	if es := sd("500").must(t, 200).elems(t); es[0].typ != "Id" {
		t.Fatalf("request-inquiry answer %v", es)
	}
	if got := balanceOf(t, n, acc); got != "500.00" {
		t.Fatalf("balance after sugar daddy %s", got)
	}
	ps := n.get(userPath(n.userID, "/monetary-account/", itoa(acc), "/payment")).must(t, 200).elems(t)
	if len(ps) != 1 || ps[0].obj["amount"].(map[string]any)["value"] != "500.00" {
		t.Fatalf("incoming payment %v", ps)
	}
	// Other users' accounts are invisible.
	if r := n.get(userPath(n.userID, "/monetary-account/", itoa(from.ID))); r.status != 404 {
		t.Fatalf("foreign account: %d", r.status)
	}
	// New bank and savings accounts.
	id2 := num(n.post(userPath(n.userID, "/monetary-account-savings"), map[string]any{"currency": "EUR", "description": "Holiday",
		"savings_goal": map[string]string{"value": "100", "currency": "EUR"}}, false).must(t, 200).elems(t)[0].obj["id"])
	if es := n.get(userPath(n.userID, "/monetary-account-savings/", itoa(id2))).must(t, 200).elems(t); es[0].typ != "MonetaryAccountSavings" {
		t.Fatalf("savings: %v", es)
	}
}

// minus subtracts cents from a decimal string (test arithmetic only).
func minus(t testing.TB, v string, cents int64) string {
	t.Helper()
	neg := strings.HasPrefix(v, "-")
	whole, frac, _ := strings.Cut(strings.TrimPrefix(v, "-"), ".")
	var n int64
	for _, c := range whole + frac {
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	n -= cents
	sign := ""
	if n < 0 {
		sign, n = "-", -n
	}
	f := itoa(n % 100)
	if len(f) == 1 {
		f = "0" + f
	}
	return sign + itoa(n/100) + "." + f
}

func TestDraftPayments(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	bob, carol := seeded(t, env, 1), seeded(t, env, 2)
	c := newClient(t, env)
	c.context(carol.APIKey)
	acc := accountOf(t, carol, "MonetaryAccountBank")
	to := accountOf(t, bob, "MonetaryAccountBank")
	drafts := userPath(c.userID, "/monetary-account/", itoa(acc.ID), "/draft-payment")
	mk := func(value string) int64 {
		t.Helper()
		body := map[string]any{"number_of_required_accepts": 1, "entries": []map[string]any{{
			"amount":             map[string]string{"value": value, "currency": "EUR"},
			"counterparty_alias": map[string]string{"type": "IBAN", "value": to.IBAN, "name": bob.DisplayName},
			"description":        "Draft " + value}}}
		if r := c.post(drafts, body, false); r.status != 466 {
			t.Fatalf("unsigned draft: %d", r.status)
		}
		return num(c.post(drafts, body, true).must(t, 200).elems(t)[0].obj["id"])
	}
	status := func(id int64) map[string]any {
		t.Helper()
		es := c.get(drafts+"/"+itoa(id)).must(t, 200).elems(t)
		if es[0].typ != "DraftPayment" {
			t.Fatalf("element %s", es[0].typ)
		}
		return es[0].obj
	}
	// Accepted (control, as the user in the app): payment made, both balances move.
	d1 := mk("5.00")
	if s := status(d1)["status"]; s != "PENDING" {
		t.Fatalf("new draft %v", s)
	}
	env.AcceptDraftPayment(t, d1)
	o := status(d1)
	if o["status"] != "ACCEPTED" {
		t.Fatalf("accepted draft %v", o["status"])
	}
	pay := o["object"].(map[string]any)["Payment"].(map[string]any)
	if pay["amount"].(map[string]any)["value"] != "-5.00" {
		t.Fatalf("draft object %v", pay)
	}
	users := env.Users(t)
	if got := accountOf(t, users[2], "MonetaryAccountBank").Balance.Value; got != minus(t, acc.Balance.Value, 500) {
		t.Fatalf("carol balance %s", got)
	}
	if got := accountOf(t, users[1], "MonetaryAccountBank").Balance.Value; got != minus(t, to.Balance.Value, -500) {
		t.Fatalf("bob balance %s", got)
	}
	c.get(userPath(c.userID, "/monetary-account/", itoa(acc.ID), "/payment/", itoa(num(pay["id"])))).must(t, 200)
	// Rejected.
	d2 := mk("1.00")
	env.RejectDraftPayment(t, d2)
	if s := status(d2)["status"]; s != "REJECTED" {
		t.Fatalf("rejected draft %v", s)
	}
	// Cancelled by the creator via PUT; no longer acceptable.
	d3 := mk("1.00")
	c.call("PUT", drafts+"/"+itoa(d3), map[string]string{"status": "CANCELLED"}, c.sessToken, "").must(t, 200)
	if s := status(d3)["status"]; s != "CANCELLED" {
		t.Fatalf("cancelled draft %v", s)
	}
	if code := controlStatus(env, "/_sandbox/draft-payments/"+itoa(d3)+"/accept"); code != 409 {
		t.Fatalf("accepting a cancelled draft: %d", code)
	}
	// Overdraft refused on accept; the draft stays pending.
	d4 := mk("900.00")
	if code := controlStatus(env, "/_sandbox/draft-payments/"+itoa(d4)+"/accept"); code != 409 {
		t.Fatalf("overdraft accept: %d", code)
	}
	if s := status(d4)["status"]; s != "PENDING" {
		t.Fatalf("draft after refused accept %v", s)
	}
	// Accepting over the API needs a signature (it executes a payment).
	d5 := mk("2.00")
	put := []byte(`{"status":"ACCEPTED"}`)
	if r := c.call("PUT", drafts+"/"+itoa(d5), put, c.sessToken, ""); r.status != 466 {
		t.Fatalf("unsigned accept: %d", r.status)
	}
	c.call("PUT", drafts+"/"+itoa(d5), put, c.sessToken, "auto").must(t, 200)
	if s := status(d5)["status"]; s != "ACCEPTED" {
		t.Fatalf("API-accepted draft %v", s)
	}
	list := c.get(drafts).must(t, 200).elems(t)
	if len(list) != 5 {
		t.Fatalf("draft list has %d", len(list))
	}
}

// controlStatus POSTs a control call and returns its HTTP status.
func controlStatus(env *banktest.Env, path string) int {
	resp, err := httpPost(env.APIURL+path, "")
	if err != nil {
		return -1
	}
	return resp
}

func TestConfirmationOfFunds(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	u := seeded(t, env, 2)
	acc := accountOf(t, u, "MonetaryAccountBank")
	psp := registerPSP(t, env, "Funds Checker CBPII")
	cof := func(value string) bool {
		t.Helper()
		es := psp.post(userPath(psp.userID, "/confirmation-of-funds"), map[string]any{
			"pointer_iban": map[string]string{"type": "IBAN", "value": acc.IBAN, "name": u.DisplayName},
			"amount":       map[string]string{"value": value, "currency": "EUR"}}, false).must(t, 200).elems(t)
		if es[0].typ != "ConfirmationOfFunds" {
			t.Fatalf("element %s", es[0].typ)
		}
		return es[0].obj["has_sufficient_funds"].(bool)
	}
	if !cof(acc.Balance.Value) {
		t.Fatalf("exact balance %s not sufficient", acc.Balance.Value)
	}
	if cof(minus(t, acc.Balance.Value, -1)) {
		t.Fatalf("balance + 0.01 sufficient")
	}
	if r := psp.post(userPath(psp.userID, "/confirmation-of-funds"), map[string]any{
		"pointer_iban": map[string]string{"type": "IBAN", "value": "NL91ABNA0417164300"},
		"amount":       map[string]string{"value": "1", "currency": "EUR"}}, false); r.status != 404 {
		t.Fatalf("unknown IBAN: %d", r.status)
	}
}
