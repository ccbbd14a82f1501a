package psd2

import (
	"crypto/x509/pkix"
	"strings"
)

// SameSubject reports whether dn, a certificate subject as bunq shows it on
// the PSP user (certificate_distinguished_name or its
// CERTIFICATE_DISTINGUISHED_NAME alias), names the same subject as cert.
// bunq documents the field but not its spelling, so both common spellings
// are read: RFC 2253 ("CN=…,O=…,C=NL") and OpenSSL's one-line form
// ("/C=NL/O=…/CN=…"). Attribute order does not matter; every attribute of
// either side must be on the other with the same value.
func SameSubject(dn string, cert pkix.Name) bool {
	got, ok := parseDN(dn)
	if !ok {
		return false
	}
	want, _ := parseDN(cert.String())
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

// parseDN reads a distinguished name into a multiset of "TYPE=value"
// entries, types upper-cased and RFC 2253 escapes undone.
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
		k, v = strings.ToUpper(strings.TrimSpace(k)), unescapeDN(strings.TrimSpace(v))
		if !ok || k == "" {
			return nil, false
		}
		out[k+"="+v]++
	}
	return out, len(out) > 0
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

// unescapeDN undoes RFC 2253 backslash escapes of special characters.
func unescapeDN(v string) string {
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
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
