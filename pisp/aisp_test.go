package pisp_test

import (
	"testing"

	"github.com/bunqtpp/tpp/aisp"
	"github.com/bunqtpp/tpp/pisp"
)

// A payment's account_id is an id from the accounts list: both roles must
// spell account ids the same way.
func TestAccountIDsMatchAISP(t *testing.T) {
	t.Parallel()
	for _, n := range []int64{1, 2001, 1 << 33, 9_223_372_036_854_775_807} {
		if p, a := pisp.AccountID(n), aisp.AccountID(n); p != a {
			t.Errorf("%d: pisp %s, aisp %s", n, p, a)
		}
		back, err := pisp.ParseAccountID(aisp.AccountID(n))
		if err != nil || back != n {
			t.Errorf("%d: pisp reads aisp's id as %d %v", n, back, err)
		}
	}
}
