package tpp_test

import (
	"testing"

	"github.com/bunqtpp/tpp"
)

func TestCheckDisplayTextRefusesInvisibleFormatting(t *testing.T) {
	bad := map[string]string{
		"right-to-left override": "Invoice \u202Efdp.exe",
		"zero-width joiner":      "Ac\u200Dme",
		"zero-width space":       "Ac\u200Bme",
		"left-to-right isolate":  "x\u2066y",
		"first strong isolate":   "x\u2068y",
		"pop directional":        "x\u2069y",
		"LRE":                    "\u202Ax",
		"byte order mark":        "\uFEFFrent",
		"soft hyphen":            "re\u00ADnt",
		"newline":                "rent\nmore",
		"line separator":         "rent\u2028",
		"invalid UTF-8":          "rent\xff",
	}
	for name, s := range bad {
		err := tpp.CheckDisplayText("description", tpp.EInvalidDescription, s)
		if tpp.ErrorCode(err) != tpp.EInvalidDescription {
			t.Errorf("%s (%q): err = %v, want %s", name, s, err, tpp.EInvalidDescription)
		}
	}
	for _, s := range []string{"", "Rent March", "Café Zoë – €12", "שכר דירה", "家賃", "emoji 🎉", "Koç & Söhne"} {
		if err := tpp.CheckDisplayText("description", tpp.EInvalidDescription, s); err != nil {
			t.Errorf("%q: %v, want accepted", s, err)
		}
	}
	if err := tpp.CheckDisplayText("user_ref", tpp.EInvalid, "u\u202E1"); tpp.ErrorCode(err) != tpp.EInvalid {
		t.Errorf("the code is the caller's: %v", err)
	}
}
