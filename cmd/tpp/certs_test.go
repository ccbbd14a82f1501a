package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bunqtpp/tpp/certs"
)

func runCertsCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var o, e bytes.Buffer
	err = run(context.Background(), args, &o, &e)
	return o.String(), e.String(), err
}

func TestCertsGenerateAndInspect(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "certs-out")
	stdout, stderr, err := runCertsCLI(t, "certs", "generate", "--out", out, "--roles", "AISP,PISP,CBPII",
		"--org", "Acme Fintech", "--country", "NL", "--nca-id", "DNB", "--org-id", "PSDNL-DNB-123456", "--days", "20")
	if err != nil {
		t.Fatalf("generate: %v\n%s", err, stderr)
	}
	cert, key, chain, ca := filepath.Join(out, "cert.pem"), filepath.Join(out, "key.pem"), filepath.Join(out, "chain.pem"), filepath.Join(out, "ca.pem")
	for _, want := range []string{
		cert, key, chain, ca, "mode 0600",
		"CN=Acme Fintech AISP PISP CBPII, C=NL, O=Acme Fintech, organizationIdentifier=PSDNL-DNB-123456",
		"Roles:       AISP PISP CBPII (from the PSD2 QC statement)",
		"PSD2 PSP_AI PSP_PI PSP_IC, NCA NL-DNB (De Nederlandsche Bank)",
		"(20 days left, renew soon)",
		`export TPP_MASTER_KEY="k1:$(openssl rand -hex 32)"`,
		"tpp register --env sandbox --cert " + cert + " --key " + key + " --chain " + chain + " --public-url https://",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("generate output lacks %q:\n%s", want, stdout)
		}
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key.pem: %v, mode %v", err, fi)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("out folder: %v, mode %v", err, fi)
	}
	b, err := certs.Load(cert, key, chain)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Validate(time.Now()); err != nil {
		t.Fatal(err)
	}
	// 'tpp certs inspect FILE' works like --cert FILE.
	if out, _, err := runCertsCLI(t, "certs", "inspect", cert, "--chain", chain); err != nil || !strings.Contains(out, "Check:       OK") {
		t.Errorf("certs inspect FILE: %v\n%s", err, out)
	}

	// A second run refuses to overwrite, and says how to.
	before, _ := os.ReadFile(cert)
	_, _, err = runCertsCLI(t, "certs", "generate", "--out", out)
	if !errors.Is(err, certs.ErrExists) || !strings.Contains(err.Error(), "--force") {
		t.Errorf("second generate: err = %v, want ErrExists mentioning --force", err)
	}
	if after, _ := os.ReadFile(cert); !bytes.Equal(before, after) {
		t.Error("refused generate changed cert.pem")
	}
	if _, _, err := runCertsCLI(t, "certs", "generate", "--out", out, "--force"); err != nil {
		t.Errorf("generate --force: %v", err)
	}
	if after, _ := os.ReadFile(cert); bytes.Equal(before, after) {
		t.Error("generate --force did not replace cert.pem")
	}

	stdout, _, err = runCertsCLI(t, "certs", "inspect", "--cert", cert, "--key", key, "--chain", chain)
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	for _, want := range []string{
		"Certificate: " + cert,
		"Org id:      PSDNL-SBX-", // --force made a default certificate
		"Roles:       AISP PISP (from the PSD2 QC statement)",
		"Key:         " + key + " matches the certificate (RSA 2048 bits, readable by its owner only)",
		"Chain:       " + chain + " verifies the certificate (1 certificate(s))",
		"Check:       OK",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, stdout)
		}
	}
	// 365 just after generation, 364 if a second boundary passed in between.
	if !strings.Contains(stdout, "(365 days left)") && !strings.Contains(stdout, "(364 days left)") {
		t.Errorf("inspect output lacks the days to expiry:\n%s", stdout)
	}

	// Without key and chain only the certificate is checked.
	stdout, _, err = runCertsCLI(t, "certs", "inspect", "--cert", cert)
	if err != nil {
		t.Fatalf("inspect --cert only: %v", err)
	}
	for _, want := range []string{"Key:         not checked (no --key)", "Chain:       not checked (no --chain)", "Check:       OK"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, stdout)
		}
	}

	// The key made readable by others is refused with the fix.
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = runCertsCLI(t, "certs", "inspect", "--cert", cert, "--key", key)
	if !errors.Is(err, certs.ErrKeyPermissions) || !strings.Contains(err.Error(), "chmod 600 "+key) {
		t.Errorf("inspect with a 0644 key: err = %v", err)
	}
}

