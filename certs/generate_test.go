package certs_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bunqtpp/tpp/certs"
)

// now is the fixed reference time of these tests.
var now = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

func generate(t testing.TB, opts certs.Options) *certs.Generated {
	t.Helper()
	g, err := certs.Generate(rand.Reader, now, opts)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return g
}

func writeGenerated(t testing.TB, g *certs.Generated) certs.Written {
	t.Helper()
	w, err := g.WriteFiles(filepath.Join(t.TempDir(), "out"), certs.FileNames{}, false)
	if err != nil {
		t.Fatalf("WriteFiles: %v", err)
	}
	return w
}

func TestGenerateLoadRoundTrip(t *testing.T) {
	t.Parallel()
	g := generate(t, certs.Options{
		Roles:          []certs.Role{certs.RoleCBPII, certs.RoleAISP, certs.RolePISP, certs.RoleAISP},
		Organization:   "Acme Fintech",
		Country:        "de",
		NCAID:          "BAFIN",
		NCAName:        "Bundesanstalt für Finanzdienstleistungsaufsicht",
		OrganizationID: "PSDDE-BAFIN-123456",
		Days:           90,
	})
	dir := filepath.Join(t.TempDir(), "nested", "out")
	w, err := g.WriteFiles(dir, certs.FileNames{}, false)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]fs.FileMode{dir: 0o700, w.Key: 0o600, w.Cert: 0o644, w.CA: 0o644, w.Chain: 0o644} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %04o, want %04o", path, got, want)
		}
	}
	if filepath.Base(w.Cert) != "cert.pem" || filepath.Base(w.Key) != "key.pem" || filepath.Base(w.Chain) != "chain.pem" || filepath.Base(w.CA) != "ca.pem" {
		t.Errorf("default file names: %+v", w)
	}

	b, err := certs.Load(w.Cert, w.Key, w.Chain)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if err := b.Validate(now); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	wantRoles := []certs.Role{certs.RoleAISP, certs.RolePISP, certs.RoleCBPII}
	if !slices.Equal(b.Roles, wantRoles) || !slices.Equal(b.CommonNameRoles, wantRoles) {
		t.Errorf("roles %v, CN roles %v, want %v", b.Roles, b.CommonNameRoles, wantRoles)
	}
	if cn := b.Leaf.Subject.CommonName; cn != "Acme Fintech AISP PISP CBPII" {
		t.Errorf("CN = %q", cn)
	}
	if b.OrganizationID != "PSDDE-BAFIN-123456" {
		t.Errorf("OrganizationID = %q", b.OrganizationID)
	}
	if got, want := b.Subject(), "CN=Acme Fintech AISP PISP CBPII, C=DE, O=Acme Fintech, organizationIdentifier=PSDDE-BAFIN-123456"; got != want {
		t.Errorf("Subject() = %q, want %q", got, want)
	}
	if b.QC == nil || !b.QC.Compliance || !b.QC.ESeal() || b.QC.PSD2 == nil {
		t.Fatalf("QC statements = %+v", b.QC)
	}
	if p := b.QC.PSD2; p.NCAID != "DE-BAFIN" || p.NCAName != "Bundesanstalt für Finanzdienstleistungsaufsicht" {
		t.Errorf("PSD2 statement = %+v", p)
	}
	if d := b.DaysToExpiry(now); d != 90 {
		t.Errorf("DaysToExpiry(now) = %d, want 90", d)
	}
	if d := b.DaysToExpiry(now.Add(time.Second)); d != 89 {
		t.Errorf("DaysToExpiry(now+1s) = %d, want 89", d)
	}
	if !b.Leaf.NotBefore.Equal(now.Add(-time.Hour)) {
		t.Errorf("NotBefore = %v, want an hour before now", b.Leaf.NotBefore)
	}
	if b.CertPEM != string(g.CertPEM) || b.ChainPEM != string(g.ChainPEM) || !bytes.Equal(g.ChainPEM, g.CAPEM) {
		t.Error("CertPEM/ChainPEM differ from what was generated")
	}
	if !strings.HasSuffix(b.ChainPEM, "-----END CERTIFICATE-----\n") {
		t.Errorf("ChainPEM does not end in one newline: %q", b.ChainPEM[len(b.ChainPEM)-30:])
	}
	if !b.Key.Equal(g.Key) {
		t.Error("loaded key differs from generated key")
	}

	// The key is a crypto.Signer whose PKCS#1 v1.5 signature the
	// certificate verifies: what bunq checks at registration.
	var signer crypto.Signer = b.Key
	digest := sha256.Sum256([]byte("client public key PEM\ninstallation-token"))
	sig, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if err := rsa.VerifyPKCS1v15(b.Leaf.PublicKey.(*rsa.PublicKey), crypto.SHA256, digest[:], sig); err != nil {
		t.Errorf("certificate does not verify the key's signature: %v", err)
	}
	if b.Leaf.IsCA || !g.CA.IsCA || b.Leaf.CheckSignatureFrom(g.CA) != nil {
		t.Error("the certificate is not an end-entity certificate signed by the CA")
	}
}

