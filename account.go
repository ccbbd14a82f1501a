package tpp

import (
	"encoding/binary"
	"strings"
)

// AccountPrefix starts every account id.
const AccountPrefix = "acc_"

// AccountID is the API's id of a bunq monetary account: stable, opaque to
// the fintech. It is not a secret: every use resolves it through the
// consent's own bank context, where another user's account does not exist.
func AccountID(bunqID int64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(bunqID))
	return AccountPrefix + idEncoding.EncodeToString(b[:])
}

// ParseAccountID returns the bunq monetary-account id of an API account id,
// or account_not_found for anything AccountID cannot have made.
func ParseAccountID(id string) (int64, error) {
	notFound := Errorf(EAccountNotFound, "no account %q under this consent", truncateForMessage(id, 64))
	rest, ok := strings.CutPrefix(id, AccountPrefix)
	if !ok {
		return 0, notFound
	}
	b, err := idEncoding.DecodeString(rest)
	if err != nil || len(b) != 8 {
		return 0, notFound
	}
	n := int64(binary.BigEndian.Uint64(b))
	// Re-encoding must give the same text: one account, one spelling.
	if n <= 0 || AccountID(n) != id {
		return 0, notFound
	}
	return n, nil
}

// TransactionPrefix starts every transaction id.
const TransactionPrefix = "txn_"

// TransactionID is the API's id of a booked bunq payment, spelled like
// account ids: a type prefix and opaque lower-case base32.
func TransactionID(bunqID int64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(bunqID))
	return TransactionPrefix + idEncoding.EncodeToString(b[:])
}

func truncateForMessage(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
