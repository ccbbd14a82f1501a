package certs

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
	"time"
)

// Bundle is a loaded certificate with its key and chain: what the TPP
// registers with bunq.
type Bundle struct {
	Leaf  *x509.Certificate
	Key   *rsa.PrivateKey // a crypto.Signer; nil when no key file was given
	Chain []*x509.Certificate

	// CertPEM and ChainPEM are the certificate and chain re-encoded as clean
	// PEM (each block ends in "\n"), ready for bunq's
	// payment-service-provider-credential call.
	CertPEM  string
	ChainPEM string

	QC              *QCStatements // nil when the certificate has no qcStatements extension
	Roles           []Role        // from the PSD2 QC statement, or else from the end of the CN
	CommonNameRoles []Role        // the roles that end the CN (what bunq's sandbox reads)
	OrganizationID  string        // subject organizationIdentifier (2.5.4.97), if any

	CertFile, KeyFile, ChainFile string
}

// Load reads a PEM certificate, its PEM private key and a PEM chain (the
// issuing CA and any intermediates). keyPath and chainPath may be empty, to
// inspect a certificate alone; Validate then reports ErrNoKey or ErrNoChain.
//
// Load refuses a key file that group or others may read, a key that is not
// RSA of at least 2048 bits (bunq verifies RSA PKCS#1 v1.5 signatures), and a
// key that does not belong to the certificate. Every error is an *Error.
func Load(certPath, keyPath, chainPath string) (*Bundle, error) {
	b := &Bundle{CertFile: certPath, KeyFile: keyPath, ChainFile: chainPath}
	leaves, err := readCertificates(certPath)
	if err != nil {
		return nil, err
	}
	if len(leaves) > 1 {
		return nil, &Error{Kind: ErrBadPEM, File: certPath,
			Detail: fmt.Sprintf("holds %d certificates", len(leaves)),
			Hint:   "keep only your own certificate in it and put the CA and intermediate certificates in the chain file"}
	}
	b.Leaf = leaves[0]
	b.CertPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.Leaf.Raw}))
	if err := b.readRoles(); err != nil {
		return nil, err
	}

	if keyPath != "" {
		if b.Key, err = readKey(keyPath); err != nil {
			return nil, err
		}
		pub, ok := b.Leaf.PublicKey.(*rsa.PublicKey)
		if !ok {
			return nil, &Error{Kind: ErrUnsupportedKey, File: certPath,
				Detail: fmt.Sprintf("the certificate holds a %T", b.Leaf.PublicKey),
				Hint:   "bunq needs an RSA certificate key"}
		}
		if !pub.Equal(b.Key.Public()) {
			return nil, &Error{Kind: ErrKeyMismatch, File: keyPath,
				Detail: "it is not the key of " + certPath,
				Hint:   "pass the key that was generated together with this certificate"}
		}
	}

	if chainPath != "" {
		if b.Chain, err = readCertificates(chainPath); err != nil {
			return nil, err
		}
		var sb strings.Builder
		for _, c := range b.Chain {
			sb.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
		}
		b.ChainPEM = sb.String()
	}
	return b, nil
}

// readRoles reads the QC statement, the organization id and the CN roles.
func (b *Bundle) readRoles() error {
	for _, ext := range b.Leaf.Extensions {
		if !ext.Id.Equal(oidQCStatements) {
			continue
		}
		qc, err := ParseQCStatements(ext.Value)
		if err != nil {
			return &Error{Kind: ErrBadPEM, File: b.CertFile, Detail: "the certificate's qcStatements extension cannot be read",
				Err: err, Hint: "ask the issuer for a certificate with a well-formed PSD2 QC statement"}
		}
		b.QC = qc
	}
	for _, n := range b.Leaf.Subject.Names {
		if v, ok := n.Value.(string); ok && n.Type.Equal(oidOrganizationID) {
			b.OrganizationID = v
		}
	}
	b.CommonNameRoles = RolesFromCommonName(b.Leaf.Subject.CommonName)
	b.Roles = b.CommonNameRoles
	if b.QC != nil && b.QC.PSD2 != nil {
		b.Roles = b.QC.PSD2.Roles
	}
	return nil
}

