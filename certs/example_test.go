package certs_test

import (
	"fmt"
	"time"

	"github.com/bunqtpp/tpp/certs"
)

func ExampleGenerate() {
	g, err := certs.Generate(nil, time.Now(), certs.Options{
		Roles:          []certs.Role{certs.RolePISP, certs.RoleAISP},
		Organization:   "Acme Fintech",
		OrganizationID: "PSDNL-SBX-ACME01",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(certs.FormatName(g.Leaf.Subject))
	// g.WriteFiles("./certs-out", certs.FileNames{}, false) writes ca.pem,
	// cert.pem, key.pem (0600) and chain.pem.

	// Output:
	// CN=Acme Fintech AISP PISP, C=NL, O=Acme Fintech, organizationIdentifier=PSDNL-SBX-ACME01
}

func ExampleRolesFromCommonName() {
	fmt.Println(certs.RolesFromCommonName("My App PISP AISP"))
	fmt.Println(certs.RolesFromCommonName("Acme Fintech PIISP"))
	fmt.Println(certs.RolesFromCommonName("AISP Tools B.V."))
	// Output:
	// [AISP PISP]
	// [CBPII]
	// []
}

func ExampleLoad() {
	b, err := certs.Load("cert.pem", "key.pem", "chain.pem")
	if err != nil {
		fmt.Println(err) // says which file, what is wrong and what to do
		return
	}
	if err := b.Validate(time.Now()); err != nil {
		fmt.Println(err)
		return
	}
	// b.Key is the crypto.Signer for the PSD2 credential; b.CertPEM and
	// b.ChainPEM are sent to bunq.
	fmt.Println(b.Roles, b.DaysToExpiry(time.Now()))
}
