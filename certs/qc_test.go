package certs_test

import (
	"encoding/asn1"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/bunqtpp/tpp/certs"
	"github.com/bunqtpp/tpp/internal/testenv"
)

func TestQCStatementsRoundTrip(t *testing.T) {
	t.Parallel()
	cases := []certs.QCStatements{
		{PSD2: &certs.PSD2Statement{Roles: []certs.Role{certs.RoleAISP}, NCAName: "De Nederlandsche Bank", NCAID: "NL-DNB"}},
		{Compliance: true, SSCD: true, Types: []asn1.ObjectIdentifier{{0, 4, 0, 1862, 1, 6, 2}},
			PSD2: &certs.PSD2Statement{Roles: []certs.Role{certs.RoleAISP, certs.RolePISP, certs.RoleCBPII, certs.RoleASPSP}, NCAName: "Bundesanstalt für Finanzdienstleistungsaufsicht", NCAID: "DE-BAFIN"}},
		{Compliance: true, Types: []asn1.ObjectIdentifier{{0, 4, 0, 1862, 1, 6, 1}}},
	}
	for _, q := range cases {
		der, err := certs.MarshalQCStatements(q)
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", q, err)
		}
		got, err := certs.ParseQCStatements(der)
		if err != nil {
			t.Fatalf("Parse(Marshal(%+v)): %v", q, err)
		}
		if !reflect.DeepEqual(*got, q) {
			t.Errorf("round trip:\n got %+v\nwant %+v", *got, q)
		}
		if got.ESeal() != slices.ContainsFunc(q.Types, asn1.ObjectIdentifier{0, 4, 0, 1862, 1, 6, 2}.Equal) {
			t.Errorf("ESeal() = %v for types %v", got.ESeal(), q.Types)
		}
	}
}

// TestQCStatementsStructure decodes the DER by hand against the ASN.1 of
// RFC 3739 and ETSI TS 119 495, independently of the package's own parser.
func TestQCStatementsStructure(t *testing.T) {
	t.Parallel()
	der, err := certs.MarshalQCStatements(certs.QCStatements{
		Compliance: true,
		Types:      []asn1.ObjectIdentifier{{0, 4, 0, 1862, 1, 6, 2}},
		PSD2:       &certs.PSD2Statement{Roles: []certs.Role{certs.RolePISP, certs.RoleAISP}, NCAName: "Sandbox", NCAID: "NL-SBX"},
	})
	if err != nil {
		t.Fatal(err)
	}
	// QCStatements ::= SEQUENCE OF QCStatement
	var stmts []asn1.RawValue
	if rest, err := asn1.Unmarshal(der, &stmts); err != nil || len(rest) > 0 {
		t.Fatalf("outer SEQUENCE OF: %v, %d trailing", err, len(rest))
	}
	if len(stmts) != 3 {
		t.Fatalf("%d statements, want 3", len(stmts))
	}
	ids := make([]string, len(stmts))
	var psd2Info asn1.RawValue
	for i, s := range stmts {
		if s.Tag != asn1.TagSequence || !s.IsCompound {
			t.Fatalf("statement %d is not a SEQUENCE", i)
		}
		var id asn1.ObjectIdentifier
		rest, err := asn1.Unmarshal(s.Bytes, &id)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id.String()
		if id.String() == "0.4.0.1862.1.1" && len(rest) != 0 {
			t.Error("QcCompliance has statementInfo; it must have none")
		}
		if id.String() == "0.4.0.19495.2" {
			if _, err := asn1.Unmarshal(rest, &psd2Info); err != nil {
				t.Fatal(err)
			}
		}
	}
	if want := []string{"0.4.0.1862.1.1", "0.4.0.1862.1.6", "0.4.0.19495.2"}; !slices.Equal(ids, want) {
		t.Errorf("statement ids %v, want %v", ids, want)
	}
	// PSD2QcType ::= SEQUENCE { rolesOfPSP SEQUENCE OF SEQUENCE {OID, UTF8String}, nCAName UTF8String, nCAId UTF8String }
	var fields []asn1.RawValue
	if _, err := asn1.Unmarshal(psd2Info.FullBytes, &fields); err != nil {
		t.Fatal(err)
	}
	if len(fields) != 3 || fields[0].Tag != asn1.TagSequence || fields[1].Tag != asn1.TagUTF8String || fields[2].Tag != asn1.TagUTF8String {
		t.Fatalf("PSD2QcType fields %+v", fields)
	}
	if string(fields[1].Bytes) != "Sandbox" || string(fields[2].Bytes) != "NL-SBX" {
		t.Errorf("NCA name/id = %q/%q", fields[1].Bytes, fields[2].Bytes)
	}
	var roles []asn1.RawValue
	if _, err := asn1.Unmarshal(fields[0].FullBytes, &roles); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range roles {
		var oid asn1.ObjectIdentifier
		rest, err := asn1.Unmarshal(r.Bytes, &oid)
		if err != nil {
			t.Fatal(err)
		}
		var name asn1.RawValue
		if _, err := asn1.Unmarshal(rest, &name); err != nil || name.Tag != asn1.TagUTF8String {
			t.Fatalf("role name is not a UTF8String: %+v, %v", name, err)
		}
		got = append(got, oid.String()+"="+string(name.Bytes))
	}
	// Marshal keeps the order it was given.
	if want := []string{"0.4.0.19495.1.2=PSP_PI", "0.4.0.19495.1.3=PSP_AI"}; !slices.Equal(got, want) {
		t.Errorf("roles %v, want %v", got, want)
	}
}