func TestGenerateDefaults(t *testing.T) {
	t.Parallel()
	g := generate(t, certs.Options{})
	b, err := certs.Load(writeGenerated(t, g).Cert, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if cn := b.Leaf.Subject.CommonName; cn != "Demo Fintech B.V. AISP PISP" {
		t.Errorf("default CN = %q", cn)
	}
	if !strings.HasPrefix(b.OrganizationID, "PSDNL-SBX-") || len(b.OrganizationID) != len("PSDNL-SBX-")+8 {
		t.Errorf("default organization id = %q", b.OrganizationID)
	}
	if b.QC.PSD2.NCAID != "NL-SBX" {
		t.Errorf("default NCA id = %q", b.QC.PSD2.NCAID)
	}
	if got := g.Key.N.BitLen(); got != 2048 {
		t.Errorf("default key has %d bits", got)
	}
	if d := b.DaysToExpiry(now); d != 365 {
		t.Errorf("default validity: %d days", d)
	}
	// Two generations never share an organization id or serial number.
	g2 := generate(t, certs.Options{})
	if g.Leaf.SerialNumber.Cmp(g2.Leaf.SerialNumber) == 0 || g.Leaf.Subject.String() == g2.Leaf.Subject.String() {
		t.Error("two generations gave the same serial number or subject")
	}
}

func TestGenerateRandomSource(t *testing.T) {
	t.Parallel()
	// The injected reader drives the organization id (read first) and the serial numbers.
	src := bytes.NewReader(append([]byte{0xde, 0xad, 0xbe, 0xef}, bytes.Repeat([]byte{7}, 256)...))
	g, err := certs.Generate(src, now, certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := certs.Load(writeGenerated(t, g).Cert, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if b.OrganizationID != "PSDNL-SBX-DEADBEEF" {
		t.Errorf("organization id = %q, want PSDNL-SBX-DEADBEEF", b.OrganizationID)
	}
	if _, err := certs.Generate(bytes.NewReader(nil), now, certs.Options{}); err == nil {
		t.Error("Generate with an empty random source succeeded")
	}
}

func TestGenerate3072(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("3072-bit key generation is slow")
	}
	g := generate(t, certs.Options{KeyBits: 3072})
	if g.Key.N.BitLen() != 3072 || g.CAKey.N.BitLen() != 3072 {
		t.Errorf("key bits %d / CA %d", g.Key.N.BitLen(), g.CAKey.N.BitLen())
	}
}

func TestGenerateExplicitValidity(t *testing.T) {
	t.Parallel()
	nb := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	na := time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
	g := generate(t, certs.Options{NotBefore: nb, NotAfter: na, Days: 9999})
	if !g.Leaf.NotBefore.Equal(nb) || !g.Leaf.NotAfter.Equal(na) {
		t.Errorf("validity %v .. %v", g.Leaf.NotBefore, g.Leaf.NotAfter)
	}
	if !g.CA.NotAfter.Equal(na) || g.CA.NotBefore.After(nb) {
		t.Errorf("CA validity %v .. %v does not cover the certificate", g.CA.NotBefore, g.CA.NotAfter)
	}
	// With only a start, the days count from that start.
	g = generate(t, certs.Options{NotBefore: nb, Days: 10})
	if want := nb.AddDate(0, 0, 10); !g.Leaf.NotAfter.Equal(want) {
		t.Errorf("NotAfter = %v, want %v", g.Leaf.NotAfter, want)
	}
}

func TestGenerateOptionErrors(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 65)
	cases := []struct {
		name string
		opts certs.Options
		want string
	}{
		{"unknown role", certs.Options{Roles: []certs.Role{"BANK"}}, `PSD2 role "BANK" cannot be used`},
		{"bank role", certs.Options{Roles: []certs.Role{certs.RoleAISP, certs.RoleASPSP}}, `PSD2 role "ASPSP" cannot be used`},
		{"bad country", certs.Options{Country: "NLD"}, "two-letter"},
		{"digit country", certs.Options{Country: "N1"}, "two-letter"},
		{"short NCA id", certs.Options{NCAID: "D"}, "2 to 8 letters"},
		{"long NCA id", certs.Options{NCAID: "ABCDEFGHI"}, "2 to 8 letters"},
		{"NCA id with digit", certs.Options{NCAID: "DNB1"}, "2 to 8 letters"},
		{"org id without PSD", certs.Options{OrganizationID: "NL-DNB-123"}, "must look like PSDNL-DNB-123456"},
		{"org id without psp id", certs.Options{OrganizationID: "PSDNL-DNB-"}, "must look like"},
		{"org id lower NCA", certs.Options{OrganizationID: "PSDNL-dnb-1"}, "must look like"},
		{"org id with space", certs.Options{OrganizationID: "PSDNL-DNB-1 2"}, "must look like"},
		{"org id bad country", certs.Options{OrganizationID: "PSDN1-DNB-1"}, "must look like"},
		{"long organization", certs.Options{Organization: long}, "organization name has 65 characters"},
		{"CN too long", certs.Options{Organization: strings.Repeat("y", 55), Roles: []certs.Role{certs.RoleAISP, certs.RolePISP}}, "bunq allows 64"},
		{"CN without roles", certs.Options{CommonName: "Acme Fintech"}, `must end in the roles "AISP PISP"`},
		{"CN with other roles", certs.Options{CommonName: "Acme AISP", Roles: []certs.Role{certs.RoleAISP, certs.RolePISP}}, "must end in the roles"},
		{"CN only roles", certs.Options{CommonName: "AISP PISP"}, "holds only roles"},
		{"negative days", certs.Options{Days: -1}, "out of range"},
		{"too many days", certs.Options{Days: 3651}, "out of range"},
		{"after before before", certs.Options{NotBefore: now, NotAfter: now.Add(-time.Second)}, "is not after not-before"},
		{"1024-bit key", certs.Options{KeyBits: 1024}, "key size 1024 is not supported"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := certs.Generate(rand.Reader, now, c.opts)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestGenerateCustomCommonName(t *testing.T) {
	t.Parallel()
	g := generate(t, certs.Options{CommonName: "Acme 7f3c PIISP", Roles: []certs.Role{certs.RoleCBPII}})
	if g.Leaf.Subject.CommonName != "Acme 7f3c PIISP" {
		t.Errorf("CN = %q", g.Leaf.Subject.CommonName)
	}
}

func TestWriteFilesOverwrite(t *testing.T) {
	t.Parallel()
	g1 := generate(t, certs.Options{})
	g2 := generate(t, certs.Options{})
	dir := t.TempDir()
	names := certs.FileNames{CA: "my-ca.pem", Cert: "qseal.pem", Key: "qseal.key", Chain: "qseal-chain.pem"}

	// A key file left readable by an earlier tool must not keep its mode.
	if err := os.WriteFile(filepath.Join(dir, "qseal.key"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := g1.WriteFiles(dir, names, false); !errors.Is(err, certs.ErrExists) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("WriteFiles over an existing key: err = %v, want ErrExists mentioning --force", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "qseal.pem")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused WriteFiles still wrote the certificate (stat err %v)", err)
	}
	w, err := g1.WriteFiles(dir, names, true)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(w.Key); fi.Mode().Perm() != 0o600 {
		t.Errorf("overwritten key has mode %04o, want 0600", fi.Mode().Perm())
	}
	if filepath.Base(w.CA) != "my-ca.pem" || filepath.Base(w.Chain) != "qseal-chain.pem" {
		t.Errorf("custom names not used: %+v", w)
	}
	if _, err := g2.WriteFiles(dir, names, false); !errors.Is(err, certs.ErrExists) {
		t.Fatalf("second WriteFiles: err = %v, want ErrExists", err)
	}
	if got, _ := os.ReadFile(w.Cert); !bytes.Equal(got, g1.CertPEM) {
		t.Error("refused WriteFiles changed the certificate")
	}
	if _, err := g2.WriteFiles(dir, names, true); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(w.Cert); !bytes.Equal(got, g2.CertPEM) {
		t.Error("WriteFiles with overwrite did not replace the certificate")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 4 {
		t.Errorf("folder holds %d entries, want 4 (no temporary files left)", len(entries))
	}

	for _, bad := range []certs.FileNames{{Key: "../key.pem"}, {Cert: "a/b.pem"}, {Cert: "same.pem", Chain: "same.pem"}} {
		if _, err := g1.WriteFiles(t.TempDir(), bad, false); err == nil {
			t.Errorf("WriteFiles(%+v) succeeded", bad)
		}
	}
}

func BenchmarkGenerate(b *testing.B) {
	for _, bits := range []int{2048, 3072} {
		b.Run(fmt.Sprintf("rsa%d", bits), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := certs.Generate(rand.Reader, now, certs.Options{KeyBits: bits}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
