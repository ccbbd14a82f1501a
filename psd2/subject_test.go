package psd2

import (
	"crypto/x509/pkix"
	"testing"
)

func TestSameSubject(t *testing.T) {
	t.Parallel()
	cert := pkix.Name{CommonName: "Acme, Pay AISP PISP", Organization: []string{"Acme B.V."}, Country: []string{"NL"}}
	for _, tc := range []struct {
		dn   string
		same bool
	}{
		{cert.String(), true},
		{`CN=Acme\, Pay AISP PISP,O=Acme B.V.,C=NL`, true},
		{`C=NL,O=Acme B.V.,CN=Acme\, Pay AISP PISP`, true},
		{"/C=NL/O=Acme B.V./CN=Acme, Pay AISP PISP", true},
		{"/c=NL/o=Acme B.V./cn=Acme, Pay AISP PISP", true},
		{"/C=NL/O=Acme B.V./CN=Acme, Pay AISP", false},
		{"/C=DE/O=Acme B.V./CN=Acme, Pay AISP PISP", false},
		{"/C=NL/CN=Acme, Pay AISP PISP", false},
		{"/C=NL/O=Acme B.V./O=Other/CN=Acme, Pay AISP PISP", false},
		{"", false},
		{"not a name", false},
	} {
		if got := SameSubject(tc.dn, cert); got != tc.same {
			t.Errorf("SameSubject(%q) = %v, want %v", tc.dn, got, tc.same)
		}
	}
}