// psd2DER builds a qcStatements value with one PSD2 statement from raw parts.
func psd2DER(t *testing.T, info any) []byte {
	t.Helper()
	infoDER, err := asn1.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	der, err := asn1.Marshal([]struct {
		ID   asn1.ObjectIdentifier
		Info asn1.RawValue
	}{{asn1.ObjectIdentifier{0, 4, 0, 19495, 2}, asn1.RawValue{FullBytes: infoDER}}})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

type rawRole struct {
	OID  asn1.ObjectIdentifier
	Name string
}

type rawPSD2 struct {
	Roles   []rawRole
	NCAName string
	NCAID   string
}

func TestParseQCStatementsPrintableString(t *testing.T) {
	t.Parallel()
	// Some QTSPs wrote PrintableString where the standard says UTF8String.
	der := psd2DER(t, rawPSD2{Roles: []rawRole{{asn1.ObjectIdentifier{0, 4, 0, 19495, 1, 3}, "PSP_AI"}}, NCAName: "DNB", NCAID: "NL-DNB"})
	q, err := certs.ParseQCStatements(der)
	if err != nil {
		t.Fatal(err)
	}
	if q.PSD2 == nil || !slices.Equal(q.PSD2.Roles, []certs.Role{certs.RoleAISP}) || q.PSD2.NCAID != "NL-DNB" {
		t.Errorf("parsed %+v", q.PSD2)
	}
}

func TestParseQCStatementsRejects(t *testing.T) {
	t.Parallel()
	good, err := certs.MarshalQCStatements(certs.QCStatements{Compliance: true})
	if err != nil {
		t.Fatal(err)
	}
	ai := asn1.ObjectIdentifier{0, 4, 0, 19495, 1, 3}
	cases := []struct {
		name string
		der  []byte
		want string
	}{
		{"empty", nil, "missing"},
		{"garbage", []byte{0x01, 0x02, 0x03}, "malformed"},
		{"trailing bytes", append(slices.Clone(good), 0x00), "trailing"},
		{"unknown role OID", psd2DER(t, rawPSD2{Roles: []rawRole{{asn1.ObjectIdentifier{0, 4, 0, 19495, 1, 9}, "PSP_XX"}}, NCAName: "x", NCAID: "NL-X"}), "unknown PSD2 role OID 0.4.0.19495.1.9"},
		{"role name does not match OID", psd2DER(t, rawPSD2{Roles: []rawRole{{ai, "PSP_PI"}}, NCAName: "x", NCAID: "NL-X"}), `is PSP_AI but is named "PSP_PI"`},
		{"no roles", psd2DER(t, rawPSD2{NCAName: "x", NCAID: "NL-X"}), "lists no role"},
		{"PSD2 info not a sequence", psd2DER(t, 42), "PSD2 QC statement"},
	}
	for _, c := range cases {
		_, err := certs.ParseQCStatements(c.der)
		if !errors.Is(err, certs.ErrQCStatement) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want ErrQCStatement containing %q", c.name, err, c.want)
		}
	}
}

