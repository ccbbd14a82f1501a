package certs

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// ErrUsage is Command's answer to a command line it could not parse; the
// usage text has been printed.
var ErrUsage = errors.New("usage")

// Command is 'tpp certs': generate test certificates and inspect real ones.
func Command(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return ErrUsage
		}
		return nil
	}
	switch args[0] {
	case "generate":
		return commandGenerate(ctx, args[1:], stdout, stderr)
	case "inspect":
		return commandInspect(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "tpp certs: unknown subcommand %q\n\n", args[0])
	usage(stderr)
	return ErrUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Usage: tpp certs <subcommand> [flags]

Subcommands:
  generate   make a test CA and an eIDAS-style QSeal test certificate for bunq's sandbox
  inspect    show a certificate's subject, PSD2 roles and validity, and check it with its key and chain

Run 'tpp certs <subcommand> -h' for its flags.
`)
}

// parseFlags parses fs and maps -h to a nil error and bad flags to ErrUsage
// (the flag package has printed the message and usage already).
func parseFlags(fs *flag.FlagSet, args []string) (help bool, err error) {
	err = fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return true, nil
	}
	if err != nil {
		return false, ErrUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return false, ErrUsage
	}
	return false, nil
}

func commandGenerate(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tpp certs generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "./certs-out", "folder to write into (created with mode 0700)")
	roles := fs.String("roles", "AISP,PISP", "PSD2 roles, comma-separated: AISP, PISP, CBPII")
	org := fs.String("org", DefaultOrganization, "organization name (subject O; the CN is this name followed by the roles)")
	cn := fs.String("cn", "", "common name instead of \"<org> <roles>\"; must end in the roles")
	country := fs.String("country", DefaultCountry, "two-letter country code (subject C)")
	ncaID := fs.String("nca-id", DefaultNCAID, "NCA abbreviation, 2-8 letters (SBX marks a test certificate; DNB is the Dutch NCA)")
	ncaName := fs.String("nca-name", "", "NCA name in the PSD2 QC statement (default from --nca-id)")
	orgID := fs.String("org-id", "", "organizationIdentifier, e.g. PSDNL-SBX-123456 (default PSD<country>-<nca-id>-<random>)")
	days := fs.Int("days", DefaultDays, "validity in days from --not-before, or from now")
	notBefore := fs.String("not-before", "", "start of validity, RFC 3339 (default one hour ago)")
	notAfter := fs.String("not-after", "", "end of validity, RFC 3339 (overrides --days)")
	keyBits := fs.Int("key-bits", DefaultKeyBits, "RSA key size: 2048, 3072 or 4096")
	force := fs.Bool("force", false, "overwrite existing files")
	caFile := fs.String("ca-file", "ca.pem", "file name of the CA certificate")
	certFile := fs.String("cert-file", "cert.pem", "file name of the certificate")
	keyFile := fs.String("key-file", "key.pem", "file name of the private key (mode 0600)")
	chainFile := fs.String("chain-file", "chain.pem", "file name of the chain")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: tpp certs generate [flags]\n\nMakes a test CA and an eIDAS-style QSeal test certificate signed by it. bunq's\nsandbox accepts it; production needs a real QSeal from a QTSP.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}

	opts := Options{
		Organization:   *org,
		CommonName:     *cn,
		Country:        *country,
		NCAID:          *ncaID,
		NCAName:        *ncaName,
		OrganizationID: *orgID,
		Days:           *days,
		KeyBits:        *keyBits,
	}
	var err error
	if opts.Roles, err = ParseRoles(*roles); err != nil {
		return fmt.Errorf("--roles: %w", err)
	}
	if opts.NotBefore, err = parseTime("not-before", *notBefore); err != nil {
		return err
	}
	if opts.NotAfter, err = parseTime("not-after", *notAfter); err != nil {
		return err
	}

	now := time.Now().Truncate(time.Second) // whole seconds, as in the certificate
	return GenerateTestSet(now, opts, *out, FileNames{CA: *caFile, Cert: *certFile, Key: *keyFile, Chain: *chainFile}, *force, stdout)
}

func parseTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("--%s %q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", name, v)
	}
	return t, nil
}

func commandInspect(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tpp certs inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	certPath := fs.String("cert", "", "certificate PEM file (required)")
	keyPath := fs.String("key", "", "private key PEM file; checked to match the certificate and to have mode 0600")
	chainPath := fs.String("chain", "", "chain PEM file; checked to verify the certificate")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: tpp certs inspect [--cert] cert.pem [--key key.pem] [--chain chain.pem]\n\nShows the certificate and checks it (validity, PSD2 roles, key, chain).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	// 'tpp certs inspect FILE' is the same as --cert FILE.
	var pos []string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		pos, args = args[:1], args[1:]
	}
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if len(pos) == 1 {
		if *certPath != "" {
			fmt.Fprintln(stderr, "tpp certs inspect: give the certificate once, as FILE or --cert FILE")
			return ErrUsage
		}
		*certPath = pos[0]
	}
	if *certPath == "" {
		fmt.Fprintln(stderr, "tpp certs inspect: --cert is required")
		fs.Usage()
		return ErrUsage
	}
	return Inspect(time.Now(), *certPath, *keyPath, *chainPath, stdout)
}
