package certs

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Defaults of Options.
const (
	DefaultOrganization = "Demo Fintech B.V."
	DefaultCountry      = "NL"
	DefaultNCAID        = "SBX"
	DefaultDays         = 365
	DefaultKeyBits      = 2048
)

// maxNameLen is the X.509 upper bound for a common name and organization
// name, and the length bunq's sandbox allows for the certificate name.
const maxNameLen = 64

// Options describe a test certificate. The zero value is usable: it makes a
// 365-day AISP+PISP certificate for "Demo Fintech B.V." in NL with a 2048-bit key.
type Options struct {
	Roles          []Role // default AISP, PISP
	Organization   string // subject O; default DefaultOrganization
	Country        string // subject C, ISO 3166 alpha-2; default "NL"
	NCAID          string // NCA abbreviation, 2-8 letters A-Z; default "SBX"
	NCAName        string // NCA name in the QC statement; default from NCAID
	OrganizationID string // subject organizationIdentifier; default PSD<C>-<NCAID>-<random>
	// CommonName overrides "<Organization> <roles>". It must still end in
	// exactly the roles, as bunq's sandbox reads them from there.
	CommonName string
	NotBefore  time.Time // default one hour before now, to allow for clock skew
	NotAfter   time.Time // default Days after NotBefore if that is set, else Days after now
	Days       int       // validity when NotAfter is zero; default 365
	KeyBits    int       // RSA key size: 2048 (default), 3072 or 4096
}

// ncaName names the authorities this package knows; others are named by their id.
func ncaName(id string) string {
	switch id {
	case "SBX":
		return "Sandbox test authority (not an NCA)"
	case "DNB":
		return "De Nederlandsche Bank"
	}
	return id
}

// Generated is a test CA and a QSeal-style certificate it issued, with keys
// and PEM encodings ready to write.
type Generated struct {
	CA    *x509.Certificate
	CAKey *rsa.PrivateKey
	Leaf  *x509.Certificate
	Key   *rsa.PrivateKey

	CAPEM    []byte // the CA certificate
	CertPEM  []byte // the QSeal certificate
	KeyPEM   []byte // its private key, PKCS#8
	ChainPEM []byte // what bunq wants as the chain: the CA certificate
}

