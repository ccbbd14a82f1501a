package tpp_test

import (
	"math/big"
	"strings"
	"testing"

	"github.com/bunqtpp/tpp"
)

// validIBANs are published example IBANs of several countries.
var validIBANs = []string{
	"NL91ABNA0417164300",
	"NL02ABNA0123456789",
	"DE89370400440532013000",
	"GB29NWBK60161331926819",
	"BE68539007547034",
	"FR1420041010050500013M02606",
	"ES9121000418450200051332",
	"IT60X0542811101000000123456",
	"AT611904300234573201",
	"CH9300762011623852957",
	"NO9386011117947",                  // shortest (15)
	"MT84MALT011000012345MTLCAST001S",  // 31, letters in the account part
	"LC55HEMM000100010012001200023015", // longest (32)
	"IE29AIBK93115212345678",
	"PL61109010140000071219812874",
}

func TestNormalizeIBANValid(t *testing.T) {
	t.Parallel()
	for _, iban := range validIBANs {
		spaced := ""
		for i := 0; i < len(iban); i += 4 {
			spaced += iban[i:min(i+4, len(iban))] + " "
		}
		for _, in := range []string{iban, spaced, " " + spaced, strings.ToLower(spaced), strings.ToLower(iban[:2]) + iban[2:], "\t" + iban[:6] + "\n" + iban[6:] + "\r\n"} {
			got, err := tpp.NormalizeIBAN(in)
			if err != nil || got != iban {
				t.Errorf("NormalizeIBAN(%q) = %q, %v; want %q", in, got, err, iban)
			}
		}
	}
}

func TestNormalizeIBANInvalid(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in, msg string
	}{
		{"", "IBAN is required"},
		{"   ", "IBAN is required"},
		{"NL9", "too short"},
		{"XX91ABNA0417164300", "known country code"},
		{"US64SVBKUS6S3300958879", "known country code"},
		{"1291ABNA0417164300", "known country code"},
		{"NL91ABNA041716430", "has 17 characters; NL IBANs have 18"},
		{"NL91ABNA04171643000", "has 19 characters; NL IBANs have 18"},
		{"DE8937040044053201300", "DE IBANs have 22"},
		{"NL92ABNA0417164300", "wrong checksum"},
		{"NL91ABNA0417164301", "wrong checksum"},
		{"NL91ABAN0417164300", "wrong checksum"}, // swapped letters
		{"NL19ABNA0417164300", "wrong checksum"}, // swapped check digits
		{"NLAAABNA0417164300", "no check digits"},
		{"NL9AABNA0417164300", "no check digits"},
		{"NL91ABNA04171643-0", "not a letter or digit"},
		{"NL91ABNA0417.64300", "not a letter or digit"},
		{"NL91ABNA0417_64300", "not a letter or digit"},
		{"NL91ÄBNA041716430", "not a letter or digit"}, // Ä is 2 bytes: the length fits
		{"NL91ABNA0417164300\x00", "has 19 characters"},
	}
	for _, c := range cases {
		got, err := tpp.NormalizeIBAN(c.in)
		if err == nil {
			t.Errorf("NormalizeIBAN(%q) = %q, want an error", c.in, got)
			continue
		}
		if code := tpp.ErrorCode(err); code != tpp.EInvalidIBAN {
			t.Errorf("NormalizeIBAN(%q): code %q", c.in, code)
		}
		if !strings.Contains(tpp.ErrorMessage(err), c.msg) {
			t.Errorf("NormalizeIBAN(%q): message %q lacks %q", c.in, tpp.ErrorMessage(err), c.msg)
		}
	}
}

// TestNormalizeIBANSingleErrors: mod-97 catches every substitution of a
// digit by a digit or a letter by a letter (a letter for a digit changes the
// number's length, so the guarantee does not hold there), so each must be refused.
func TestNormalizeIBANSingleErrors(t *testing.T) {
	t.Parallel()
	for _, iban := range validIBANs[:4] {
		for i := 2; i < len(iban); i++ {
			for _, c := range "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ" {
				isDigit := func(b byte) bool { return b >= '0' && b <= '9' }
				if byte(c) == iban[i] || isDigit(byte(c)) != isDigit(iban[i]) {
					continue
				}
				typo := iban[:i] + string(c) + iban[i+1:]
				if got, err := tpp.NormalizeIBAN(typo); err == nil {
					t.Errorf("NormalizeIBAN(%q) = %q for a typo of %s", typo, got, iban)
				}
			}
		}
	}
}

// mod97 is a reference ISO 7064 check with math/big, independent of iban.go.
func mod97(iban string) int64 {
	var digits strings.Builder
	for _, c := range iban[4:] + iban[:4] {
		if c >= 'A' && c <= 'Z' {
			digits.WriteString(big.NewInt(int64(c - 'A' + 10)).String())
		} else {
			digits.WriteRune(c)
		}
	}
	n, ok := new(big.Int).SetString(digits.String(), 10)
	if !ok {
		return -1
	}
	return new(big.Int).Mod(n, big.NewInt(97)).Int64()
}

func FuzzNormalizeIBAN(f *testing.F) {
	for _, s := range validIBANs {
		f.Add(s)
		f.Add(strings.ToLower(s))
	}
	for _, s := range []string{"", " ", "NL", "NL91 ABNA 0417 1643 00", "nl91abna0417164300", "XX00", "NL91ABNA04171643-0", "ıt60x0542811101000000123456", "\u00a0NL91ABNA0417164300"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := tpp.NormalizeIBAN(s)
		if err != nil {
			if tpp.ErrorCode(err) != tpp.EInvalidIBAN {
				t.Fatalf("NormalizeIBAN(%q): error with code %q: %v", s, tpp.ErrorCode(err), err)
			}
			return
		}
		// The result is the electronic form: upper-case letters and digits,
		// a country, check digits, and a checksum the reference agrees with.
		if len(n) < 15 || len(n) > 34 {
			t.Fatalf("NormalizeIBAN(%q) = %q: length %d", s, n, len(n))
		}
		for i := 0; i < len(n); i++ {
			c := n[i]
			if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') || (i < 2 && c <= '9') || (i >= 2 && i < 4 && c > '9') {
				t.Fatalf("NormalizeIBAN(%q) = %q: bad character at %d", s, n, i)
			}
		}
		if r := mod97(n); r != 1 {
			t.Fatalf("NormalizeIBAN(%q) = %q, but its mod-97 remainder is %d", s, n, r)
		}
		// Idempotent.
		n2, err := tpp.NormalizeIBAN(n)
		if err != nil || n2 != n {
			t.Fatalf("NormalizeIBAN(%q) = %q, %v; not idempotent from %q", n, n2, err, s)
		}
	})
}
