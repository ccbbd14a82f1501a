package tpp

import (
	"strings"
	"testing"
	"time"
)

func TestConsentStatusMachine(t *testing.T) {
	t.Parallel()
	all := []ConsentStatus{ConsentPending, ConsentActive, ConsentRejected, ConsentExpired, ConsentRevoked, ConsentReauthRequired}
	legal := map[string]bool{
		"pending>active": true, "pending>rejected": true, "pending>expired": true, "pending>revoked": true,
		"active>revoked": true, "active>reauth_required": true,
		"reauth_required>active": true, "reauth_required>revoked": true,
	}
	for _, from := range all {
		for _, to := range all {
			want := legal[string(from)+">"+string(to)]
			if got := from.CanTransitionTo(to); got != want {
				t.Errorf("%s → %s = %v, want %v", from, to, got, want)
			}
		}
	}
	for _, s := range []ConsentStatus{ConsentRejected, ConsentExpired, ConsentRevoked} {
		if !s.Terminal() {
			t.Errorf("%s is not terminal", s)
		}
	}
	if ConsentActive.Terminal() || ConsentStatus("bogus").Valid() || ConsentStatus("bogus").CanTransitionTo(ConsentActive) {
		t.Error("unknown or live status misclassified")
	}
}

func TestParseScopes(t *testing.T) {
	t.Parallel()
	got, err := ParseScopes([]string{"payments", "accounts", "payments", "funds"})
	if err != nil || len(got) != 3 || got[0] != ScopeAccounts || got[1] != ScopeFunds || got[2] != ScopePayments {
		t.Fatalf("ParseScopes = %v, %v", got, err)
	}
	for _, in := range [][]string{nil, {}, {"accounts", "Accounts"}, {""}} {
		if _, err := ParseScopes(in); ErrorCode(err) != EInvalidScope {
			t.Errorf("ParseScopes(%q) error = %v", in, err)
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	c := Cursor{At: time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.FixedZone("x", 3600)), ID: "con_abc"}
	s := c.Encode()
	got, err := DecodeCursor(s)
	if err != nil || !got.At.Equal(c.At) || got.ID != c.ID {
		t.Fatalf("round trip = %+v, %v", got, err)
	}
	for _, bad := range []string{"", "!!", "bm90LWEtY3Vyc29y", Cursor{At: c.At}.Encode()} {
		if _, err := DecodeCursor(bad); ErrorCode(err) != EInvalidCursor {
			t.Errorf("DecodeCursor(%q) = %v", bad, err)
		}
	}
}

func TestPageRequestNormalize(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   int
		want int
		ok   bool
	}{{0, DefaultPageLimit, true}, {1, 1, true}, {MaxPageLimit + 1, MaxPageLimit, true}, {-1, 0, false}}
	for _, tc := range cases {
		got, cur, err := PageRequest{Limit: tc.in}.Normalize()
		if (err == nil) != tc.ok || (tc.ok && (got != tc.want || !cur.IsZero())) {
			t.Errorf("Normalize(%d) = %d, %v, %v", tc.in, got, cur, err)
		}
	}
	if _, _, err := (PageRequest{Cursor: "x"}).Normalize(); ErrorCode(err) != EInvalidCursor {
		t.Errorf("bad cursor: %v", err)
	}
}

func TestNewID(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := NewID(PrefixConsent)
		if !strings.HasPrefix(id, "con_") || len(id) != 4+26 || strings.ContainsAny(id[4:], "_=-+/") || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
}
