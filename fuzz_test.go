package tpp_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/textproto"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/bunqtpp/tpp"
)

// Fuzz targets of the root package. Plain 'go test' runs their seeds;
// scripts/fuzz runs each for a while (see the README).

// FuzzParseMoney: an accepted amount has one canonical spelling that
// parses back to the same value; a refused one is a typed error.
func FuzzParseMoney(f *testing.F) {
	for _, s := range []string{"12.50", "12.5", "12", "0.01", "1000000.00", "1000000.01", "0", "00.10", "-1", "1e3",
		" 1", "1.", ".5", "1.005", "１２", "12,50", "999999999999.99", "9223372036854775807"} {
		f.Add(s, "EUR")
	}
	f.Add("1.00", "eur")
	f.Add("1.00", "XXX")
	f.Fuzz(func(t *testing.T, amount, currency string) {
		v, err := tpp.ParseMoney(tpp.Money{Amount: amount, Currency: currency})
		if err != nil {
			if c := tpp.ErrorCode(err); c != tpp.EInvalidAmount && c != tpp.EInvalidCurrency {
				t.Fatalf("ParseMoney(%q, %q): code %q: %v", amount, currency, c, err)
			}
			if tpp.ErrorMessage(err) == "" {
				t.Fatalf("ParseMoney(%q, %q): error without a message", amount, currency)
			}
			return
		}
		if !tpp.ValidCurrency(currency) || v <= 0 || v > tpp.MaxPaymentMinor {
			t.Fatalf("ParseMoney(%q, %q) = %d: out of bounds or bad currency accepted", amount, currency, v)
		}
		canon := tpp.FormatMinor(v)
		// The canonical form is the input with its decimals padded to two.
		if !strings.HasPrefix(canon, amount) {
			t.Fatalf("ParseMoney(%q) = %d, canonical %q: another spelling of the value was accepted", amount, v, canon)
		}
		if back, err := tpp.ParseMinor(canon); err != nil || back != v {
			t.Fatalf("ParseMinor(%q) = %d, %v; want %d", canon, back, err, v)
		}
	})
}

// FuzzParseSignedMinor: bank amounts parse to a value whose formatting
// parses back to it.
func FuzzParseSignedMinor(f *testing.F) {
	for _, s := range []string{"-12.50", "0.10", "0", "-0", "12", "-999999999999999.99", "1.234", "--1", "+1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := tpp.ParseSignedMinor(s)
		if err != nil {
			if tpp.ErrorCode(err) != tpp.EInvalidAmount {
				t.Fatalf("ParseSignedMinor(%q): code %q", s, tpp.ErrorCode(err))
			}
			return
		}
		back, err := tpp.ParseSignedMinor(tpp.FormatMinor(v))
		if err != nil || back != v {
			t.Fatalf("ParseSignedMinor(%q) = %d; FormatMinor gives %q which parses to %d, %v", s, v, tpp.FormatMinor(v), back, err)
		}
	})
}

// FuzzDecodeCursor: any string either is refused with invalid_cursor or
// decodes to a cursor that encodes and decodes back to itself.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(tpp.Cursor{At: time.Date(2026, 11, 22, 9, 30, 0, 123456789, time.UTC), ID: "con_abc"}.Encode())
	f.Add(tpp.Cursor{At: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), ID: "pay_x|y"}.Encode())
	for _, s := range []string{"", "bm90LWEtY3Vyc29y", "MjAyNi0xMS0yMlQwOTozMDowMCswMTowMHxjb25fMQ", "====", "fA", "%%%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := tpp.DecodeCursor(s)
		if err != nil {
			if tpp.ErrorCode(err) != tpp.EInvalidCursor {
				t.Fatalf("DecodeCursor(%q): code %q", s, tpp.ErrorCode(err))
			}
			return
		}
		if c.ID == "" || c.At.Location() != time.UTC {
			t.Fatalf("DecodeCursor(%q) = %+v: empty id or not UTC", s, c)
		}
		again, err := tpp.DecodeCursor(c.Encode())
		if err != nil || !again.At.Equal(c.At) || again.ID != c.ID {
			t.Fatalf("cursor %+v does not round-trip: %+v, %v", c, again, err)
		}
		if again.Encode() != c.Encode() {
			t.Fatalf("cursor %+v has two encodings", c)
		}
	})
}

