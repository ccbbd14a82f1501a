package pisp

import (
	"encoding/base32"
	"encoding/binary"
	"strings"

	"github.com/bunqtpp/tpp"
)

// Account ids are the ones the accounts API (package aisp) hands out:
// "acc_" and the base32 of the bunq monetary-account id. The spelling is
// repeated here rather than imported so that the roles stay independent;
// a test holds the two to the same result.
const accountPrefix = "acc_"

var accountEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// AccountID is the API id of a bunq monetary account.
func AccountID(bunqID int64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(bunqID))
	return accountPrefix + accountEncoding.EncodeToString(b[:])
}

// ParseAccountID returns the bunq id of an API account id, or
// account_not_found for anything AccountID cannot have made.
func ParseAccountID(id string) (int64, error) {
	shown := id
	if len(shown) > 64 {
		shown = shown[:64] + "…"
	}
	notFound := tpp.Errorf(tpp.EAccountNotFound, "no account %q under this consent", shown)
	rest, ok := strings.CutPrefix(id, accountPrefix)
	if !ok {
		return 0, notFound
	}
	b, err := accountEncoding.DecodeString(rest)
	if err != nil || len(b) != 8 {
		return 0, notFound
	}
	n := int64(binary.BigEndian.Uint64(b))
	if n <= 0 || AccountID(n) != id {
		return 0, notFound
	}
	return n, nil
}
