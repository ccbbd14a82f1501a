package certs

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Describe writes what an operator wants to see of the certificate:
// subject, issuer, roles, QC statements and validity at now.
func (b *Bundle) Describe(w io.Writer, now time.Time) {
	fmt.Fprintf(w, "Subject:     %s\n", b.Subject())
	fmt.Fprintf(w, "Issuer:      %s\n", FormatName(b.Leaf.Issuer))
	if b.OrganizationID != "" {
		fmt.Fprintf(w, "Org id:      %s\n", b.OrganizationID)
	}
	src := "end of the common name"
	if b.QC != nil && b.QC.PSD2 != nil {
		src = "PSD2 QC statement"
	}
	if len(b.Roles) == 0 {
		fmt.Fprintln(w, "Roles:       none")
	} else {
		fmt.Fprintf(w, "Roles:       %s (from the %s)\n", JoinRoles(b.Roles), src)
	}
	if b.QC != nil {
		var parts []string
		if b.QC.Compliance {
			parts = append(parts, "QcCompliance")
		}
		if b.QC.ESeal() {
			parts = append(parts, "QcType eSeal")
		}
		if p := b.QC.PSD2; p != nil {
			names := make([]string, len(p.Roles))
			for i, r := range p.Roles {
				names[i] = r.ETSIName()
			}
			parts = append(parts, fmt.Sprintf("PSD2 %s, NCA %s (%s)", strings.Join(names, " "), p.NCAID, p.NCAName))
		}
		fmt.Fprintf(w, "QC:          %s\n", strings.Join(parts, "; "))
	}
	fmt.Fprintf(w, "Valid from:  %s\n", b.Leaf.NotBefore.UTC().Format(time.RFC3339))
	days := b.DaysToExpiry(now)
	state := fmt.Sprintf("%d days left", days)
	switch {
	case now.After(b.Leaf.NotAfter):
		state = "EXPIRED"
	case now.Before(b.Leaf.NotBefore):
		state = "NOT YET VALID"
	case days < 30:
		state += ", renew soon"
	}
	fmt.Fprintf(w, "Valid until: %s (%s)\n", b.Leaf.NotAfter.UTC().Format(time.RFC3339), state)
}

// Check writes whether the key (loaded from keyPath) and the chain (from
// chainPath) match the certificate, and returns its problems at now; an
// empty path means that part was not asked for, which is no problem.
func (b *Bundle) Check(w io.Writer, now time.Time, keyPath, chainPath string) error {
	switch {
	case keyPath == "":
		fmt.Fprintln(w, "Key:         not checked (no --key)")
	default:
		fmt.Fprintf(w, "Key:         %s matches the certificate (RSA %d bits, readable by its owner only)\n", keyPath, b.Key.N.BitLen())
	}

	var problems []error
	chainOK := chainPath != ""
	for _, p := range b.Problems(now) {
		// A missing key or chain was a choice of the caller, not a fault.
		if errors.Is(p, ErrNoKey) || errors.Is(p, ErrNoChain) {
			continue
		}
		if errors.Is(p, ErrChain) {
			chainOK = false
		}
		problems = append(problems, p)
	}
	switch {
	case chainPath == "":
		fmt.Fprintln(w, "Chain:       not checked (no --chain)")
	case chainOK:
		fmt.Fprintf(w, "Chain:       %s verifies the certificate (%d certificate(s))\n", chainPath, len(b.Chain))
	default:
		fmt.Fprintf(w, "Chain:       %s does NOT verify the certificate\n", chainPath)
	}
	if len(problems) > 0 {
		fmt.Fprintf(w, "Check:       FAILED, %d problem(s)\n", len(problems))
		return errors.Join(problems...)
	}
	fmt.Fprintln(w, "Check:       OK")
	return nil
}
