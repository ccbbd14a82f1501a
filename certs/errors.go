package certs

import (
	"errors"
	"strings"
)

// Sentinels for errors.Is. Every error from Load and Validate is an *Error
// that wraps one of them.
var (
	ErrBadPEM         = errors.New("unreadable PEM")
	ErrKeyPermissions = errors.New("private key file is readable by others")
	ErrKeyMismatch    = errors.New("private key does not match the certificate")
	ErrUnsupportedKey = errors.New("unsupported private key")
	ErrNotYetValid    = errors.New("certificate is not valid yet")
	ErrExpired        = errors.New("certificate has expired")
	ErrNoRoles        = errors.New("certificate names no PSD2 role")
	ErrRoleMismatch   = errors.New("PSD2 roles in the QC statement and in the common name differ")
	ErrChain          = errors.New("chain does not verify the certificate")
	ErrNoKey          = errors.New("no private key loaded")
	ErrNoChain        = errors.New("no certificate chain loaded")
)

// Error is a certificate problem: which file, what is wrong, what to do.
type Error struct {
	Kind   error  // one of the sentinels above
	File   string // the file concerned, if any
	Detail string // what was found
	Hint   string // what to do about it
	Err    error  // underlying cause, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("certs: ")
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(": ")
	}
	b.WriteString(e.Kind.Error())
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// Unwrap gives errors.Is and errors.As both the sentinel and the cause.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Kind}
}
