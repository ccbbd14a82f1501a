package tpp

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ConsentStatus is where a consent is in its life.
//
//	pending ──► active ──► reauth_required ──► active (same id, new token)
//	   │          │               │
//	   ├► rejected └► revoked ◄───┘
//	   ├► expired
//	   └► revoked
//
// Re-authentication keeps the consent id. It is always modelled as
// active → reauth_required → active, never active → active: a transition to
// active then has exactly one winner, so two racing OAuth callbacks cannot
// both activate the same consent. A fintech that wants the user to
// re-authorize early moves the consent to reauth_required first.
type ConsentStatus string

// Consent statuses.
const (
	ConsentPending        ConsentStatus = "pending"
	ConsentActive         ConsentStatus = "active"
	ConsentRejected       ConsentStatus = "rejected"
	ConsentExpired        ConsentStatus = "expired"
	ConsentRevoked        ConsentStatus = "revoked"
	ConsentReauthRequired ConsentStatus = "reauth_required"
)

// consentTransitions is THE consent status machine: from → legal targets.
// Every status change in every package is checked against it.
var consentTransitions = map[ConsentStatus][]ConsentStatus{
	ConsentPending:        {ConsentActive, ConsentRejected, ConsentExpired, ConsentRevoked},
	ConsentActive:         {ConsentRevoked, ConsentReauthRequired},
	ConsentReauthRequired: {ConsentActive, ConsentRevoked},
	ConsentRejected:       nil,
	ConsentExpired:        nil,
	ConsentRevoked:        nil,
}

// Valid reports whether s is a known status.
func (s ConsentStatus) Valid() bool {
	_, ok := consentTransitions[s]
	return ok
}

// CanTransitionTo reports whether a consent in status s may move to t.
func (s ConsentStatus) CanTransitionTo(t ConsentStatus) bool {
	for _, to := range consentTransitions[s] {
		if to == t {
			return true
		}
	}
	return false
}

// Terminal reports whether no transition leaves s.
func (s ConsentStatus) Terminal() bool { return s.Valid() && len(consentTransitions[s]) == 0 }

// Consent lifetimes.
const (
	// ConsentPendingTTL is how long the user has to authorize a new consent.
	ConsentPendingTTL = 15 * time.Minute
	// ConsentReauthAfter is the PSD2 re-authentication period (RTS art. 10).
	ConsentReauthAfter = 180 * 24 * time.Hour
)

// Scope is one permission a consent asks for.
type Scope string

// Scopes, one per PSD2 role.
const (
	ScopeAccounts Scope = "accounts" // AISP: balances and transactions
	ScopePayments Scope = "payments" // PISP: draft payments
	ScopeFunds    Scope = "funds"    // CBPII: confirmation of funds
)

