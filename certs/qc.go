package certs

import (
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
)

// Object identifiers of the qcStatements extension (RFC 3739, ETSI EN 319 412-5)
// and of the PSD2 QC statement (ETSI TS 119 495). They are unexported so no
// caller can change them; read them through the methods of QCStatements.
var (
	oidQCStatements    = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 3}
	oidQcCompliance    = asn1.ObjectIdentifier{0, 4, 0, 1862, 1, 1}
	oidQcSSCD          = asn1.ObjectIdentifier{0, 4, 0, 1862, 1, 4}
	oidQcType          = asn1.ObjectIdentifier{0, 4, 0, 1862, 1, 6}
	oidQcTypeESeal     = asn1.ObjectIdentifier{0, 4, 0, 1862, 1, 6, 2}
	oidPSD2QcStatement = asn1.ObjectIdentifier{0, 4, 0, 19495, 2}
	oidOrganizationID  = asn1.ObjectIdentifier{2, 5, 4, 97}
)

// ErrQCStatement marks a qcStatements extension that cannot be decoded.
var ErrQCStatement = errors.New("malformed qcStatements extension")

// QCStatements is the content of the qcStatements extension as far as a
// QSeal for PSD2 needs it.
type QCStatements struct {
	Compliance bool                    // QcCompliance: an EU qualified certificate
	SSCD       bool                    // QcSSCD: key held in a qualified device
	Types      []asn1.ObjectIdentifier // QcType: eSign, eSeal or web (see ESeal)
	PSD2       *PSD2Statement          // the PSD2 QC statement, if present
	Other      []asn1.ObjectIdentifier // statements this package does not interpret
}

// PSD2Statement is the ETSI TS 119 495 PSD2QcType:
//
//	PSD2QcType ::= SEQUENCE { rolesOfPSP RolesOfPSP, nCAName NCAName, nCAId NCAId }
//	RolesOfPSP ::= SEQUENCE OF RoleOfPSP
//	RoleOfPSP  ::= SEQUENCE { roleOfPspOid OBJECT IDENTIFIER, roleOfPspName UTF8String }
type PSD2Statement struct {
	Roles   []Role
	NCAName string // e.g. "De Nederlandsche Bank"
	NCAID   string // country code, "-", NCA abbreviation, e.g. "NL-DNB"
}

// qcStatement is QCStatement ::= SEQUENCE { statementId OID, statementInfo ANY OPTIONAL }.
type qcStatement struct {
	ID   asn1.ObjectIdentifier
	Info asn1.RawValue `asn1:"optional"`
}

// The encoders write UTF8String as the standard requires; the decoders take
// plain strings so that certificates from QTSPs that used PrintableString
// still parse.
type psd2QcTypeOut struct {
	Roles   []roleOfPSPOut
	NCAName string `asn1:"utf8"`
	NCAID   string `asn1:"utf8"`
}

type roleOfPSPOut struct {
	OID  asn1.ObjectIdentifier
	Name string `asn1:"utf8"`
}

type psd2QcTypeIn struct {
	Roles   []roleOfPSPIn
	NCAName string
	NCAID   string
}

type roleOfPSPIn struct {
	OID  asn1.ObjectIdentifier
	Name string
}

// MarshalQCStatements encodes q as the DER value of the qcStatements extension.
func MarshalQCStatements(q QCStatements) ([]byte, error) {
	var stmts []qcStatement
	if q.Compliance {
		stmts = append(stmts, qcStatement{ID: oidQcCompliance})
	}
	if len(q.Types) > 0 {
		info, err := asn1.Marshal(q.Types)
		if err != nil {
			return nil, fmt.Errorf("certs: encode QcType: %w", err)
		}
		stmts = append(stmts, qcStatement{ID: oidQcType, Info: asn1.RawValue{FullBytes: info}})
	}
	if q.SSCD {
		stmts = append(stmts, qcStatement{ID: oidQcSSCD})
	}
	if q.PSD2 != nil {
		if len(q.PSD2.Roles) == 0 {
			return nil, errors.New("certs: the PSD2 QC statement needs at least one role")
		}
		if q.PSD2.NCAName == "" || q.PSD2.NCAID == "" {
			return nil, errors.New("certs: the PSD2 QC statement needs the NCA name and id")
		}
		v := psd2QcTypeOut{NCAName: q.PSD2.NCAName, NCAID: q.PSD2.NCAID}
		for _, r := range q.PSD2.Roles {
			if !r.valid() {
				return nil, fmt.Errorf("certs: unknown PSD2 role %q", r)
			}
			v.Roles = append(v.Roles, roleOfPSPOut{OID: r.OID(), Name: r.ETSIName()})
		}
		info, err := asn1.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("certs: encode PSD2 QC statement: %w", err)
		}
		stmts = append(stmts, qcStatement{ID: oidPSD2QcStatement, Info: asn1.RawValue{FullBytes: info}})
	}
	if len(stmts) == 0 {
		return nil, errors.New("certs: no QC statement to encode")
	}
	return asn1.Marshal(stmts)
}

