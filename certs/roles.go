package certs

import (
	"encoding/asn1"
	"fmt"
	"slices"
	"strings"
)

// Role is a PSD2 role of a payment service provider, named as this project
// and bunq's sandbox name it.
type Role string

// The PSD2 roles of ETSI TS 119 495 §5.1.
const (
	RoleASPSP Role = "ASPSP" // PSP_AS: account servicing (a bank)
	RolePISP  Role = "PISP"  // PSP_PI: payment initiation
	RoleAISP  Role = "AISP"  // PSP_AI: account information
	RoleCBPII Role = "CBPII" // PSP_IC: card-based payment instrument issuing
)

// roleInfo is the constant table behind Role: its ETSI name and OID.
var roleInfo = []struct {
	role Role
	etsi string
	oid  asn1.ObjectIdentifier
}{
	{RoleASPSP, "PSP_AS", asn1.ObjectIdentifier{0, 4, 0, 19495, 1, 1}},
	{RolePISP, "PSP_PI", asn1.ObjectIdentifier{0, 4, 0, 19495, 1, 2}},
	{RoleAISP, "PSP_AI", asn1.ObjectIdentifier{0, 4, 0, 19495, 1, 3}},
	{RoleCBPII, "PSP_IC", asn1.ObjectIdentifier{0, 4, 0, 19495, 1, 4}},
}

// ETSIName returns the role's name in the QC statement, such as "PSP_AI".
func (r Role) ETSIName() string {
	for _, ri := range roleInfo {
		if ri.role == r {
			return ri.etsi
		}
	}
	return ""
}

// OID returns the role's object identifier (0.4.0.19495.1.x).
func (r Role) OID() asn1.ObjectIdentifier {
	for _, ri := range roleInfo {
		if ri.role == r {
			return slices.Clone(ri.oid)
		}
	}
	return nil
}

func (r Role) valid() bool { return r.ETSIName() != "" }

// ParseRole reads a TPP role by its project name ("AISP"), its alias "PIISP"
// (for CBPII) or its ETSI name ("PSP_AI"), in any case. The bank role ASPSP
// is refused: this is a TPP.
func ParseRole(s string) (Role, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	if u == "PIISP" {
		return RoleCBPII, nil
	}
	for _, ri := range roleInfo {
		if u == string(ri.role) || u == ri.etsi {
			if ri.role == RoleASPSP {
				return "", fmt.Errorf("%q is the role of a bank; a TPP uses AISP, PISP or CBPII", s)
			}
			return ri.role, nil
		}
	}
	return "", fmt.Errorf("unknown PSD2 role %q; use AISP, PISP or CBPII", s)
}

// ParseRoles reads a comma-separated list such as "AISP,PISP". The result is
// in canonical order without duplicates.
func ParseRoles(s string) ([]Role, error) {
	var roles []Role
	for item := range strings.SplitSeq(s, ",") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		r, err := ParseRole(item)
		if err != nil {
			return nil, err
		}
		roles = append(roles, r)
	}
	if len(roles) == 0 {
		return nil, fmt.Errorf("no PSD2 role given; use for example \"AISP,PISP\"")
	}
	return canonicalRoles(roles), nil
}

// canonicalRoles sorts roles in the order AISP, PISP, CBPII, ASPSP and drops
// duplicates, so that equal sets compare equal.
func canonicalRoles(roles []Role) []Role {
	order := func(r Role) int {
		switch r {
		case RoleAISP:
			return 0
		case RolePISP:
			return 1
		case RoleCBPII:
			return 2
		case RoleASPSP:
			return 3
		}
		return 4
	}
	out := slices.Clone(roles)
	slices.SortFunc(out, func(a, b Role) int { return order(a) - order(b) })
	return slices.Compact(out)
}

// JoinRoles formats roles as "AISP PISP", the way they end a sandbox CN.
func JoinRoles(roles []Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, " ")
}

// RolesFromCommonName returns the roles that end a sandbox certificate's
// common name: "Acme Fintech AISP PISP" gives AISP and PISP. It reads the
// trailing words that are role names (exact upper case, as bunq's examples
// write them) and stops at the first word that is not. "PIISP" counts as
// CBPII. A name without such words gives none.
func RolesFromCommonName(cn string) []Role {
	_, roles := splitCommonName(cn)
	return roles
}

// splitCommonName splits a sandbox common name into the name and the roles
// that end it.
func splitCommonName(cn string) (name string, roles []Role) {
	words := strings.Fields(cn)
	i := len(words)
	for ; i > 0; i-- {
		var r Role
		switch words[i-1] {
		case "AISP":
			r = RoleAISP
		case "PISP":
			r = RolePISP
		case "CBPII", "PIISP":
			r = RoleCBPII
		}
		if r == "" {
			break
		}
		roles = append(roles, r)
	}
	return strings.Join(words[:i], " "), canonicalRoles(roles)
}
