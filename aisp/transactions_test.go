package aisp_test

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/aisp"
	"github.com/bunqtpp/tpp/aisp/aisptest"
	"github.com/bunqtpp/tpp/internal/banktest"
	"github.com/bunqtpp/tpp/psd2"
)

const paymentListKey = "GET /v1/user/{id}/monetary-account/{id}/payment"

// mainAccount is the person's account with the long (300 payment) history.
func mainAccount(t *testing.T, s *aisptest.Stack) banktest.Account {
	t.Helper()
	for _, a := range s.Person.Accounts {
		if a.Type == "MonetaryAccountBank" {
			return a
		}
	}
	t.Fatal("no bank account")
	return banktest.Account{}
}

// truth reads the account's whole history straight from the bank.
func truth(t *testing.T, s *aisptest.Stack, c *tpp.Consent, account int64) []psd2.Payment {
	t.Helper()
	ctx := context.Background()
	bc, err := s.Provider.Get(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	var out []psd2.Payment
	for p, err := range s.PSD2.AllPayments(ctx, bc, account, 200) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func booked(p psd2.Payment) time.Time { return p.Created.Time.UTC().Truncate(time.Second) }

// pages follows next_cursor to the end and returns every item and the
// number of pages.
func pages(t *testing.T, s *aisptest.Stack, path string, q url.Values) ([]map[string]any, int) {
	t.Helper()
	var out []map[string]any
	n := 0
	for {
		n++
		if n > 100 {
			t.Fatal("paging does not end")
		}
		res := s.Do("GET", path+"?"+q.Encode(), nil, attended...)
		if res.Status != 200 {
			t.Fatalf("page %d: %d %s", n, res.Status, res.Body)
		}
		m := res.JSON(t)
		for _, d := range m["data"].([]any) {
			out = append(out, d.(map[string]any))
		}
		next, _ := m["next_cursor"].(string)
		if next == "" {
			return out, n
		}
		q.Set("cursor", next)
	}
}

func ids(items []map[string]any) []string {
	out := make([]string, len(items))
	for i, m := range items {
		out[i] = m["id"].(string)
	}
	return out
}

func bankIDs(ps []psd2.Payment) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = tpp.TransactionID(p.ID)
	}
	return out
}

func sameIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s: got %d ids, want %d\ngot  %v\nwant %v", what, len(got), len(want), got, want)
	}
}

func TestTransactionsPageThroughTheWholeHistory(t *testing.T) {
	t.Parallel()
	s, _ := setup(t, aisp.Config{})
	c := s.ActiveConsent(tpp.ScopeAccounts)
	acc := mainAccount(t, s)
	all := truth(t, s, c, acc.ID)
	if len(all) < 300 {
		t.Fatalf("the bank has %d payments on the main account, want at least 300", len(all))
	}
	path := "/v1/consents/" + c.ID + "/accounts/" + tpp.AccountID(acc.ID) + "/transactions"

	items, n := pages(t, s, path, url.Values{"limit": {"37"}})
	sameIDs(t, "all pages", ids(items), bankIDs(all))
	if want := (len(all) + 36) / 37; n != want {
		t.Errorf("%d pages, want %d", n, want)
	}
	// Every field of every item matches the bank.
	for i, m := range items {
		if i >= len(all) {
			break
		}
		p := all[i]
		amt, _ := m["amount"].(map[string]any)
		if m["booked_at"] != booked(p).Format(time.RFC3339) || amt["amount"] != amount(t, p.Amount.Value) ||
			amt["currency"] != p.Amount.Currency || m["currency"] != nil || m["description"] != p.Description || m["type"] != p.Type {
			t.Fatalf("item %d = %v, bank has %+v", i, m, p)
		}
		cp := m["counterparty"].(map[string]any)
		if cp["name"] != p.CounterpartyAlias.DisplayName || (p.CounterpartyAlias.IBAN != "" && cp["iban"] != p.CounterpartyAlias.IBAN) {
			t.Fatalf("item %d counterparty %v, bank has %+v", i, cp, p.CounterpartyAlias)
		}
		if p.BalanceAfterMutation != nil {
			ba := m["balance_after"].(map[string]any)
			if ba["amount"] != amount(t, p.BalanceAfterMutation.Value) {
				t.Fatalf("item %d balance_after %v, bank has %v", i, ba, p.BalanceAfterMutation)
			}
		}
	}

	// Default and maximum page sizes.
	res := s.Do("GET", path, nil, attended...)
	if got := len(res.JSON(t)["data"].([]any)); got != 50 {
		t.Errorf("default page has %d items, want 50", got)
	}
	items, n = pages(t, s, path, url.Values{"limit": {"200"}})
	if n != 2 || len(items) != len(all) {
		t.Errorf("limit 200: %d pages, %d items", n, len(items))
	}
}

