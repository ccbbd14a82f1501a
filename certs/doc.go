// Package certs makes eIDAS-style test certificates for the bunq sandbox and
// loads and checks the certificate, key and chain the TPP registers with.
//
// bunq identifies a PSD2 provider by its QSeal certificate. In production that
// is a qualified certificate from a QTSP, and bunq reads the provider's roles
// from the ETSI TS 119 495 PSD2 QC statement inside it. The sandbox accepts a
// pseudo certificate and reads the roles from the end of its common name
// ("My App PISP AISP"). Certificates made by Generate satisfy both: the subject
// CN ends in the roles and the qcStatements extension carries the same roles,
// so one file works against the sandbox and against code that reads the QC
// statement.
//
// Naming choices (the sources are silent or conflict, see bunq-api.md §11.8):
//
//   - A CBPII (PSP_IC, card-based payment instrument issuer) role is written
//     "CBPII" at the end of the CN; "PIISP", the name some banks use, is read
//     as the same role.
//   - Test certificates default to the NCA id "SBX" (a made-up "sandbox"
//     authority), so their organizationIdentifier reads "PSDNL-SBX-…" and cannot
//     be mistaken for a real registration with DNB.
//
// Use:
//
//	g, err := certs.Generate(nil, now, certs.Options{Roles: []certs.Role{certs.RoleAISP}})
//	w, err := g.WriteFiles("./certs-out", certs.FileNames{}, false)
//
//	b, err := certs.Load(w.Cert, w.Key, w.Chain) // or the operator's real QSeal files
//	err = b.Validate(now)                        // before registering, and at start-up
//	// b.Key (a crypto.Signer) signs the PSD2 credential; b.CertPEM and
//	// b.ChainPEM go to bunq; b.DaysToExpiry(now) feeds status and metrics.
//
// Load refuses anything it cannot use: unreadable or damaged PEM, a key file
// that group or others may read, a key that is not RSA of at least 2048 bits,
// a key that does not match the certificate. Bundle.Validate then checks the
// validity window, the PSD2 roles and the chain; a chain that does not verify
// is an error, not a warning. Every error is an *Error that carries a sentinel
// (ErrBadPEM, ErrExpired, …) for errors.Is, names the file and says what to do.
//
// Time and randomness are passed in (now, an io.Reader), never read from
// package state; only RSA key generation draws from crypto/rand, as Go
// requires since 1.26.
package certs
