package psd2

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"strings"
)

// SameSubject reports whether dn, a certificate subject as bunq shows it on
// the PSP user (certificate_distinguished_name or its
// CERTIFICATE_DISTINGUISHED_NAME alias), names the same subject as cert.
// bunq documents the field but not its spelling, so both common spellings
// are read: RFC 2253 ("CN=…,O=…,C=NL", attributes without a short name as
// "2.5.4.97=#…") and OpenSSL's one-line form ("/C=NL/O=…/CN=…"). Attribute
// order does not matter; every attribute of either side must be on the
// other with the same value.
func SameSubject(dn string, cert pkix.Name) bool {
	got, ok := parseDN(dn)
	if !ok {
		return false
	}
	want := map[string]int{}
	for _, a := range cert.Names {
		want[attributeName(a.Type.String())+"="+fmt.Sprint(a.Value)]++
	}
	if len(got) != len(want) {
		return false
	}
	for k, n := range want {
		if got[k] != n {
			return false
		}
	}
	return true
}

// attributeName is the one name SameSubject compares an attribute type by:
// the OID of a dotted type, otherwise the upper-cased short name, with the
// long names eIDAS subjects use mapped to their OIDs.
func attributeName(t string) string {
	t = strings.ToUpper(strings.TrimSpace(strings.TrimPrefix(t, "OID.")))
	switch t {
	case "CN", "2.5.4.3":
		return "2.5.4.3"
	case "C", "2.5.4.6":
		return "2.5.4.6"
	case "L", "2.5.4.7":
		return "2.5.4.7"
	case "ST", "S", "2.5.4.8":
		return "2.5.4.8"
	case "STREET", "2.5.4.9":
		return "2.5.4.9"
	case "O", "2.5.4.10":
		return "2.5.4.10"
	case "OU", "2.5.4.11":
		return "2.5.4.11"
	case "SERIALNUMBER", "2.5.4.5":
		return "2.5.4.5"
	case "POSTALCODE", "2.5.4.17":
		return "2.5.4.17"
	case "ORGANIZATIONIDENTIFIER", "2.5.4.97":
		return "2.5.4.97"
	}
	return t
}

// parseDN reads a distinguished name into a multiset of "type=value"
// entries (types as attributeName gives them, escapes undone, "#hex"
// values decoded).
func parseDN(dn string) (map[string]int, bool) {
	dn = strings.TrimSpace(dn)
	var parts []string
	if strings.HasPrefix(dn, "/") {
		parts = strings.Split(dn[1:], "/")
	} else {
		parts = splitUnescaped(dn)
	}
	out := map[string]int{}
	for _, p := range parts {
		k, v, ok := strings.Cut(p, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, false
		}
		v, ok = dnValue(strings.TrimSpace(v))
		if !ok {
			return nil, false
		}
		out[attributeName(k)+"="+v]++
	}
	return out, len(out) > 0
}

// dnValue undoes RFC 2253 escapes, and decodes a "#"-prefixed hex BER
// string value.
func dnValue(v string) (string, bool) {
	if strings.HasPrefix(v, "#") {
		der, err := hex.DecodeString(v[1:])
		if err != nil {
			return "", false
		}
		var s string
		if _, err := asn1.Unmarshal(der, &s); err != nil {
			return "", false
		}
		return s, true
	}
	if !strings.Contains(v, `\`) {
		return v, true
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String(), true
}

// splitUnescaped splits an RFC 2253 name at its unescaped commas (and the
// plus signs of multi-valued attributes).
func splitUnescaped(s string) []string {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s):
			cur.WriteByte(c)
			cur.WriteByte(s[i+1])
			i++
		case c == ',' || c == '+':
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(parts, cur.String())
}

// CertificateSubject is the certificate subject bunq shows for a PSP user:
// certificate_distinguished_name, or else its CERTIFICATE_DISTINGUISHED_NAME
// alias. Empty for other users.
func (u User) CertificateSubject() string {
	if u.CertificateDistinguishedName != "" {
		return u.CertificateDistinguishedName
	}
	for _, a := range u.Alias {
		if a.Type == "CERTIFICATE_DISTINGUISHED_NAME" {
			return a.Value
		}
	}
	return ""
}