func TestTransactionsDateFilter(t *testing.T) {
	t.Parallel()
	s, _ := setup(t, aisp.Config{})
	c := s.ActiveConsent(tpp.ScopeAccounts)
	acc := mainAccount(t, s)
	all := truth(t, s, c, acc.ID)
	path := "/v1/consents/" + c.ID + "/accounts/" + tpp.AccountID(acc.ID) + "/transactions"

	newest := booked(all[0])
	cases := []struct {
		name     string
		from, to string
	}{
		{"middle window, date-times", newest.Add(-200 * 24 * time.Hour).Format(time.RFC3339), newest.Add(-120 * 24 * time.Hour).Format(time.RFC3339)},
		{"dates", newest.Add(-90 * 24 * time.Hour).Format("2006-01-02"), newest.Add(-60 * 24 * time.Hour).Format("2006-01-02")},
		{"only from", newest.Add(-30 * 24 * time.Hour).Format(time.RFC3339), ""},
		{"only to", "", newest.Add(-250 * 24 * time.Hour).Format(time.RFC3339)},
		{"offset time zone", newest.Add(-45 * 24 * time.Hour).In(time.FixedZone("", 2*3600)).Format(time.RFC3339), newest.Add(-40 * 24 * time.Hour).In(time.FixedZone("", -5*3600)).Format(time.RFC3339)},
		{"exact bounds", booked(all[20]).Format(time.RFC3339), booked(all[10]).Format(time.RFC3339)},
		{"nothing in range", "2001-01-01", "2001-02-01"},
	}
	for _, tc := range cases {
		var from, to time.Time
		var err error
		q := url.Values{"limit": {"7"}}
		if tc.from != "" {
			q.Set("from", tc.from)
			if from, err = parseBound(tc.from); err != nil {
				t.Fatal(err)
			}
		}
		if tc.to != "" {
			q.Set("to", tc.to)
			if to, err = parseBound(tc.to); err != nil {
				t.Fatal(err)
			}
		}
		var want []psd2.Payment
		for _, p := range all {
			if (tc.from == "" || !booked(p).Before(from)) && (tc.to == "" || !booked(p).After(to)) {
				want = append(want, p)
			}
		}
		if tc.name != "nothing in range" && len(want) == 0 {
			t.Fatalf("%s: the window holds no payments; fix the test", tc.name)
		}
		items, _ := pages(t, s, path, q)
		sameIDs(t, tc.name, ids(items), bankIDs(want))
	}
}

func parseBound(s string) (time.Time, error) {
	if len(s) == 10 {
		return time.Parse("2006-01-02", s)
	}
	return time.Parse(time.RFC3339, s)
}

// A narrow recent range must not read the whole history: bunq has no date
// filter, so the service stops at the first payment older than "from".
func TestTransactionsStopEarly(t *testing.T) {
	t.Parallel()
	s, _ := setup(t, aisp.Config{})
	c := s.ActiveConsent(tpp.ScopeAccounts)
	acc := mainAccount(t, s)
	all := truth(t, s, c, acc.ID)
	path := "/v1/consents/" + c.ID + "/accounts/" + tpp.AccountID(acc.ID) + "/transactions"

	from := booked(all[5])
	s.Env.ResetStats(t)
	items, _ := pages(t, s, path, url.Values{"from": {from.Format(time.RFC3339)}})
	sameIDs(t, "recent", ids(items), bankIDs(all[:6]))
	if n := s.Env.Stats(t)[paymentListKey]; n != 1 {
		t.Errorf("%d bank payment-list calls for the 6 newest payments, want 1", n)
	}

	// An old narrow window: skipping newer payments costs big pages, not
	// the whole history.
	to := booked(all[250])
	s.Env.ResetStats(t)
	items, _ = pages(t, s, path, url.Values{"from": {booked(all[255]).Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}, "limit": {"3"}})
	sameIDs(t, "old window", ids(items), bankIDs(all[250:256]))
	if n := s.Env.Stats(t)[paymentListKey]; n > 4 {
		t.Errorf("%d bank payment-list calls for an old window of 6 payments in 3s", n)
	}
}

// A payment booked while the client pages must not shift the pages after
// the cursor: no item twice, none skipped.
func TestTransactionsCursorStableWhenPaymentsArrive(t *testing.T) {
	t.Parallel()
	s, _ := setup(t, aisp.Config{})
	c := s.ActiveConsent(tpp.ScopeAccounts)
	acc := mainAccount(t, s)
	before := truth(t, s, c, acc.ID)
	path := "/v1/consents/" + c.ID + "/accounts/" + tpp.AccountID(acc.ID) + "/transactions"

	res := s.Do("GET", path+"?limit=10", nil, attended...)
	m := res.JSON(t)
	first := m["data"].([]any)
	cursor := m["next_cursor"].(string)

	ctx := context.Background()
	bc, err := s.Provider.Get(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := s.PSD2.RequestSandboxMoney(ctx, bc, acc.ID, "10.00"); err != nil {
			t.Fatal(err)
		}
	}
	if after := truth(t, s, c, acc.ID); len(after) != len(before)+3 {
		t.Fatalf("the bank has %d payments after 3 new ones, had %d", len(after), len(before))
	}

	res = s.Do("GET", path+"?limit=10&cursor="+url.QueryEscape(cursor), nil, attended...)
	second := res.JSON(t)["data"].([]any)
	var got []string
	for _, d := range append(first, second...) {
		got = append(got, d.(map[string]any)["id"].(string))
	}
	sameIDs(t, "two pages around new payments", got, bankIDs(before[:20]))

	// A fresh first page shows the new payments.
	res = s.Do("GET", path+"?limit=10", nil, append(attended, "Cache-Control", "no-cache")...)
	if d := res.JSON(t)["data"].([]any); d[0].(map[string]any)["amount"].(map[string]any)["amount"] != "10.00" {
		t.Errorf("fresh first page starts with %v, want the new payment", d[0])
	}
}