func TestMarshalQCStatementsRejects(t *testing.T) {
	t.Parallel()
	for name, q := range map[string]certs.QCStatements{
		"nothing":      {},
		"no roles":     {PSD2: &certs.PSD2Statement{NCAName: "x", NCAID: "NL-X"}},
		"no NCA":       {PSD2: &certs.PSD2Statement{Roles: []certs.Role{certs.RoleAISP}}},
		"unknown role": {PSD2: &certs.PSD2Statement{Roles: []certs.Role{"BANK"}, NCAName: "x", NCAID: "NL-X"}},
	} {
		if _, err := certs.MarshalQCStatements(q); err == nil {
			t.Errorf("%s: Marshal succeeded", name)
		}
	}
}

// TestOpenSSLReadsCertificate has OpenSSL, an independent implementation,
// decode the generated certificate and its QC statement, and verify the chain.
func TestOpenSSLReadsCertificate(t *testing.T) {
	t.Parallel()
	openssl := testenv.LookPath(t, "independent check of the certificate encoding", "openssl")
	g := generate(t, certs.Options{Roles: []certs.Role{certs.RoleAISP, certs.RolePISP, certs.RoleCBPII}, NCAID: "DNB", OrganizationID: "PSDNL-DNB-R123456"})
	w := writeGenerated(t, g)

	text := runOpenSSL(t, openssl, "x509", "-in", w.Cert, "-noout", "-text")
	for _, want := range []string{
		"CN = Demo Fintech B.V. AISP PISP CBPII",
		"organizationIdentifier = PSDNL-DNB-R123456",
		"Digital Signature, Non Repudiation",
		"CA:FALSE",
		"Policy: 0.4.0.194112.1.1",
		"PSP_AI", "PSP_PI", "PSP_IC", "De Nederlandsche Bank", "NL-DNB",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("openssl x509 -text lacks %q:\n%s", want, text)
		}
	}

	var ext []byte
	for _, e := range g.Leaf.Extensions {
		if e.Id.String() == "1.3.6.1.5.5.7.1.3" {
			ext = e.Value
			if e.Critical {
				t.Error("qcStatements is critical; it must not be")
			}
		}
	}
	if ext == nil {
		t.Fatal("no qcStatements extension")
	}
	extFile := filepath.Join(t.TempDir(), "qc.der")
	if err := os.WriteFile(extFile, ext, 0o600); err != nil {
		t.Fatal(err)
	}
	parsed := runOpenSSL(t, openssl, "asn1parse", "-inform", "DER", "-in", extFile)
	var lines []string
	for l := range strings.Lines(parsed) {
		// "  36:d=2  hl=2 l=   6 prim: OBJECT            :0.4.0.19495.2"
		_, v, ok := strings.Cut(l, "prim:")
		if ok {
			lines = append(lines, strings.Join(strings.Fields(v), " "))
		}
	}
	want := []string{
		"OBJECT :0.4.0.1862.1.1",
		"OBJECT :0.4.0.1862.1.6", "OBJECT :0.4.0.1862.1.6.2",
		"OBJECT :0.4.0.19495.2",
		"OBJECT :0.4.0.19495.1.3", "UTF8STRING :PSP_AI",
		"OBJECT :0.4.0.19495.1.2", "UTF8STRING :PSP_PI",
		"OBJECT :0.4.0.19495.1.4", "UTF8STRING :PSP_IC",
		"UTF8STRING :De Nederlandsche Bank", "UTF8STRING :NL-DNB",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("openssl asn1parse of qcStatements:\n got %q\nwant %q\n%s", lines, want, parsed)
	}

	if out := runOpenSSL(t, openssl, "verify", "-CAfile", w.Chain, w.Cert); !strings.Contains(out, ": OK") {
		t.Errorf("openssl verify: %s", out)
	}
	// openssl must also read the PKCS#8 key and find it matches.
	certMod := runOpenSSL(t, openssl, "x509", "-in", w.Cert, "-noout", "-modulus")
	keyMod := runOpenSSL(t, openssl, "rsa", "-in", w.Key, "-noout", "-modulus")
	if certMod != keyMod {
		t.Errorf("openssl: certificate modulus %q, key modulus %q", certMod, keyMod)
	}
}

