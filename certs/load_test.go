package certs_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bunqtpp/tpp/certs"
	"github.com/bunqtpp/tpp/internal/testenv"
)

func writeFile(t *testing.T, dir, name string, data []byte, mode fs.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // WriteFile's mode is masked by the umask
		t.Fatal(err)
	}
	return p
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// selfSigned makes a self-signed certificate like bunq's documented
// 'openssl req -x509 … -subj /CN=My App PISP AISP/C=NL', optionally with a
// qcStatements extension, and returns its PEM and key.
func selfSigned(t *testing.T, cn string, qc []byte, notBefore, notAfter time.Time) ([]byte, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn, Country: []string{"NL"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	if qc != nil {
		tmpl.ExtraExtensions = []pkix.Extension{{Id: asn1OIDQCStatements(), Value: qc}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("CERTIFICATE", der), key
}

func asn1OIDQCStatements() []int { return []int{1, 3, 6, 1, 5, 5, 7, 1, 3} }

func keyPEM(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("PRIVATE KEY", der)
}

// checkErr asserts err is an *certs.Error of kind with file and message parts.
func checkErr(t *testing.T, err, kind error, file string, parts ...string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("err = %v, want errors.Is %v", err, kind)
	}
	var ce *certs.Error
	if !errors.As(err, &ce) {
		t.Fatalf("err %T is not a *certs.Error", err)
	}
	if file != "" && ce.File != file {
		t.Errorf("Error.File = %q, want %q", ce.File, file)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q lacks %q", err, p)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	g := generate(t, certs.Options{})
	other := generate(t, certs.Options{})
	dir := t.TempDir()
	cert := writeFile(t, dir, "cert.pem", g.CertPEM, 0o644)
	key := writeFile(t, dir, "key.pem", g.KeyPEM, 0o600)
	chain := writeFile(t, dir, "chain.pem", g.ChainPEM, 0o644)

	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	smallKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	block := &pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00"}, Bytes: []byte{1}}
	der, _ := pem.Decode(g.CertPEM)

	missing := filepath.Join(dir, "nope.pem")
	text := writeFile(t, dir, "text.pem", []byte("hello, not a certificate\n"), 0o644)
	derFile := writeFile(t, dir, "cert.der", der.Bytes, 0o644)
	two := writeFile(t, dir, "two.pem", append(slices.Clone(g.CertPEM), g.CAPEM...), 0o644)
	withKey := writeFile(t, dir, "withkey.pem", g.KeyPEM, 0o600)
	corrupt := writeFile(t, dir, "corrupt.pem", pemBlock("CERTIFICATE", []byte("not DER")), 0o644)
	open644 := writeFile(t, dir, "key644.pem", g.KeyPEM, 0o644)
	open640 := writeFile(t, dir, "key640.pem", g.KeyPEM, 0o640)
	wrongKey := writeFile(t, dir, "other.key", other.KeyPEM, 0o600)
	encrypted := writeFile(t, dir, "enc.key", pem.EncodeToMemory(block), 0o600)
	encPKCS8 := writeFile(t, dir, "enc8.key", pemBlock("ENCRYPTED PRIVATE KEY", []byte{1}), 0o600)
	ecFile := writeFile(t, dir, "ec.key", keyPEM(t, ecKey), 0o600)
	smallFile := writeFile(t, dir, "small.key", keyPEM(t, smallKey), 0o600)
	emptyKey := writeFile(t, dir, "empty.key", nil, 0o600)
	twoKeys := writeFile(t, dir, "two.key", append(slices.Clone(g.KeyPEM), other.KeyPEM...), 0o600)
	garbledKey := writeFile(t, dir, "garbled.key", pemBlock("PRIVATE KEY", []byte("junk")), 0o600)
	badChain := writeFile(t, dir, "badchain.pem", []byte("-----BEGIN CERTIFICATE-----\n!!!\n"), 0o644)
	damaged := writeFile(t, dir, "damaged.pem", append(slices.Clone(g.CAPEM), g.CAPEM[:len(g.CAPEM)-30]...), 0o644)

	cases := []struct {
		name             string
		cert, key, chain string
		kind             error
		file             string
		parts            []string
	}{
		{"missing cert", missing, key, chain, certs.ErrBadPEM, missing, []string{"nope.pem", "cannot read"}},
		{"cert not PEM", text, key, chain, certs.ErrBadPEM, text, []string{"no PEM block found", "BEGIN"}},
		{"cert in DER", derFile, key, chain, certs.ErrBadPEM, derFile, []string{"looks like DER", "openssl x509 -inform der -in " + derFile}},
		{"two certs", two, key, chain, certs.ErrBadPEM, two, []string{"holds 2 certificates", "chain file"}},
		{"key in cert file", withKey, key, chain, certs.ErrBadPEM, withKey, []string{`"PRIVATE KEY" block`, "does not belong"}},
		{"corrupt cert", corrupt, key, chain, certs.ErrBadPEM, corrupt, []string{"cannot be parsed"}},
		{"key mode 0644", cert, open644, chain, certs.ErrKeyPermissions, open644, []string{"0644", "chmod 600 " + open644}},
		{"key mode 0640", cert, open640, chain, certs.ErrKeyPermissions, open640, []string{"chmod 600 " + open640}},
		{"wrong key", cert, wrongKey, chain, certs.ErrKeyMismatch, wrongKey, []string{"not the key of " + cert}},
		{"encrypted key", cert, encrypted, chain, certs.ErrBadPEM, encrypted, []string{"encrypted", "openssl pkey"}},
		{"encrypted PKCS#8 key", cert, encPKCS8, chain, certs.ErrBadPEM, encPKCS8, []string{"encrypted"}},
		{"EC key", cert, ecFile, chain, certs.ErrUnsupportedKey, ecFile, []string{"ecdsa", "RSA"}},
		{"1024-bit key", cert, smallFile, chain, certs.ErrUnsupportedKey, smallFile, []string{"1024 bits", "2048"}},
		{"empty key", cert, emptyKey, chain, certs.ErrBadPEM, emptyKey, []string{"no PEM block"}},
		{"two keys", cert, twoKeys, chain, certs.ErrBadPEM, twoKeys, []string{"holds 2 private keys"}},
		{"garbled key", cert, garbledKey, chain, certs.ErrBadPEM, garbledKey, []string{"key cannot be parsed"}},
		{"missing key", cert, missing, chain, certs.ErrBadPEM, missing, []string{"cannot read"}},
		{"bad chain", cert, key, badChain, certs.ErrBadPEM, badChain, []string{"PEM block 1 is damaged"}},
		{"truncated second block", cert, key, damaged, certs.ErrBadPEM, damaged, []string{"PEM block 2 is damaged", "copy the file again"}},
		{"missing chain", cert, key, missing, certs.ErrBadPEM, missing, []string{"cannot read"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b, err := certs.Load(c.cert, c.key, c.chain)
			if b != nil {
				t.Error("Load returned a bundle with an error")
			}
			checkErr(t, err, c.kind, c.file, c.parts...)
		})
	}
	t.Run("missing file is fs.ErrNotExist too", func(t *testing.T) {
		t.Parallel()
		if _, err := certs.Load(missing, "", ""); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestLoadPKCS1KeyAndPEMText(t *testing.T) {
	t.Parallel()
	g := generate(t, certs.Options{})
	dir := t.TempDir()
	// openssl x509 -text writes text before the PEM block; it is ignored.
	cert := writeFile(t, dir, "cert.pem", append([]byte("Certificate:\n    Data: ...\n"), g.CertPEM...), 0o644)
	key := writeFile(t, dir, "key.pem", pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(g.Key)), 0o400)
	chain := writeFile(t, dir, "chain.pem", g.ChainPEM, 0o644)
	b, err := certs.Load(cert, key, chain)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Validate(now); err != nil {
		t.Fatal(err)
	}
	if b.CertPEM != string(g.CertPEM) {
		t.Error("CertPEM is not the clean PEM block")
	}
}

func TestValidateTime(t *testing.T) {
	t.Parallel()
	g := generate(t, certs.Options{NotBefore: now.AddDate(0, 0, -30), NotAfter: now.AddDate(0, 0, 10)})
	w := writeGenerated(t, g)
	b, err := certs.Load(w.Cert, w.Key, w.Chain)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Validate(now); err != nil {
		t.Fatalf("inside the window: %v", err)
	}
	if err := b.Validate(now.AddDate(0, 0, 10)); err != nil {
		t.Errorf("at NotAfter (inclusive): %v", err)
	}

	late := now.AddDate(0, 0, 12)
	err = b.Validate(late)
	checkErr(t, err, certs.ErrExpired, w.Cert, "expired on 2026-03-24T12:00:00Z", "2 days ago", "tpp certs generate")
	if errors.Is(err, certs.ErrChain) || errors.Is(err, certs.ErrNotYetValid) {
		t.Errorf("an expired certificate also reports %v", err)
	}
	if d := b.DaysToExpiry(late); d != -2 {
		t.Errorf("DaysToExpiry after expiry = %d, want -2", d)
	}

	early := now.AddDate(0, 0, -31)
	checkErr(t, b.Validate(early), certs.ErrNotYetValid, w.Cert, "valid from 2026-02-12T12:00:00Z", "24h0m0s from now", "clock")
	if d := b.DaysToExpiry(now.Add(-time.Nanosecond)); d != 10 {
		t.Errorf("DaysToExpiry = %d, want 10", d)
	}
}

func TestValidateChain(t *testing.T) {
	t.Parallel()
	g := generate(t, certs.Options{})
	other := generate(t, certs.Options{})
	dir := t.TempDir()
	w := writeGenerated(t, g)
	otherChain := writeFile(t, dir, "other-chain.pem", other.ChainPEM, 0o644)
	leafAsChain := writeFile(t, dir, "leaf-chain.pem", g.CertPEM, 0o644)

	b, err := certs.Load(w.Cert, w.Key, otherChain)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Validate(now)
	checkErr(t, err, certs.ErrChain, otherChain, "chain does not verify", "issued "+w.Cert)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("cause is not x509.UnknownAuthorityError: %v", err)
	}

	// The CA-issued leaf is not its own chain.
	b, err = certs.Load(w.Cert, w.Key, leafAsChain)
	if err != nil {
		t.Fatal(err)
	}
	checkErr(t, b.Validate(now), certs.ErrChain, leafAsChain)

	// The CA plus a stray self-signed certificate still verifies.
	mixed := writeFile(t, dir, "mixed.pem", append(slices.Clone(other.CAPEM), g.CAPEM...), 0o644)
	b, err = certs.Load(w.Cert, w.Key, mixed)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Validate(now); err != nil {
		t.Errorf("chain with the CA among others: %v", err)
	}
	if len(b.Chain) != 2 || strings.Count(b.ChainPEM, "BEGIN CERTIFICATE") != 2 {
		t.Errorf("chain of %d, ChainPEM %q", len(b.Chain), b.ChainPEM)
	}
}

// TestSandboxCertificate loads a certificate like bunq documents for the
// sandbox: self-signed, no QC statement, roles at the end of the CN, passed
// as its own chain.
func TestSandboxCertificate(t *testing.T) {
	t.Parallel()
	certPEM, key := selfSigned(t, "My App PISP AISP", nil, now.Add(-time.Hour), now.AddDate(1, 0, 0))
	dir := t.TempDir()
	cert := writeFile(t, dir, "cert.pem", certPEM, 0o644)
	keyFile := writeFile(t, dir, "key.pem", keyPEM(t, key), 0o600)
	b, err := certs.Load(cert, keyFile, cert)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Validate(now); err != nil {
		t.Fatal(err)
	}
	if b.QC != nil || !slices.Equal(b.Roles, []certs.Role{certs.RoleAISP, certs.RolePISP}) {
		t.Errorf("QC %v, roles %v", b.QC, b.Roles)
	}
	if b.ChainPEM != b.CertPEM {
		t.Error("the certificate as its own chain changed on the way")
	}
}

// TestSandboxCertificateFromOpenSSL runs bunq's documented openssl command.
func TestSandboxCertificateFromOpenSSL(t *testing.T) {
	t.Parallel()
	openssl := testenv.LookPath(t, "bunq's documented sandbox certificate command", "openssl")
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	out, err := exec.Command(openssl, "req", "-x509", "-newkey", "rsa:2048", "-keyout", key, "-out", cert,
		"-days", "365", "-nodes", "-subj", "/CN=My App PISP AISP/C=NL").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	if err := os.Chmod(key, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := certs.Load(cert, key, cert)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Validate(time.Now()); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(b.Roles, []certs.Role{certs.RoleAISP, certs.RolePISP}) {
		t.Errorf("roles %v", b.Roles)
	}
}

func TestValidateRoles(t *testing.T) {
	t.Parallel()
	qc := func(roles ...certs.Role) []byte {
		der, err := certs.MarshalQCStatements(certs.QCStatements{Compliance: true,
			PSD2: &certs.PSD2Statement{Roles: roles, NCAName: "x", NCAID: "NL-X"}})
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	nonPSD2, err := certs.MarshalQCStatements(certs.QCStatements{Compliance: true})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		cn    string
		qc    []byte
		kind  error // nil: valid
		roles []certs.Role
		parts []string
	}{
		{"no roles anywhere", "My App", nil, certs.ErrNoRoles, nil, []string{`"My App"`, "CN=Acme Fintech AISP PISP"}},
		{"lower-case roles", "My App aisp", nil, certs.ErrNoRoles, nil, nil},
		{"QC without PSD2, no CN roles", "My App", nonPSD2, certs.ErrNoRoles, nil, nil},
		{"QC without PSD2, CN roles", "My App AISP", nonPSD2, nil, []certs.Role{certs.RoleAISP}, nil},
		{"bank only", "Bank", qc(certs.RoleASPSP), certs.ErrNoRoles, []certs.Role{certs.RoleASPSP}, []string{"only names the roles ASPSP"}},
		{"production style: QC roles, plain CN", "Acme Fintech B.V.", qc(certs.RolePISP), nil, []certs.Role{certs.RolePISP}, nil},
		{"QC and CN agree", "Acme AISP PISP", qc(certs.RolePISP, certs.RoleAISP), nil, []certs.Role{certs.RoleAISP, certs.RolePISP}, nil},
		{"QC and CN differ", "Acme AISP", qc(certs.RolePISP), certs.ErrRoleMismatch, []certs.Role{certs.RolePISP}, []string{"QC statement: PISP; common name: AISP"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			certPEM, key := selfSigned(t, c.cn, c.qc, now.Add(-time.Hour), now.Add(time.Hour))
			dir := t.TempDir()
			cert := writeFile(t, dir, "cert.pem", certPEM, 0o644)
			b, err := certs.Load(cert, writeFile(t, dir, "key.pem", keyPEM(t, key), 0o600), cert)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(b.Roles, c.roles) {
				t.Errorf("Roles = %v, want %v", b.Roles, c.roles)
			}
			err = b.Validate(now)
			if c.kind == nil {
				if err != nil {
					t.Errorf("Validate: %v", err)
				}
				return
			}
			checkErr(t, err, c.kind, cert, c.parts...)
		})
	}
}

func TestLoadMalformedQCStatement(t *testing.T) {
	t.Parallel()
	certPEM, _ := selfSigned(t, "My App AISP", []byte{0x30, 0x03, 0x02, 0x01}, now.Add(-time.Hour), now.Add(time.Hour))
	cert := writeFile(t, t.TempDir(), "cert.pem", certPEM, 0o644)
	_, err := certs.Load(cert, "", "")
	checkErr(t, err, certs.ErrBadPEM, cert, "qcStatements")
	if !errors.Is(err, certs.ErrQCStatement) {
		t.Errorf("cause is not ErrQCStatement: %v", err)
	}
}

func TestValidateReportsEverything(t *testing.T) {
	t.Parallel()
	g := generate(t, certs.Options{})
	b, err := certs.Load(writeGenerated(t, g).Cert, "", "")
	if err != nil {
		t.Fatal(err)
	}
	err = b.Validate(now.AddDate(2, 0, 0))
	for _, kind := range []error{certs.ErrExpired, certs.ErrNoKey, certs.ErrNoChain} {
		if !errors.Is(err, kind) {
			t.Errorf("Validate = %v, want it to include %v", err, kind)
		}
	}
	if n := len(b.Problems(now.AddDate(2, 0, 0))); n != 3 {
		t.Errorf("%d problems, want 3", n)
	}
	if !strings.Contains(err.Error(), "chain.pem") {
		t.Errorf("ErrNoChain does not say what to pass: %v", err)
	}
}

// TestValidateIntermediateChain covers a QTSP-style chain: root, issuing CA,
// certificate. bunq is sent the issuing CA with or without the root.
func TestValidateIntermediateChain(t *testing.T) {
	t.Parallel()
	mk := func(cn string, isCA bool, parent *x509.Certificate, parentKey *rsa.PrivateKey) (*x509.Certificate, *rsa.PrivateKey, []byte) {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
		tmpl := &x509.Certificate{
			SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			BasicConstraintsValid: true, IsCA: isCA,
			KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		}
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c, key, pemBlock("CERTIFICATE", der)
	}
	root, rootKey, rootPEM := mk("Root", true, nil, nil)
	inter, interKey, interPEM := mk("Issuing CA", true, root, rootKey)
	_, leafKey, leafPEM := mk("Acme AISP", false, inter, interKey)

	dir := t.TempDir()
	cert := writeFile(t, dir, "cert.pem", leafPEM, 0o644)
	key := writeFile(t, dir, "key.pem", keyPEM(t, leafKey), 0o600)
	for name, tc := range map[string]struct {
		chain []byte
		ok    bool
	}{
		"intermediate only":     {interPEM, true},
		"intermediate, root":    {append(slices.Clone(interPEM), rootPEM...), true},
		"root, intermediate":    {append(slices.Clone(rootPEM), interPEM...), true},
		"root only":             {rootPEM, false},
		"leaf and intermediate": {append(slices.Clone(leafPEM), interPEM...), true},
		"leaf and root":         {append(slices.Clone(leafPEM), rootPEM...), false},
	} {
		chain := writeFile(t, dir, strings.ReplaceAll(name, " ", "_")+".pem", tc.chain, 0o644)
		b, err := certs.Load(cert, key, chain)
		if err != nil {
			t.Fatal(err)
		}
		err = b.Validate(now)
		if tc.ok && err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if !tc.ok && !errors.Is(err, certs.ErrChain) {
			t.Errorf("%s: err = %v, want ErrChain", name, err)
		}
	}
}

func BenchmarkLoadValidate(b *testing.B) {
	g, err := certs.Generate(rand.Reader, now, certs.Options{})
	if err != nil {
		b.Fatal(err)
	}
	w, err := g.WriteFiles(b.TempDir(), certs.FileNames{}, false)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		bundle, err := certs.Load(w.Cert, w.Key, w.Chain)
		if err != nil {
			b.Fatal(err)
		}
		if err := bundle.Validate(now); err != nil {
			b.Fatal(err)
		}
	}
}