// Generate makes a self-signed test CA and a certificate for opts signed by
// it. now is the reference time for the default validity; random supplies
// serial numbers and the default organization id (nil means crypto/rand).
// RSA keys always come from crypto/rand: Go ignores any other reader for key
// generation since 1.26.
func Generate(random io.Reader, now time.Time, opts Options) (*Generated, error) {
	if random == nil {
		random = rand.Reader
	}
	o, err := opts.withDefaults(random, now)
	if err != nil {
		return nil, err
	}
	qc, err := MarshalQCStatements(QCStatements{
		Compliance: true,
		Types:      eSealTypes(),
		PSD2:       &PSD2Statement{Roles: o.Roles, NCAName: o.NCAName, NCAID: o.Country + "-" + o.NCAID},
	})
	if err != nil {
		return nil, err
	}
	caKey, key, err := generateKeys(o.KeyBits)
	if err != nil {
		return nil, err
	}
	caSerial, err := serial(random)
	if err != nil {
		return nil, err
	}
	leafSerial, err := serial(random)
	if err != nil {
		return nil, err
	}
	ca, caDER, err := issueCA(random, o, caSerial, caKey)
	if err != nil {
		return nil, err
	}
	leaf, leafDER, err := issueSeal(random, o, leafSerial, qc, ca, caKey, &key.PublicKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("certs: encode key: %w", err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	return &Generated{
		CA:       ca,
		CAKey:    caKey,
		Leaf:     leaf,
		Key:      key,
		CAPEM:    caPEM,
		CertPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		KeyPEM:   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		ChainPEM: caPEM,
	}, nil
}

// generateKeys makes the CA's key and the seal's key. They are the slow
// part (a 4096-bit key takes seconds): make them side by side.
func generateKeys(bits int) (caKey, key *rsa.PrivateKey, err error) {
	var (
		wg          sync.WaitGroup
		caErr, kErr error
	)
	wg.Go(func() { caKey, caErr = rsa.GenerateKey(rand.Reader, bits) })
	key, kErr = rsa.GenerateKey(rand.Reader, bits)
	wg.Wait()
	if err := errors.Join(caErr, kErr); err != nil {
		return nil, nil, fmt.Errorf("certs: generate key: %w", err)
	}
	return caKey, key, nil
}

// issueCA makes the self-signed test CA certificate.
func issueCA(random io.Reader, o Options, serial *big.Int, caKey *rsa.PrivateKey) (*x509.Certificate, []byte, error) {
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   "TPP Test QTSP CA",
			Organization: []string{"Test CA (not a qualified trust service provider)"},
			Country:      []string{o.Country},
		},
		NotBefore:             o.NotBefore,
		NotAfter:              o.NotAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(random, tmpl, tmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: create CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: parse CA certificate: %w", err)
	}
	return ca, der, nil
}

// issueSeal makes the QSeal-style certificate for pub, signed by the CA:
// the organization id in the subject, the PSD2 roles in qc (QCStatements).
func issueSeal(random io.Reader, o Options, serial *big.Int, qc []byte, ca *x509.Certificate, caKey *rsa.PrivateKey, pub *rsa.PublicKey) (*x509.Certificate, []byte, error) {
	policy, err := x509.OIDFromInts([]uint64{0, 4, 0, 194112, 1, 1}) // QCP-l: qualified, legal person
	if err != nil {
		return nil, nil, fmt.Errorf("certs: policy OID: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   o.CommonName,
			Organization: []string{o.Organization},
			Country:      []string{o.Country},
			ExtraNames:   []pkix.AttributeTypeAndValue{{Type: oidOrganizationID, Value: o.OrganizationID}},
		},
		NotBefore: o.NotBefore,
		NotAfter:  o.NotAfter,
		// A seal signs data; nonRepudiation (contentCommitment) is what QTSPs set on QSeals.
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		BasicConstraintsValid: true,
		Policies:              []x509.OID{policy},
		ExtraExtensions:       []pkix.Extension{{Id: oidQCStatements, Value: qc}},
	}
	der, err := x509.CreateCertificate(random, tmpl, ca, pub, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: create certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: parse certificate: %w", err)
	}
	return leaf, der, nil
}

// withDefaults fills in and checks the options.
func (o Options) withDefaults(random io.Reader, now time.Time) (Options, error) {
	if len(o.Roles) == 0 {
		o.Roles = []Role{RoleAISP, RolePISP}
	}
	for _, r := range o.Roles {
		if !r.valid() || r == RoleASPSP {
			return o, fmt.Errorf("certs: PSD2 role %q cannot be used; use AISP, PISP or CBPII", r)
		}
	}
	o.Roles = canonicalRoles(o.Roles)

	o.Organization = strings.TrimSpace(o.Organization)
	if o.Organization == "" {
		o.Organization = DefaultOrganization
	}
	if n := utf8.RuneCountInString(o.Organization); n > maxNameLen {
		return o, fmt.Errorf("certs: organization name has %d characters; at most %d are allowed", n, maxNameLen)
	}

	o.Country = strings.ToUpper(strings.TrimSpace(o.Country))
	if o.Country == "" {
		o.Country = DefaultCountry
	}
	if !upperLetters(o.Country, 2, 2) {
		return o, fmt.Errorf("certs: country %q must be a two-letter ISO 3166 code such as NL", o.Country)
	}

	o.NCAID = strings.ToUpper(strings.TrimSpace(o.NCAID))
	if o.NCAID == "" {
		o.NCAID = DefaultNCAID
	}
	if !upperLetters(o.NCAID, 2, 8) {
		return o, fmt.Errorf("certs: NCA id %q must be 2 to 8 letters A-Z, such as DNB", o.NCAID)
	}
	if o.NCAName == "" {
		o.NCAName = ncaName(o.NCAID)
	}

	if o.OrganizationID == "" {
		b := make([]byte, 4)
		if _, err := io.ReadFull(random, b); err != nil {
			return o, fmt.Errorf("certs: organization id: %w", err)
		}
		o.OrganizationID = "PSD" + o.Country + "-" + o.NCAID + "-" + strings.ToUpper(hex.EncodeToString(b))
	}
	if err := checkOrganizationID(o.OrganizationID); err != nil {
		return o, err
	}

	if o.CommonName == "" {
		o.CommonName = o.Organization + " " + JoinRoles(o.Roles)
	}
	if n := utf8.RuneCountInString(o.CommonName); n > maxNameLen {
		return o, fmt.Errorf("certs: common name %q has %d characters; bunq allows %d, so shorten the organization name or set a shorter common name", o.CommonName, n, maxNameLen)
	}
	if got := RolesFromCommonName(o.CommonName); !equalRoles(got, o.Roles) {
		return o, fmt.Errorf("certs: common name %q must end in the roles %q, as bunq's sandbox reads them from there", o.CommonName, JoinRoles(o.Roles))
	}
	if name, _ := splitCommonName(o.CommonName); name == "" {
		return o, fmt.Errorf("certs: common name %q holds only roles; put a name before them", o.CommonName)
	}

	now = now.Truncate(time.Second) // X.509 times have whole seconds
	start := now
	if o.NotBefore.IsZero() {
		o.NotBefore = now.Add(-time.Hour)
	} else {
		start = o.NotBefore
	}
	if o.NotAfter.IsZero() {
		if o.Days == 0 {
			o.Days = DefaultDays
		}
		if o.Days < 1 || o.Days > 3650 {
			return o, fmt.Errorf("certs: validity of %d days is out of range; use 1 to 3650", o.Days)
		}
		o.NotAfter = start.AddDate(0, 0, o.Days)
	}
	if !o.NotAfter.After(o.NotBefore) {
		return o, fmt.Errorf("certs: not-after %s is not after not-before %s", o.NotAfter.Format(time.RFC3339), o.NotBefore.Format(time.RFC3339))
	}

	if o.KeyBits == 0 {
		o.KeyBits = DefaultKeyBits
	}
	if o.KeyBits != 2048 && o.KeyBits != 3072 && o.KeyBits != 4096 {
		return o, fmt.Errorf("certs: key size %d is not supported; use 2048, 3072 or 4096", o.KeyBits)
	}
	return o, nil
}

// checkOrganizationID checks the ETSI TS 119 495 §5.2.1 form:
// "PSD", country, "-", NCA id (2-8 letters), "-", the PSP's id at that NCA.
func checkOrganizationID(id string) error {
	bad := fmt.Errorf("certs: organization id %q must look like PSDNL-DNB-123456 (\"PSD\", country, '-', NCA id, '-', your id at the NCA)", id)
	rest, ok := strings.CutPrefix(id, "PSD")
	if !ok || len(rest) < 3 || !upperLetters(rest[:2], 2, 2) || rest[2] != '-' {
		return bad
	}
	nca, psp, ok := strings.Cut(rest[3:], "-")
	if !ok || !upperLetters(nca, 2, 8) || psp == "" || len(id) > maxNameLen {
		return bad
	}
	for _, c := range psp {
		if c <= ' ' || c > '~' {
			return bad
		}
	}
	return nil
}

func upperLetters(s string, minLen, maxLen int) bool {
	if len(s) < minLen || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

func equalRoles(a, b []Role) bool {
	a, b = canonicalRoles(a), canonicalRoles(b)
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// serial returns a random positive 127-bit serial number (RFC 5280 allows 20 octets).
func serial(random io.Reader) (*big.Int, error) {
	n, err := rand.Int(random, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("certs: serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}
