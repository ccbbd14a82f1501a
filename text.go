package tpp

import (
	"unicode"
	"unicode/utf8"
)

// CheckDisplayText refuses text that the bank, our consent pages or a
// fintech's screens would show people misleadingly: invalid UTF-8, control
// characters (newlines included), line and paragraph separators, and format
// characters (Unicode category Cf) such as the bidirectional overrides and
// isolates U+202A–U+202E and U+2066–U+2069 and the zero-width U+200B–U+200D,
// with which "Acme‮lanigiro" reads as something else. The error has code and
// names field. It is the one such check for descriptions, references, names
// and user references.
func CheckDisplayText(field, code, s string) error {
	if !utf8.ValidString(s) {
		return Errorf(code, "%s is not valid UTF-8", field)
	}
	for _, r := range s {
		switch {
		case unicode.IsControl(r), r == '\u2028', r == '\u2029':
			return Errorf(code, "%s contains control characters", field)
		case unicode.Is(unicode.Cf, r):
			return Errorf(code, "%s contains the invisible formatting character U+%04X (such as a text-direction override); remove it", field, r)
		}
	}
	return nil
}
