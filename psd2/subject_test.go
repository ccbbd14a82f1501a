package psd2

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"
)

// parsedSubject is the subject of a real certificate, as x509 parses it.
func parsedSubject(t *testing.T, n pkix.Name) pkix.Name {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: n, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c.Subject
}

func TestSameSubject(t *testing.T) {
	t.Parallel()
	orgID := asn1.ObjectIdentifier{2, 5, 4, 97}
	cert := parsedSubject(t, pkix.Name{CommonName: "Acme, Pay AISP PISP", Organization: []string{"Acme B.V."}, Country: []string{"NL"},
		ExtraNames: []pkix.AttributeTypeAndValue{{Type: orgID, Value: "PSDNL-DNB-123"}}})
	for _, tc := range []struct {
		dn   string
		same bool
	}{
		{cert.String(), true},
		{`CN=Acme\, Pay AISP PISP,O=Acme B.V.,C=NL,organizationIdentifier=PSDNL-DNB-123`, true},
		{`C=NL,O=Acme B.V.,CN=Acme\, Pay AISP PISP,OID.2.5.4.97=PSDNL-DNB-123`, true},
		{"/C=NL/O=Acme B.V./CN=Acme, Pay AISP PISP/organizationIdentifier=PSDNL-DNB-123", true},
		{"/c=NL/o=Acme B.V./cn=Acme, Pay AISP PISP/2.5.4.97=PSDNL-DNB-123", true},
		{"/C=NL/O=Acme B.V./CN=Acme, Pay AISP PISP", false},
		{"/C=NL/O=Acme B.V./CN=Acme, Pay AISP/organizationIdentifier=PSDNL-DNB-123", false},
		{"/C=DE/O=Acme B.V./CN=Acme, Pay AISP PISP/organizationIdentifier=PSDNL-DNB-123", false},
		{"/C=NL/O=Acme B.V./O=Other/CN=Acme, Pay AISP PISP/organizationIdentifier=PSDNL-DNB-123", false},
		{"CN=x,2.5.4.97=#zz", false},
		{"", false},
		{"not a name", false},
	} {
		if got := SameSubject(tc.dn, cert); got != tc.same {
			t.Errorf("SameSubject(%q) = %v, want %v", tc.dn, got, tc.same)
		}
	}
}