// ParseScopes validates scopes and returns them sorted and without
// duplicates. At least one is required.
func ParseScopes(in []string) ([]Scope, error) {
	if len(in) == 0 {
		return nil, Errorf(EInvalidScope, "at least one scope is required (accounts, payments, funds)")
	}
	seen := map[Scope]bool{}
	var out []Scope
	for _, s := range in {
		sc := Scope(s)
		switch sc {
		case ScopeAccounts, ScopePayments, ScopeFunds:
		default:
			return nil, Errorf(EInvalidScope, "unknown scope %q; use accounts, payments or funds", s)
		}
		if !seen[sc] {
			seen[sc] = true
			out = append(out, sc)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// InternalUserRefPrefix starts the user_ref of consents the TPP makes for
// itself (a single payment's consent). Fintechs may not use it; the
// consents API neither lists nor shows such consents, as they belong to a
// payment, not to the fintech's list.
const InternalUserRefPrefix = "tpp:"

// Consent is a user's permission for one fintech client to act on their
// bunq accounts within some scopes.
type Consent struct {
	ID           string
	ClientID     string
	UserRef      string // the fintech's own reference for its user; opaque to us
	Scopes       []Scope
	ReturnURL    string
	Status       ConsentStatus
	CreatedAt    time.Time
	UpdatedAt    time.Time
	ExpiresAt    time.Time  // deadline for a pending consent to be authorized
	AuthorizedAt *time.Time // last (re-)authorization
	ReauthDueAt  *time.Time // AuthorizedAt + ConsentReauthAfter
	BunqUserID   int64      // 0 until active
	BunqUserName string     // display name of the bunq user, once active
	HasToken     bool       // a sealed OAuth access token is stored
	ErrorCode    string     // why the consent was rejected, if it was
	RevokedAt    *time.Time
	// GrantedIP and GrantedUserAgent are where the last (re-)authorization
	// came from: the browser whose callback activated the consent (PSD2
	// record; never shown to fintechs).
	GrantedIP        string
	GrantedUserAgent string
}

// StatusAt is c's status at now with its deadline applied: a pending
// consent past ExpiresAt is expired, an active one past ReauthDueAt is
// reauth_required. It is THE deadline rule; consent.Gate records the move.
func (c *Consent) StatusAt(now time.Time) ConsentStatus {
	switch {
	case c.Status == ConsentPending && !now.Before(c.ExpiresAt):
		return ConsentExpired
	case c.Status == ConsentActive && c.ReauthDueAt != nil && !now.Before(*c.ReauthDueAt):
		return ConsentReauthRequired
	}
	return c.Status
}

// UseError is why a request may not use c in its current status (apply
// StatusAt first), or nil when c is active. It is THE mapping of consent
// statuses to API errors; the caller adds ReauthorizeURL.
func (c *Consent) UseError() error {
	switch c.Status {
	case ConsentActive:
		return nil
	case ConsentReauthRequired:
		return Errorf(EConsentReauthRequired, "the user must authorize consent %s again (PSD2 180-day rule); send them to reauthorize_url", c.ID)
	case ConsentRevoked:
		return Errorf(EConsentRevoked, "consent %s was revoked", c.ID)
	case ConsentExpired:
		return Errorf(EConsentExpired, "consent %s was never authorized and expired", c.ID)
	case ConsentPending:
		return Errorf(EConsentNotActive, "consent %s is pending; the user has not authorized it yet", c.ID)
	default:
		return Errorf(EConsentNotActive, "consent %s is %s, not active", c.ID, c.Status)
	}
}

// Internal reports whether the TPP made c for itself (InternalUserRefPrefix).
func (c *Consent) Internal() bool { return strings.HasPrefix(c.UserRef, InternalUserRefPrefix) }

// HasScope reports whether c grants s.
func (c *Consent) HasScope(s Scope) bool {
	for _, x := range c.Scopes {
		if x == s {
			return true
		}
	}
	return false
}

// NewConsent is what a fintech client asks for.
type NewConsent struct {
	ClientID  string
	UserRef   string
	Scopes    []Scope
	ReturnURL string // must be one of the client's registered return URLs
	Actor     string
	RequestID string
}

// ConsentTransition moves a consent to another status.
type ConsentTransition struct {
	ID string
	// ClientID, when set, scopes the change to that client: another client's
	// consent is reported as not found. It must be set when Actor is a client.
	ClientID string
	// From, when set, makes the change conditional: it fails with EConflict
	// unless the consent is in that status.
	From ConsentStatus
	To   ConsentStatus

	// For To == active: the bunq user and the OAuth access token, sealed in
	// the same transaction so an active consent always has its token.
	BunqUserID   int64
	BunqUserName string
	AccessToken  string
	// For To == active: the IP address and user agent of the browser that
	// granted it, stored with the consent (PSD2 record).
	PSUIP        string
	PSUUserAgent string
	// For To == rejected: the error code to report to the fintech.
	ErrorCode string

	Actor     string // who: ActorClient(id), ActorPSU, ActorBank, ActorSystem
	RequestID string
	Detail    string // free text for the audit log; never secrets
}

// ConsentFilter selects consents of one client.
type ConsentFilter struct {
	ClientID string // required
	UserRef  string // optional
	Status   ConsentStatus
}

// The service interfaces of this package (ConsentService, ClientService,
// PaymentService, IdempotencyStore, AuditLog, WebhookOutbox) are the full
// contracts package sqlite implements, as in wtf. A consumer that needs only
// a few methods declares its own narrower interface (as webhook.Outbox does)
// and still accepts the sqlite type.

// ConsentService stores consents and moves them through their life. Every
// change writes an audit record and (for status changes) a consent.updated
// webhook event in the same transaction.
type ConsentService interface {
	CreateConsent(ctx context.Context, in NewConsent) (*Consent, error)
	// Consent returns the consent of one client; another client's consent
	// gives the same EConsentNotFound error as an unknown id.
	Consent(ctx context.Context, clientID, id string) (*Consent, error)
	// ConsentByID is unscoped: for the browser flow and background workers
	// only, never for the fintech API.
	ConsentByID(ctx context.Context, id string) (*Consent, error)
	ListConsents(ctx context.Context, f ConsentFilter, p PageRequest) (Page[*Consent], error)
	ConsentsByBunqUser(ctx context.Context, bunqUserID int64) ([]*Consent, error)
	TransitionConsent(ctx context.Context, t ConsentTransition) (*Consent, error)
	// AccessToken opens the sealed OAuth token of a consent; EConsentNotActive
	// when it has none.
	AccessToken(ctx context.Context, id string) (string, error)
	// SetAccessToken replaces the sealed token of an active consent (for a
	// token refresh); ClearAccessToken removes it.
	SetAccessToken(ctx context.Context, id, token string) error
	ClearAccessToken(ctx context.Context, id string) error
	// DueConsents lists consents a sweeper must move: pending past expiry
	// (→ expired) and active past their re-authentication date (→ reauth_required).
	DueConsents(ctx context.Context, now time.Time, limit int) ([]*Consent, error)
}

// Actors named in audit records.
const (
	ActorPSU      = "psu"
	ActorBank     = "bank"
	ActorSystem   = "system"
	ActorOperator = "operator"
)

// ActorClient names a fintech client as an actor.
func ActorClient(clientID string) string { return "client:" + clientID }

// Identifier prefixes.
const (
	PrefixClient  = "cli_"
	PrefixConsent = "con_"
	PrefixPayment = "pay_"
	PrefixEvent   = "evt_"
	PrefixRequest = "req_"
)

// idEncoding is lower-case base32 without padding: safe in URLs, paths and
// cookies, and free of '_' so ids and API keys split cleanly. Every id,
// account id and random token of the TPP is spelled in it.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns prefix followed by 128 random bits.
func NewID(prefix string) string { return prefix + RandomToken(16) }

// RandomToken returns n random bytes as lower-case base32 (OAuth states,
// nonces, lock tokens, API key secrets).
func RandomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand does not fail on supported platforms; if it ever
		// does, nothing secret may be made.
		panic("tpp: crypto/rand: " + err.Error())
	}
	return idEncoding.EncodeToString(b)
}

// Paging.
const (
	DefaultPageLimit = 50
	MaxPageLimit     = 200
)

// ParseLimit reads the limit query parameter of a list: empty means def,
// anything but a whole number from 1 to max is refused, in the same words
// for every list.
func ParseLimit(s string, def, max int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, Errorf(EInvalid, "limit must be a whole number from 1 to %d", max)
	}
	return n, nil
}

