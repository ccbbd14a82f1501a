package sandbox

import "strings"

// IBANs as bunq reads them. The emulator keeps its own code (no sharing
// with the TPP): a bug in one must not hide in the other.

// normalIBAN returns s in electronic form (no spaces, upper case) when it
// is a well-formed IBAN: 2 letters, 2 check digits, an alphanumeric BBAN,
// 15 to 34 characters, and the ISO 13616 mod-97 check.
func normalIBAN(s string) (string, bool) {
	v := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), " ", ""))
	if len(v) < 15 || len(v) > 34 {
		return "", false
	}
	for i := range len(v) {
		c := v[i]
		switch {
		case i < 2 && (c < 'A' || c > 'Z'):
			return "", false
		case i >= 2 && i < 4 && (c < '0' || c > '9'):
			return "", false
		case !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'):
			return "", false
		}
	}
	r := 0
	for _, c := range v[4:] + v[:4] {
		if c >= 'A' {
			r = (r*100 + int(c-'A') + 10) % 97
		} else {
			r = (r*10 + int(c-'0')) % 97
		}
	}
	return v, r == 1
}

// bunqIBAN reports whether iban (electronic form) is one bunq issues:
// Dutch, bank code BUNQ. A PSP draft payment's sender must be one
// (bunq validates it at creation; ../shared/docs/bunq-api.md §12.5).
func bunqIBAN(iban string) bool {
	return len(iban) == 18 && iban[:2] == "NL" && iban[4:8] == "BUNQ"
}
