package aisp

import (
	"bytes"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
)

// FuzzTxCursor: every cursor the service makes decodes to the position it
// holds; any other string, including a made cursor with one byte changed,
// is refused with invalid_cursor.
func FuzzTxCursor(f *testing.F) {
	f.Add("con_abc", int64(12), int64(99), "2026-11-01T00:00:00Z", "", 3, byte(1))
	f.Add("", int64(0), int64(0), "", "2026-11-30T23:59:59.5Z", 0, byte(0x20))
	f.Add("con_é|.", int64(-1), int64(1<<62), "x", "y", 40, byte(0xff))
	key := bytes.Repeat([]byte{7}, 32)
	codec, err := newCursorCodec(key)
	if err != nil {
		f.Fatal(err)
	}
	other, _ := newCursorCodec(bytes.Repeat([]byte{8}, 32))
	f.Fuzz(func(t *testing.T, consent string, account, older int64, from, to string, flipAt int, flip byte) {
		d := cursorData{V: 1, Consent: consent, Account: account, Older: older, From: from, To: to}
		s, err := codec.encode(d)
		if err != nil {
			return // not valid UTF-8 for JSON: the service only encodes its own ids and times
		}
		got, err := codec.decode(s)
		if err != nil || got != d {
			if !validJSONString(consent, from, to) {
				return // json.Marshal replaced invalid UTF-8; the service never makes such a cursor
			}
			t.Fatalf("cursor %+v → %q → %+v, %v", d, s, got, err)
		}
		if _, err := other.decode(s); tpp.ErrorCode(err) != tpp.EInvalidCursor {
			t.Fatalf("a cursor made with another key was accepted: %v", err)
		}
		if flip != 0 && len(s) > 0 {
			b := []byte(s)
			i := (flipAt%len(b) + len(b)) % len(b)
			b[i] ^= flip
			if tampered := string(b); tampered != s {
				if got, err := codec.decode(tampered); err == nil && got != d {
					t.Fatalf("tampered cursor %q decoded to another position %+v", tampered, got)
				}
			}
		}
	})
}

// FuzzParseTxQuery: the transactions list's query either is refused with
// a typed 400 code or gives a bounded limit and an ordered range.
func FuzzParseTxQuery(f *testing.F) {
	f.Add("2026-11-01", "2026-11-30", "50", "")
	f.Add("2026-11-01T08:00:00+02:00", "", "200", "abc.def")
	f.Add("2026-12-01", "2026-11-01", "0", "")
	f.Add("yesterday", "", "ten", "")
	f.Add("", "", "-1", string(make([]byte, 600)))
	f.Fuzz(func(t *testing.T, from, to, limit, cursor string) {
		q, err := ParseTxQuery(from, to, limit, cursor)
		if err != nil {
			if c := tpp.ErrorCode(err); c != tpp.EInvalid && c != tpp.EInvalidCursor {
				t.Fatalf("code %q: %v", c, err)
			}
			return
		}
		if q.Limit < 1 || q.Limit > MaxTxLimit {
			t.Fatalf("limit %d out of bounds", q.Limit)
		}
		if !q.From.IsZero() && !q.To.IsZero() && q.From.After(q.To) {
			t.Fatalf("from %s after to %s accepted", q.From, q.To)
		}
		for _, b := range []time.Time{q.From, q.To} {
			if !b.IsZero() && b.Location() != time.UTC {
				t.Fatalf("bound %s not in UTC", b)
			}
		}
	})
}

func validJSONString(ss ...string) bool {
	for _, s := range ss {
		for _, r := range s {
			if r == 0xfffd {
				return false
			}
		}
	}
	return true
}
