package sandbox

import (
	"errors"
	"math/big"
	"strconv"
	"strings"
)

// The emulator's own amount and IBAN handling. It shares none of the TPP's
// (package tpp) on purpose: the TPP's product limits are not bunq's, and a
// bug shared by both sides would hide in every test.

// maxWholeDigits bounds amounts to what fits int64 cents comfortably; bunq
// documents no upper limit on amounts it checks.
const maxWholeDigits = 15

var errAmount = errors.New("sandbox: not a positive amount")

// parseCents reads a positive decimal with at most two decimals ("12.5",
// "12.50", "10000000.00") into cents.
func parseCents(s string) (int64, error) {
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" || len(whole) > maxWholeDigits || !digitsOnly(whole) {
		return 0, errAmount
	}
	if dot && (frac == "" || len(frac) > 2 || !digitsOnly(frac)) {
		return 0, errAmount
	}
	frac = (frac + "00")[:2]
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, errAmount
	}
	f, _ := strconv.ParseInt(frac, 10, 64)
	if c := w*100 + f; c > 0 {
		return c, nil
	}
	return 0, errAmount
}

// formatCents writes cents as bunq does: "-12.50", "0.05".
func formatCents(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	return sign + strconv.FormatInt(cents/100, 10) + "." + strconv.FormatInt(cents/10%10, 10) + strconv.FormatInt(cents%10, 10)
}

func digitsOnly(s string) bool {
	return strings.Trim(s, "0123456789") == ""
}

var errIBAN = errors.New("sandbox: not a valid IBAN")

// canonicalIBAN removes spaces, upper-cases and checks the ISO 13616 shape
// (country letters, check digits, 11 to 30 letters or digits) and the
// ISO 7064 mod-97 check.
func canonicalIBAN(s string) (string, error) {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == ' ':
		case r >= 'a' && r <= 'z':
			b.WriteRune(r - 'a' + 'A')
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			return "", errIBAN
		}
	}
	iban := b.String()
	if len(iban) < 15 || len(iban) > 34 || !isLetter(iban[0]) || !isLetter(iban[1]) || !digitsOnly(iban[2:4]) {
		return "", errIBAN
	}
	var num strings.Builder
	for _, c := range iban[4:] + iban[:4] {
		if isLetter(byte(c)) {
			num.WriteString(strconv.Itoa(int(c-'A') + 10))
		} else {
			num.WriteRune(c)
		}
	}
	n, ok := new(big.Int).SetString(num.String(), 10)
	if !ok || new(big.Int).Mod(n, big.NewInt(97)).Int64() != 1 {
		return "", errIBAN
	}
	return iban, nil
}

func isLetter(c byte) bool { return c >= 'A' && c <= 'Z' }