func runOpenSSL(t *testing.T, openssl string, args ...string) string {
	t.Helper()
	out, err := exec.Command(openssl, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestRolesFromCommonName(t *testing.T) {
	t.Parallel()
	A, P, C := certs.RoleAISP, certs.RolePISP, certs.RoleCBPII
	cases := []struct {
		cn   string
		want []certs.Role
	}{
		{"My App PISP AISP", []certs.Role{A, P}},
		{"My App AISP", []certs.Role{A}},
		{"Acme Fintech AISP PISP CBPII", []certs.Role{A, P, C}},
		{"Acme PIISP", []certs.Role{C}},
		{"Acme AISP AISP", []certs.Role{A}},
		{"  Acme   PISP  ", []certs.Role{P}},
		{"AISP PISP", []certs.Role{A, P}},
		{"My App", nil},
		{"AISP My App", nil},
		{"My App aisp", nil},
		{"My App AISPX", nil},
		{"My App-AISP", nil},
		{"My App PISP 3f2a", nil},
		{"", nil},
	}
	for _, c := range cases {
		if got := certs.RolesFromCommonName(c.cn); !slices.Equal(got, c.want) {
			t.Errorf("RolesFromCommonName(%q) = %v, want %v", c.cn, got, c.want)
		}
	}
}

func TestParseRoles(t *testing.T) {
	t.Parallel()
	got, err := certs.ParseRoles(" cbpii, AISP,psp_pi,,PIISP ")
	if err != nil {
		t.Fatal(err)
	}
	if want := []certs.Role{certs.RoleAISP, certs.RolePISP, certs.RoleCBPII}; !slices.Equal(got, want) {
		t.Errorf("ParseRoles = %v, want %v", got, want)
	}
	for _, bad := range []string{"", " , ", "AISP,BANK", "AIS", "ASPSP", "psp_as"} {
		if _, err := certs.ParseRoles(bad); err == nil {
			t.Errorf("ParseRoles(%q) succeeded", bad)
		}
	}
	for r, want := range map[certs.Role][2]string{
		certs.RoleASPSP: {"PSP_AS", "0.4.0.19495.1.1"},
		certs.RolePISP:  {"PSP_PI", "0.4.0.19495.1.2"},
		certs.RoleAISP:  {"PSP_AI", "0.4.0.19495.1.3"},
		certs.RoleCBPII: {"PSP_IC", "0.4.0.19495.1.4"},
	} {
		if r.ETSIName() != want[0] || r.OID().String() != want[1] {
			t.Errorf("%s: ETSI name %q, OID %s; want %v", r, r.ETSIName(), r.OID(), want)
		}
	}
	// OID returns a copy: changing it changes nothing for the next caller.
	o := certs.RoleAISP.OID()
	o[0] = 9
	if certs.RoleAISP.OID().String() != "0.4.0.19495.1.3" {
		t.Error("Role.OID shares its table")
	}
}
