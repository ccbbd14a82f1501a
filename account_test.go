package tpp_test

import (
	"testing"

	"github.com/bunqtpp/tpp"
)

func TestAccountIDRoundTrip(t *testing.T) {
	t.Parallel()
	for _, n := range []int64{1, 2001, 1 << 33, 9_223_372_036_854_775_807} {
		id := tpp.AccountID(n)
		back, err := tpp.ParseAccountID(id)
		if err != nil || back != n {
			t.Errorf("ParseAccountID(AccountID(%d)) = %d, %v", n, back, err)
		}
	}
	for _, bad := range []string{"", "acc_", "acc_AAAA", "xyz_aaaaaaaaaaaaa", tpp.AccountID(5) + "a", "acc_aaaaaaaaaaaaa", tpp.AccountID(-1)} {
		if _, err := tpp.ParseAccountID(bad); tpp.ErrorCode(err) != tpp.EAccountNotFound {
			t.Errorf("ParseAccountID(%q) = %v, want account_not_found", bad, err)
		}
	}
}
