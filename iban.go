package tpp

import (
	"strings"
)

// ibanLengths holds the length of an IBAN per country (ISO 13616 registry).
var ibanLengths = map[string]int{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
	"BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
	"ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
	"HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
	"LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
	"MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25,
	"QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27,
	"ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}

// NormalizeIBAN removes spaces and upper-cases s, then checks it against
// ISO 13616: a known country, that country's length, alphanumeric characters
// and the mod-97 checksum. It returns the electronic form ("NL91ABNA0417164300").
func NormalizeIBAN(s string) (string, error) {
	for i := 0; i < len(s); i++ {
		// Check bytes before upper-casing: strings.ToUpper maps some non-ASCII
		// letters (dotless ı, long ſ) onto ASCII ones.
		if s[i] >= 0x80 {
			return "", Errorf(EInvalidIBAN, "IBAN %q contains a character that is not a letter or digit", s)
		}
	}
	iban := strings.ToUpper(strings.Join(strings.Fields(s), ""))
	if iban == "" {
		return "", Errorf(EInvalidIBAN, "IBAN is required")
	}
	if len(iban) < 4 {
		return "", Errorf(EInvalidIBAN, "IBAN %q is too short", s)
	}
	want, ok := ibanLengths[iban[:2]]
	if !ok {
		return "", Errorf(EInvalidIBAN, "IBAN %q does not start with a known country code", s)
	}
	if len(iban) != want {
		return "", Errorf(EInvalidIBAN, "IBAN %q has %d characters; %s IBANs have %d", s, len(iban), iban[:2], want)
	}
	if iban[2] < '0' || iban[2] > '9' || iban[3] < '0' || iban[3] > '9' {
		return "", Errorf(EInvalidIBAN, "IBAN %q has no check digits after the country code", s)
	}
	for i := 4; i < len(iban); i++ {
		c := iban[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
			return "", Errorf(EInvalidIBAN, "IBAN %q contains a character that is not a letter or digit", s)
		}
	}
	if ibanMod97(iban) != 1 {
		return "", Errorf(EInvalidIBAN, "IBAN %q has a wrong checksum; check for a typo", s)
	}
	return iban, nil
}

// ibanMod97 computes the ISO 7064 mod-97-10 remainder of the rearranged IBAN.
func ibanMod97(iban string) int {
	r := 0
	rearranged := iban[4:] + iban[:4]
	for i := 0; i < len(rearranged); i++ {
		c := rearranged[i]
		if c >= 'A' && c <= 'Z' {
			v := int(c-'A') + 10
			r = (r*100 + v) % 97
		} else {
			r = (r*10 + int(c-'0')) % 97
		}
	}
	return r
}
