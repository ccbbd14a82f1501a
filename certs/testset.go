package certs

import (
	"fmt"
	"io"
	"time"
)

// GenerateTestSet is 'tpp certs generate': it makes a test CA and a
// QSeal-style certificate from opts, writes them into dir, loads them back
// (so a file that would not load is caught here) and prints what was
// written, the certificate, and the next step.
func GenerateTestSet(now time.Time, opts Options, dir string, names FileNames, overwrite bool, stdout io.Writer) error {
	g, err := Generate(nil, now, opts)
	if err != nil {
		return err
	}
	w, err := g.WriteFiles(dir, names, overwrite)
	if err != nil {
		return err
	}
	b, err := Load(w.Cert, w.Key, w.Chain)
	if err != nil {
		return fmt.Errorf("checking the written files: %w", err)
	}

	fmt.Fprintf(stdout, "Wrote test certificates to %s:\n", dir)
	fmt.Fprintf(stdout, "  %-28s test CA certificate\n", w.CA)
	fmt.Fprintf(stdout, "  %-28s QSeal-style certificate\n", w.Cert)
	fmt.Fprintf(stdout, "  %-28s private key (mode 0600)\n", w.Key)
	fmt.Fprintf(stdout, "  %-28s chain to send to bunq (the CA certificate)\n", w.Chain)
	fmt.Fprintln(stdout)
	b.Describe(stdout, now)
	if err := b.Validate(now); err != nil {
		// Possible only with a validity window chosen to lie outside now.
		fmt.Fprintf(stdout, "\nNote: the certificate does not validate now:\n%v\n", err)
	}
	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, "This is a test certificate: bunq's sandbox accepts it; production needs a QSeal from a QTSP.")
	fmt.Fprintln(stdout, "Next step: register this TPP with bunq's sandbox (for 'tpp sandbox', --env is its API base URL,")
	fmt.Fprintln(stdout, "such as http://127.0.0.1:5000). The master key seals every secret at rest: keep it.")
	fmt.Fprintln(stdout, `  export TPP_MASTER_KEY="k1:$(openssl rand -hex 32)"`)
	fmt.Fprintf(stdout, "  tpp register --env sandbox --cert %s --key %s --chain %s --public-url https://tpp.example.com\n", w.Cert, w.Key, w.Chain)
	return nil
}

// Inspect is 'tpp certs inspect': it loads the certificate (with its key
// and chain, when given), describes it and checks it.
func Inspect(now time.Time, certPath, keyPath, chainPath string, stdout io.Writer) error {
	b, err := Load(certPath, keyPath, chainPath)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Certificate: %s\n", certPath)
	b.Describe(stdout, now)
	return b.Check(stdout, now, keyPath, chainPath)
}