// readPEM reads a file and returns its PEM blocks. Text around the blocks
// (as openssl writes with -text) is ignored.
func readPEM(path string) ([]*pem.Block, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Kind: ErrBadPEM, File: path, Detail: "cannot read the file", Err: err,
			Hint: "check the path and that this user may read it"}
	}
	var blocks []*pem.Block
	rest := data
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		blocks = append(blocks, blk)
	}
	// pem.Decode skips what it cannot read; a damaged block must not pass unseen.
	if bytes.Contains(rest, []byte("-----BEGIN")) {
		return nil, &Error{Kind: ErrBadPEM, File: path,
			Detail: fmt.Sprintf("PEM block %d is damaged (bad base64 or no matching END line)", len(blocks)+1),
			Hint:   "copy the file again, complete and unchanged"}
	}
	if len(blocks) == 0 {
		hint := "the file must hold \"-----BEGIN …-----\" PEM text"
		if len(data) > 0 && data[0] == 0x30 { // an ASN.1 SEQUENCE: DER
			hint = "it looks like DER; convert it with 'openssl x509 -inform der -in " + path + " -out " + path + ".pem' (or 'openssl pkey' for a key)"
		}
		return nil, &Error{Kind: ErrBadPEM, File: path, Detail: "no PEM block found", Hint: hint}
	}
	return blocks, nil
}

// readCertificates reads one or more CERTIFICATE blocks.
func readCertificates(path string) ([]*x509.Certificate, error) {
	blocks, err := readPEM(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for i, blk := range blocks {
		if blk.Type != "CERTIFICATE" {
			hint := "the file may hold only CERTIFICATE blocks"
			if strings.Contains(blk.Type, "PRIVATE KEY") {
				hint = "a private key does not belong in a certificate file: move it to its own file with mode 0600"
			}
			return nil, &Error{Kind: ErrBadPEM, File: path, Detail: fmt.Sprintf("block %d is a %q block", i+1, blk.Type), Hint: hint}
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, &Error{Kind: ErrBadPEM, File: path, Detail: fmt.Sprintf("certificate %d cannot be parsed", i+1), Err: err,
				Hint: "check that the file was copied completely"}
		}
		out = append(out, c)
	}
	return out, nil
}

// readKey reads an RSA private key in PKCS#8 or PKCS#1 PEM, after checking
// that only its owner may read the file.
func readKey(path string) (*rsa.PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, &Error{Kind: ErrBadPEM, File: path, Detail: "cannot read the file", Err: err,
			Hint: "check the path and that this user may read it"}
	}
	// Windows has no Unix permission bits to check.
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, &Error{Kind: ErrKeyPermissions, File: path,
			Detail: fmt.Sprintf("mode is %04o", fi.Mode().Perm()),
			Hint:   "run 'chmod 600 " + path + "' so only its owner can read it"}
	}
	blocks, err := readPEM(path)
	if err != nil {
		return nil, err
	}
	var keyBlocks []*pem.Block
	for _, blk := range blocks {
		if strings.Contains(blk.Type, "PRIVATE KEY") {
			keyBlocks = append(keyBlocks, blk)
		}
	}
	if len(keyBlocks) != 1 {
		return nil, &Error{Kind: ErrBadPEM, File: path,
			Detail: fmt.Sprintf("holds %d private keys", len(keyBlocks)),
			Hint:   "the key file must hold exactly one \"PRIVATE KEY\" or \"RSA PRIVATE KEY\" block"}
	}
	blk := keyBlocks[0]
	if blk.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(blk.Headers["Proc-Type"], "ENCRYPTED") {
		return nil, &Error{Kind: ErrBadPEM, File: path, Detail: "the key is encrypted",
			Hint: "decrypt it with 'openssl pkey -in " + path + " -out key.pem' and keep key.pem at mode 0600"}
	}
	var parsed any
	switch blk.Type {
	case "PRIVATE KEY":
		parsed, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "RSA PRIVATE KEY":
		parsed, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	default:
		return nil, &Error{Kind: ErrUnsupportedKey, File: path, Detail: fmt.Sprintf("a %q block", blk.Type),
			Hint: "bunq needs an RSA key (PEM \"PRIVATE KEY\" or \"RSA PRIVATE KEY\")"}
	}
	if err != nil {
		return nil, &Error{Kind: ErrBadPEM, File: path, Detail: "the key cannot be parsed", Err: err,
			Hint: "check that the file was copied completely"}
	}
	key, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, &Error{Kind: ErrUnsupportedKey, File: path, Detail: fmt.Sprintf("a %T", parsed),
			Hint: "bunq needs an RSA key"}
	}
	if key.N.BitLen() < 2048 {
		return nil, &Error{Kind: ErrUnsupportedKey, File: path, Detail: fmt.Sprintf("RSA key of %d bits", key.N.BitLen()),
			Hint: "use a key of at least 2048 bits"}
	}
	return key, nil
}