func TestTransactionsCursorIsBound(t *testing.T) {
	t.Parallel()
	s, _ := setup(t, aisp.Config{})
	c := s.ActiveConsent(tpp.ScopeAccounts)
	c2 := s.ActiveConsent(tpp.ScopeAccounts)
	acc := mainAccount(t, s)
	var savings banktest.Account
	for _, a := range s.Person.Accounts {
		if a.Type == "MonetaryAccountSavings" {
			savings = a
		}
	}
	base := "/v1/consents/" + c.ID + "/accounts/"
	path := base + tpp.AccountID(acc.ID) + "/transactions"
	from := "2000-01-01"
	res := s.Do("GET", path+"?limit=5&from="+from, nil, attended...)
	cursor := res.JSON(t)["next_cursor"].(string)

	// The same cursor, repeated filter or none, works.
	for _, q := range []string{"&from=" + from, ""} {
		if res := s.Do("GET", path+"?limit=5&cursor="+url.QueryEscape(cursor)+q, nil, attended...); res.Status != 200 {
			t.Errorf("cursor with %q: %d %s", q, res.Status, res.Body)
		}
	}
	flip := []byte(cursor)
	flip[3] ^= 1
	bad := map[string]string{
		"tampered":      path + "?cursor=" + url.QueryEscape(string(flip)),
		"garbage":       path + "?cursor=abc",
		"other filter":  path + "?from=2000-01-02&cursor=" + url.QueryEscape(cursor),
		"other account": base + tpp.AccountID(savings.ID) + "/transactions?cursor=" + url.QueryEscape(cursor),
		"other consent": "/v1/consents/" + c2.ID + "/accounts/" + tpp.AccountID(acc.ID) + "/transactions?cursor=" + url.QueryEscape(cursor),
		"forged page 1": path + "?cursor=" + url.QueryEscape(strings.SplitN(cursor, ".", 2)[0]+".AAAAAAAAAAAAAAAAAAAAAA"),
	}
	for name, p := range bad {
		res := s.Do("GET", p, nil, attended...)
		if res.Status != 400 || res.Code(t) != tpp.EInvalidCursor {
			t.Errorf("%s: %d %s", name, res.Status, res.Body)
		}
	}
}

// TestDateFilterToleratesDisorderAtTheEdge: bunq's ids and booking times
// need not agree; a payment with a higher id booked just before "from"
// must not hide an older-id payment booked within the range.
func TestDateFilterToleratesDisorderAtTheEdge(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Now().UTC().Truncate(time.Second)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	set := func(at time.Time) { mu.Lock(); now = at; mu.Unlock() }
	env := banktest.Start(t, banktest.WithClock(clock))
	s := aisptest.NewOn(t, env)
	h, err := aisp.NewHandler(s.Service(aisp.Config{}))
	if err != nil {
		t.Fatal(err)
	}
	h.Register(s.V1)
	c := s.ActiveConsent(tpp.ScopeAccounts)
	acc := mainAccount(t, s)
	ctx := context.Background()
	bc, err := s.PSD2.NewAPIKeyContext(ctx, s.Person.APIKey, psd2.ContextOptions{})
	if err != nil {
		t.Fatal(err)
	}
	to := env.Users(t)[1].Accounts[0].IBAN
	from := now.Add(time.Minute)
	pay := func(at time.Time, desc string) {
		t.Helper()
		set(at)
		if _, err := s.PSD2.CreatePayment(ctx, bc, acc.ID, psd2.PaymentRequest{
			Amount: psd2.Amount{Value: "1.00", Currency: "EUR"}, Description: desc,
			CounterpartyAlias: psd2.Pointer{Type: "IBAN", Value: to, Name: "Someone"},
		}); err != nil {
			t.Fatal(err)
		}
	}
	pay(from.Add(10*time.Second), "in range, older id")
	pay(from.Add(-30*time.Second), "just before from, newer id")
	pay(from.Add(20*time.Second), "in range, newest")

	path := "/v1/consents/" + c.ID + "/accounts/" + tpp.AccountID(acc.ID) + "/transactions"
	got, _ := pages(t, s, path, url.Values{"from": {from.Format(time.RFC3339)}, "limit": {"5"}})
	var descs []string
	for _, m := range got {
		descs = append(descs, m["description"].(string))
	}
	if strings.Join(descs, "|") != "in range, newest|in range, older id" {
		t.Fatalf("transactions from %s: %q", from.Format(time.RFC3339), descs)
	}
}
