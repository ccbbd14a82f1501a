package aisp_test

import (
	"strings"
	"testing"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/aisp"
	"github.com/bunqtpp/tpp/aisp/aisptest"
	"github.com/bunqtpp/tpp/internal/banktest"
)

// attended marks a request as made while the user is present.
var attended = []string{"PSU-IP-Address", "203.0.113.7"}

func setup(t *testing.T, cfg aisp.Config) (*aisptest.Stack, *aisp.Service) {
	t.Helper()
	s := aisptest.New(t)
	svc := s.Service(cfg)
	h, err := aisp.NewHandler(svc)
	if err != nil {
		t.Fatal(err)
	}
	h.Register(s.V1)
	return s, svc
}

func wantTypes(bunq string) string {
	return map[string]string{"MonetaryAccountBank": "bank", "MonetaryAccountSavings": "savings", "MonetaryAccountJoint": "joint"}[bunq]
}

func amount(t *testing.T, v string) string {
	t.Helper()
	n, err := tpp.ParseSignedMinor(v)
	if err != nil {
		t.Fatal(err)
	}
	return tpp.FormatMinor(n)
}

func TestAccountsMatchTheBank(t *testing.T) {
	t.Parallel()
	s, _ := setup(t, aisp.Config{})
	c := s.ActiveConsent(tpp.ScopeAccounts)

	res := s.Do("GET", "/v1/consents/"+c.ID+"/accounts", nil, attended...)
	if res.Status != 200 {
		t.Fatalf("list: %d %s", res.Status, res.Body)
	}
	data := res.JSON(t)["data"].([]any)
	byID := map[string]map[string]any{}
	for _, d := range data {
		m := d.(map[string]any)
		byID[m["id"].(string)] = m
	}
	if len(s.Person.Accounts) < 3 {
		t.Fatalf("the emulator's person should have bank, savings and joint accounts: %+v", s.Person.Accounts)
	}
	types := map[string]bool{}
	for _, a := range s.Person.Accounts {
		id := tpp.AccountID(a.ID)
		got, ok := byID[id]
		if !ok {
			t.Errorf("account %d (%s) missing from %s", a.ID, a.Type, res.Body)
			continue
		}
		types[got["type"].(string)] = true
		bal := got["balance"].(map[string]any)
		if got["iban"] != a.IBAN || got["type"] != wantTypes(a.Type) || got["label"] != a.Description ||
			got["status"] != strings.ToLower(a.Status) || bal["amount"] != amount(t, a.Balance.Value) ||
			bal["currency"] != a.Balance.Currency || got["currency"] != a.Balance.Currency || got["holder_name"] == "" {
			t.Errorf("account %d: got %v, bank has %+v", a.ID, got, a)
		}

		one := s.Do("GET", "/v1/consents/"+c.ID+"/accounts/"+id, nil, attended...)
		if one.Status != 200 {
			t.Fatalf("get %s: %d %s", id, one.Status, one.Body)
		}
		m := one.JSON(t)
		if m["id"] != id || m["iban"] != a.IBAN || m["balance"].(map[string]any)["amount"] != bal["amount"] {
			t.Errorf("get %s = %v, list had %v", id, m, got)
		}
	}
	if len(byID) != len(s.Person.Accounts) {
		t.Errorf("listed %d accounts, the bank has %d", len(byID), len(s.Person.Accounts))
	}
	for _, ty := range []string{"bank", "savings", "joint"} {
		if !types[ty] {
			t.Errorf("no %s account listed", ty)
		}
	}
}

// Another user's account exists at the bank, but not under this consent:
// it must be account_not_found, never that user's data.
func TestAccountOfAnotherUserIsNotFound(t *testing.T) {
	t.Parallel()
	s, _ := setup(t, aisp.Config{})
	c := s.ActiveConsent(tpp.ScopeAccounts)
	var other banktest.Account
	mine := map[int64]bool{}
	for _, a := range s.Person.Accounts {
		mine[a.ID] = true
	}
	for _, u := range s.Env.Users(t) {
		for _, a := range u.Accounts {
			if !mine[a.ID] {
				other = a
			}
		}
	}
	if other.ID == 0 {
		t.Fatal("the emulator has no account of another user")
	}
	id := tpp.AccountID(other.ID)
	for _, p := range []string{"/accounts/" + id, "/accounts/" + id + "/transactions"} {
		res := s.Do("GET", "/v1/consents/"+c.ID+p, nil, attended...)
		if res.Status != 404 || res.Code(t) != tpp.EAccountNotFound || strings.Contains(string(res.Body), other.IBAN) {
			t.Errorf("%s: %d %s", p, res.Status, res.Body)
		}
	}
}