// FuzzCursorRoundTrip: every cursor the API can make decodes to itself.
func FuzzCursorRoundTrip(f *testing.F) {
	f.Add(int64(1_795_000_000_123_456_789), "con_abc")
	f.Add(int64(0), "x|y")
	f.Add(int64(-1), "é")
	f.Fuzz(func(t *testing.T, nanos int64, id string) {
		if id == "" {
			return // the API never makes a cursor without an id
		}
		c := tpp.Cursor{At: time.Unix(0, nanos).UTC(), ID: id}
		got, err := tpp.DecodeCursor(c.Encode())
		if err != nil || !got.At.Equal(c.At) || got.ID != c.ID {
			t.Fatalf("%+v → %q → %+v, %v", c, c.Encode(), got, err)
		}
		// A page request carrying it keeps it, with a bounded limit.
		limit, pc, err := tpp.PageRequest{Cursor: c.Encode()}.Normalize()
		if err != nil || limit != tpp.DefaultPageLimit || pc.ID != id {
			t.Fatalf("Normalize: %d %+v %v", limit, pc, err)
		}
	})
}

// FuzzIdempotencyKey: an accepted key survives the trip through an HTTP
// header unchanged (the handler reads it from one), and the request
// fingerprint does not depend on JSON formatting.
func FuzzIdempotencyKey(f *testing.F) {
	for _, k := range []string{"3f1c5a2e-8d4b-4c6f-9a7e-1b2c3d4e5f60", "a", " a", "a b", "ä", "a\x00", strings.Repeat("k", 255), strings.Repeat("k", 256), "~!@#$%^&*()"} {
		f.Add(k, []byte(`{"amount": {"amount": "1.00", "currency": "EUR"}, "description": "x"}`))
	}
	f.Add("k", []byte(`not json`))
	f.Add("k", []byte(`{"n": 1.10, "m": [1, 2, {"z": null}]}`))
	f.Fuzz(func(t *testing.T, key string, body []byte) {
		if tpp.ValidIdempotencyKey(key) {
			if len(key) == 0 || len(key) > 255 || !utf8.ValidString(key) || strings.TrimSpace(key) != key {
				t.Fatalf("ValidIdempotencyKey(%q): accepted a key outside 1 to 255 visible ASCII characters", key)
			}
			for i := 0; i < len(key); i++ {
				if key[i] <= ' ' || key[i] > '~' {
					t.Fatalf("ValidIdempotencyKey(%q): byte %#x accepted", key, key[i])
				}
			}
			h := http.Header{}
			h.Set("Idempotency-Key", key)
			if got := textproto.MIMEHeader(h).Get("Idempotency-Key"); got != key {
				t.Fatalf("key %q came back from a header as %q", key, got)
			}
		}
		fp := tpp.RequestFingerprint("POST", "/v1/x", body)
		if len(fp) != 64 {
			t.Fatalf("fingerprint %q is not hex SHA-256", fp)
		}
		var indented bytes.Buffer
		if json.Valid(body) && json.Indent(&indented, body, "", "  ") == nil {
			if got := tpp.RequestFingerprint("POST", "/v1/x", indented.Bytes()); got != fp {
				t.Fatalf("body %q and its indented form have different fingerprints", body)
			}
		}
	})
}

// FuzzCheckDisplayText: accepted text holds no control or format
// character; refused text has the caller's code.
func FuzzCheckDisplayText(f *testing.F) {
	for _, s := range []string{"Rent March", "Invoice \u202Efdp.exe", "Ac\u200Dme", "x\u2066y\u2069", "line\nbreak", "\xff", "家賃 🎉"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := tpp.CheckDisplayText("description", tpp.EInvalidDescription, s)
		if err != nil {
			if tpp.ErrorCode(err) != tpp.EInvalidDescription {
				t.Fatalf("code %q", tpp.ErrorCode(err))
			}
			return
		}
		if !utf8.ValidString(s) {
			t.Fatalf("%q: invalid UTF-8 accepted", s)
		}
		for _, r := range s {
			if r < 0x20 || (r >= 0x7f && r < 0xa0) || (r >= 0x200b && r <= 0x200f) || (r >= 0x202a && r <= 0x202e) ||
				(r >= 0x2066 && r <= 0x2069) || r == 0xfeff || r == 0x2028 || r == 0x2029 {
				t.Fatalf("%q: character U+%04X accepted", s, r)
			}
		}
	})
}