func TestCertsInspectFailures(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	old := filepath.Join(dir, "old")
	other := filepath.Join(dir, "other")
	if _, stderr, err := runCertsCLI(t, "certs", "generate", "--out", old, "--not-before", "2020-01-01T00:00:00Z", "--not-after", "2021-01-01T00:00:00Z"); err != nil {
		t.Fatalf("generate: %v\n%s", err, stderr)
	}
	if _, _, err := runCertsCLI(t, "certs", "generate", "--out", other, "--roles", "PISP"); err != nil {
		t.Fatal(err)
	}

	stdout, _, err := runCertsCLI(t, "certs", "inspect", "--cert", filepath.Join(old, "cert.pem"), "--key", filepath.Join(old, "key.pem"), "--chain", filepath.Join(other, "chain.pem"))
	if !errors.Is(err, certs.ErrExpired) || !errors.Is(err, certs.ErrChain) {
		t.Fatalf("inspect expired with a foreign chain: err = %v", err)
	}
	for _, want := range []string{"Valid until: 2021-01-01T00:00:00Z (EXPIRED)", "does NOT verify", "Check:       FAILED, 2 problem(s)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, stdout)
		}
	}

	_, _, err = runCertsCLI(t, "certs", "inspect", "--cert", filepath.Join(old, "cert.pem"), "--key", filepath.Join(other, "key.pem"))
	if !errors.Is(err, certs.ErrKeyMismatch) {
		t.Errorf("inspect with another key: err = %v", err)
	}
}

func TestCertsGenerateNotes(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "o")
	future := time.Now().AddDate(0, 1, 0).UTC().Format(time.RFC3339)
	stdout, _, err := runCertsCLI(t, "certs", "generate", "--out", out, "--not-before", future, "--days", "60",
		"--ca-file", "root.pem", "--cert-file", "seal.pem", "--key-file", "seal.key", "--chain-file", "seal-chain.pem")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "NOT YET VALID") || !strings.Contains(stdout, "does not validate now") {
		t.Errorf("generate with a future start does not say so:\n%s", stdout)
	}
	for _, f := range []string{"root.pem", "seal.pem", "seal.key", "seal-chain.pem"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("custom file name: %v", err)
		}
	}
}

func TestCertsUsageAndFlagErrors(t *testing.T) {
	t.Parallel()
	_, stderr, err := runCertsCLI(t, "certs", "-h")
	if err != nil || !strings.Contains(stderr, "Usage: tpp certs <subcommand>") || !strings.Contains(stderr, "generate") || !strings.Contains(stderr, "inspect") {
		t.Errorf("certs -h: err %v, stderr:\n%s", err, stderr)
	}
	if _, _, err := runCertsCLI(t, "certs"); !errors.Is(err, errUsage) {
		t.Errorf("certs without subcommand: err = %v, want errUsage", err)
	}
	_, stderr, err = runCertsCLI(t, "certs", "generate", "-h")
	if err != nil || !strings.Contains(stderr, "-roles") || !strings.Contains(stderr, "-key-bits") || !strings.Contains(stderr, "-force") {
		t.Errorf("certs generate -h: err %v, stderr:\n%s", err, stderr)
	}
	_, stderr, err = runCertsCLI(t, "certs", "inspect", "-h")
	if err != nil || !strings.Contains(stderr, "[--cert] cert.pem") {
		t.Errorf("certs inspect -h: err %v, stderr:\n%s", err, stderr)
	}

	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string // in the error, or "" for errUsage
	}{
		{[]string{"certs", "bogus"}, ""},
		{[]string{"certs", "generate", "--nope"}, ""},
		{[]string{"certs", "generate", "extra"}, ""},
		{[]string{"certs", "inspect"}, ""},
		{[]string{"certs", "generate", "--out", dir, "--roles", "AISP,BANK"}, `--roles: unknown PSD2 role "BANK"`},
		{[]string{"certs", "generate", "--out", dir, "--roles", ""}, "--roles: no PSD2 role"},
		{[]string{"certs", "generate", "--out", dir, "--key-bits", "1024"}, "key size 1024"},
		{[]string{"certs", "generate", "--out", dir, "--country", "Netherlands"}, "two-letter"},
		{[]string{"certs", "generate", "--out", dir, "--org-id", "NL123"}, "must look like PSDNL-DNB-123456"},
		{[]string{"certs", "generate", "--out", dir, "--not-after", "tomorrow"}, "--not-after \"tomorrow\" is not an RFC 3339 time"},
		{[]string{"certs", "inspect", "--cert", filepath.Join(dir, "missing.pem")}, "missing.pem: unreadable PEM: cannot read the file"},
	} {
		_, stderr, err := runCertsCLI(t, c.args...)
		if c.want == "" {
			if !errors.Is(err, errUsage) || stderr == "" {
				t.Errorf("%v: err = %v, stderr %q; want errUsage with usage text", c.args, err, stderr)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want it to contain %q", c.args, err, c.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("failed generate runs left %d files", len(entries))
	}
}

// TestCertsGenerateRejectsBeforeWriting: every input certs generate
// refuses leaves no folder and no file behind.
func TestCertsGenerateRejectsBeforeWriting(t *testing.T) {
	t.Parallel()
	for _, bad := range [][]string{
		{"--cn", "Foo"}, {"--key-bits", "1000"}, {"--country", "X"}, {"--roles", "FOO"}, {"--days", "-3"},
		{"--org-id", "bad"}, {"--ca-file", "../x.pem"}, {"--cert-file", "ca.pem"},
		{"--not-before", "2030-01-01T00:00:00Z", "--not-after", "2029-01-01T00:00:00Z"}, {"--not-before", "soon"},
	} {
		out := filepath.Join(t.TempDir(), "certs-out")
		if _, _, err := runCertsCLI(t, append([]string{"certs", "generate", "--out", out}, bad...)...); err == nil {
			t.Errorf("%v: accepted", bad)
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%v: rejected, but %s exists (%v)", bad, out, err)
		}
	}
}