// PageRequest asks for one page of a list, newest first.
type PageRequest struct {
	Limit  int    // 0 means DefaultPageLimit; capped at MaxPageLimit
	Cursor string // from a previous Page.NextCursor; empty for the first page
}

// Normalize returns the effective limit and the decoded cursor (zero when
// absent).
func (p PageRequest) Normalize() (int, Cursor, error) {
	limit := p.Limit
	switch {
	case limit < 0:
		return 0, Cursor{}, Errorf(EInvalid, "limit must be a whole number from 1 to %d", MaxPageLimit)
	case limit == 0:
		limit = DefaultPageLimit
	case limit > MaxPageLimit:
		limit = MaxPageLimit
	}
	if p.Cursor == "" {
		return limit, Cursor{}, nil
	}
	c, err := DecodeCursor(p.Cursor)
	return limit, c, err
}

// Page is one page of a list. NextCursor is empty on the last page.
type Page[T any] struct {
	Items      []T
	NextCursor string
}

// Cursor is a position in a list ordered by (created time, id) descending.
// The id breaks ties, so paging never skips or repeats items created in the
// same instant.
type Cursor struct {
	At time.Time
	ID string
}

// IsZero reports whether c is the start of the list.
func (c Cursor) IsZero() bool { return c.ID == "" }

// Encode returns c as an opaque URL-safe string.
func (c Cursor) Encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(c.At.UTC().Format(time.RFC3339Nano) + "|" + c.ID))
}

// DecodeCursor parses a cursor made by Encode.
func DecodeCursor(s string) (Cursor, error) {
	bad := Errorf(EInvalidCursor, "cursor is not one this API returned")
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, bad
	}
	at, id, ok := strings.Cut(string(raw), "|")
	if !ok || id == "" {
		return Cursor{}, bad
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return Cursor{}, bad
	}
	return Cursor{At: t.UTC(), ID: id}, nil
}