// ParseQCStatements decodes the DER value of a qcStatements extension. It
// fails on trailing bytes, on a PSD2 role it does not know and on a role whose
// name does not match its OID: a certificate that says two things is refused
// rather than guessed at.
func ParseQCStatements(der []byte) (*QCStatements, error) {
	var stmts []qcStatement
	if err := unmarshalAll(der, &stmts); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrQCStatement, err)
	}
	q := &QCStatements{}
	for _, s := range stmts {
		switch {
		case s.ID.Equal(oidQcCompliance):
			q.Compliance = true
		case s.ID.Equal(oidQcSSCD):
			q.SSCD = true
		case s.ID.Equal(oidQcType):
			if err := unmarshalAll(s.Info.FullBytes, &q.Types); err != nil {
				return nil, fmt.Errorf("%w: QcType: %w", ErrQCStatement, err)
			}
		case s.ID.Equal(oidPSD2QcStatement):
			if q.PSD2 != nil {
				return nil, fmt.Errorf("%w: two PSD2 QC statements", ErrQCStatement)
			}
			p, err := parsePSD2(s.Info.FullBytes)
			if err != nil {
				return nil, err
			}
			q.PSD2 = p
		default:
			q.Other = append(q.Other, s.ID)
		}
	}
	return q, nil
}

func parsePSD2(der []byte) (*PSD2Statement, error) {
	var v psd2QcTypeIn
	if err := unmarshalAll(der, &v); err != nil {
		return nil, fmt.Errorf("%w: PSD2 QC statement: %w", ErrQCStatement, err)
	}
	p := &PSD2Statement{NCAName: v.NCAName, NCAID: v.NCAID}
	for _, r := range v.Roles {
		role := Role("")
		for _, ri := range roleInfo {
			if ri.oid.Equal(r.OID) {
				role = ri.role
			}
		}
		if role == "" {
			return nil, fmt.Errorf("%w: unknown PSD2 role OID %s (%q)", ErrQCStatement, r.OID, r.Name)
		}
		if r.Name != role.ETSIName() {
			return nil, fmt.Errorf("%w: PSD2 role OID %s is %s but is named %q", ErrQCStatement, r.OID, role.ETSIName(), r.Name)
		}
		p.Roles = append(p.Roles, role)
	}
	if len(p.Roles) == 0 {
		return nil, fmt.Errorf("%w: the PSD2 QC statement lists no role", ErrQCStatement)
	}
	p.Roles = canonicalRoles(p.Roles)
	return p, nil
}

// ESeal reports whether q declares the QcType eSeal (0.4.0.1862.1.6.2), the
// type of a QSeal.
func (q *QCStatements) ESeal() bool {
	return slices.ContainsFunc(q.Types, oidQcTypeESeal.Equal)
}

// eSealTypes is the QcType list of a QSeal, fresh on each call.
func eSealTypes() []asn1.ObjectIdentifier {
	return []asn1.ObjectIdentifier{slices.Clone(oidQcTypeESeal)}
}

func unmarshalAll(der []byte, v any) error {
	if len(der) == 0 {
		return errors.New("statement info is missing")
	}
	rest, err := asn1.Unmarshal(der, v)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("%d trailing bytes", len(rest))
	}
	return nil
}