// Validate checks the bundle at time now: the certificate's validity
// window, its PSD2 roles, that a key was loaded and that the chain verifies
// the certificate. It returns all problems joined; each is an *Error that
// matches its sentinel with errors.Is.
//
// A chain that does not verify is an error, not a warning: bunq would refuse
// the registration, and a wrong chain file is easier to fix here.
func (b *Bundle) Validate(now time.Time) error {
	return errors.Join(b.Problems(now)...)
}

// Problems is Validate as a list, for callers that report each problem.
func (b *Bundle) Problems(now time.Time) []error {
	var errs []error
	timeOK := true
	switch {
	case now.Before(b.Leaf.NotBefore):
		timeOK = false
		errs = append(errs, &Error{Kind: ErrNotYetValid, File: b.CertFile,
			Detail: fmt.Sprintf("valid from %s, %s from now", b.Leaf.NotBefore.UTC().Format(time.RFC3339), b.Leaf.NotBefore.Sub(now).Round(time.Second)),
			Hint:   "check this machine's clock, or wait until then"})
	case now.After(b.Leaf.NotAfter):
		timeOK = false
		errs = append(errs, &Error{Kind: ErrExpired, File: b.CertFile,
			Detail: fmt.Sprintf("expired on %s, %d days ago", b.Leaf.NotAfter.UTC().Format(time.RFC3339), -b.DaysToExpiry(now)),
			Hint:   "make a new test certificate with 'tpp certs generate' or renew the QSeal with your QTSP"})
	}

	hasTPPRole := false
	for _, r := range b.Roles {
		hasTPPRole = hasTPPRole || r == RoleAISP || r == RolePISP || r == RoleCBPII
	}
	if !hasTPPRole {
		detail := "neither a PSD2 QC statement with roles nor roles at the end of the common name " + fmt.Sprintf("%q", b.Leaf.Subject.CommonName)
		if len(b.Roles) > 0 {
			detail = "it only names the roles " + JoinRoles(b.Roles) + "; a TPP needs AISP, PISP or CBPII"
		}
		errs = append(errs, &Error{Kind: ErrNoRoles, File: b.CertFile, Detail: detail,
			Hint: "for the sandbox end the CN in the roles, e.g. \"CN=Acme Fintech AISP PISP\" ('tpp certs generate' does this); in production use a QSeal with the PSD2 QC statement"})
	}
	if b.QC != nil && b.QC.PSD2 != nil && len(b.CommonNameRoles) > 0 && !equalRoles(b.QC.PSD2.Roles, b.CommonNameRoles) {
		errs = append(errs, &Error{Kind: ErrRoleMismatch, File: b.CertFile,
			Detail: fmt.Sprintf("QC statement: %s; common name: %s", JoinRoles(b.QC.PSD2.Roles), JoinRoles(b.CommonNameRoles)),
			Hint:   "make a certificate whose common name ends in the same roles as its QC statement"})
	}

	if b.Key == nil {
		errs = append(errs, &Error{Kind: ErrNoKey, Hint: "pass the private key file"})
	}
	if len(b.Chain) == 0 {
		errs = append(errs, &Error{Kind: ErrNoChain,
			Hint: "pass the chain file with the issuing CA (chain.pem from 'tpp certs generate'); for a self-signed sandbox certificate pass the certificate itself"})
	} else if err := b.verifyChain(now, timeOK); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// verifyChain checks that the chain issues the leaf. Self-signed certificates
// in the chain are its roots; a chain without one (intermediates only, the
// QTSP root being on the EU trust list) is trusted as given, so the check is
// that the leaf chains up to what will be sent to bunq. A self-signed leaf
// may be its own chain (as bunq's sandbox examples do); an issued one may not. When the leaf itself
// is out of date the chain is checked inside the leaf's validity, so that
// this reports only what is wrong with the chain.
func (b *Bundle) verifyChain(now time.Time, leafTimeOK bool) error {
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	nroots := 0
	var issued []*x509.Certificate
	for _, c := range b.Chain {
		switch {
		case bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil:
			roots.AddCert(c)
			nroots++
		case c.Equal(b.Leaf):
			// An issued certificate cannot vouch for itself: leave it out.
		default:
			inter.AddCert(c)
			issued = append(issued, c)
		}
	}
	if nroots == 0 {
		inter = x509.NewCertPool()
		for _, c := range issued {
			roots.AddCert(c)
		}
	}
	at := now
	if !leafTimeOK {
		at = b.Leaf.NotBefore.Add(b.Leaf.NotAfter.Sub(b.Leaf.NotBefore) / 2)
	}
	_, err := b.Leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   at,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return &Error{Kind: ErrChain, File: b.ChainFile, Err: err,
			Hint: "the chain file must hold the CA (and any intermediate) certificates that issued " + b.CertFile + "; for a self-signed sandbox certificate pass the certificate itself"}
	}
	return nil
}

// DaysToExpiry returns the whole days from now until the certificate
// expires, rounded down; negative once it has expired.
func (b *Bundle) DaysToExpiry(now time.Time) int {
	d := b.Leaf.NotAfter.Sub(now)
	return int(math.Floor(d.Hours() / 24))
}

// Subject formats the certificate's subject for people; see FormatName.
func (b *Bundle) Subject() string { return FormatName(b.Leaf.Subject) }

// FormatName formats a distinguished name as "CN=…, O=…, C=…", the common
// name first and the other attributes in certificate order. Unlike
// pkix.Name.String it names organizationIdentifier (2.5.4.97), which a QSeal
// always has, instead of printing its raw encoding.
func FormatName(n pkix.Name) string {
	var first, rest []string
	for _, a := range n.Names {
		v := fmt.Sprint(a.Value)
		label := a.Type.String()
		switch label {
		case "2.5.4.3":
			first = append(first, "CN="+v)
			continue
		case "2.5.4.6":
			label = "C"
		case "2.5.4.10":
			label = "O"
		case "2.5.4.11":
			label = "OU"
		case "2.5.4.7":
			label = "L"
		case "2.5.4.8":
			label = "ST"
		case "2.5.4.9":
			label = "street"
		case "2.5.4.17":
			label = "postalCode"
		case "2.5.4.5":
			label = "serialNumber"
		case "2.5.4.97":
			label = "organizationIdentifier"
		}
		rest = append(rest, label+"="+v)
	}
	return strings.Join(append(first, rest...), ", ")
}
