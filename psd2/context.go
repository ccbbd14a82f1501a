package psd2

import (
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// ContextKind says where a context's secret came from.
type ContextKind string

// Context kinds.
const (
	KindAPIKey ContextKind = "api_key" // a bunq API key (sandbox users, own accounts)
	KindPSD2   ContextKind = "psd2"    // the TPP's own, from its certificate
	KindOAuth  ContextKind = "oauth"   // an end user's OAuth access token
)

// Context is one bunq API context: installation, device and session. It is
// safe for concurrent use; the session part is replaced in place on renewal.
//
// Its secrets live behind a pointer so that fmt's %v / %+v on a Context value
// cannot print them; String, GoString and LogValue show only ids and times.
type Context struct {
	kind           ContextKind
	installationID int64
	deviceID       int64
	permittedIPs   []string
	budgetID       string // stable, non-secret id of the installation
	serverKey      *rsa.PublicKey
	sec            *contextSecrets

	// sess is replaced whole on renewal; readers take a snapshot without locking.
	sess atomic.Pointer[session]

	mu     sync.Mutex // guards flight
	flight *renewal   // the session renewal in progress, if any
}

type contextSecrets struct {
	// clientKeyDER is the client private key (PKCS#8, or PKCS#1 when
	// clientKeyPKCS1); clientKey is its parsed form, made on first use: a
	// parsed key takes some 3 KiB more, and a restored context that only
	// reads does not sign until its session is renewed.
	clientKeyDER   []byte
	clientKeyPKCS1 bool
	clientKey      atomic.Pointer[rsa.PrivateKey]
	// clientPublicPEM is set on new contexts only, for the PSD2 credential.
	clientPublicPEM   string
	serverPublicPEM   string
	installationToken string
	secret            string // API key, PSD2 token_value or OAuth access token
}

type session struct {
	id       int64
	token    string
	userID   int64
	userType string
	user     *User // as the session-server answer gave it; nil after Import
	expiry   time.Time
}

type renewal struct {
	done chan struct{}
	err  error
}

// Kind returns where the context's secret came from.
func (c *Context) Kind() ContextKind { return c.kind }

// InstallationID returns the bank's id of the installation.
func (c *Context) InstallationID() int64 { return c.installationID }

// DeviceID returns the bank's id of the device-server registration.
func (c *Context) DeviceID() int64 { return c.deviceID }

// UserID is the {userID} of all calls: the session user's id (for an OAuth
// context the UserApiKey id).
func (c *Context) UserID() int64 {
	return c.sessionSnapshot().userID
}

// UserType is the session user's type (UserPerson, UserApiKey, …).
func (c *Context) UserType() string {
	return c.sessionSnapshot().userType
}

// SessionUser returns the user object of the session-server answer that
// opened the current session (for an OAuth context a UserApiKey with
// GrantedBy set), so a caller needs no GET /user after opening a session.
// It reports false for a session restored from storage.
func (c *Context) SessionUser() (User, bool) {
	if u := c.sessionSnapshot().user; u != nil {
		return *u, true
	}
	return User{}, false
}

// SessionID returns the bank's id of the current session.
func (c *Context) SessionID() int64 {
	return c.sessionSnapshot().id
}

// SessionExpiry is when the client considers the session expired (local
// time of session creation + session_timeout).
func (c *Context) SessionExpiry() time.Time {
	return c.sessionSnapshot().expiry
}

// HasSession reports whether the context holds a session token.
func (c *Context) HasSession() bool {
	return c.sessionSnapshot().token != ""
}

// sessionSnapshot returns the current session (zero when there is none).
func (c *Context) sessionSnapshot() session {
	if s := c.sess.Load(); s != nil {
		return *s
	}
	return session{}
}

func (c *Context) setSession(s session) { c.sess.Store(&s) }

// String describes the context without secrets.
func (c *Context) String() string {
	if c == nil {
		return "psd2.Context(nil)"
	}
	s := c.sessionSnapshot()
	return fmt.Sprintf("psd2.Context{kind:%s installation:%d device:%d user:%s/%d session:%d expiry:%s}",
		c.kind, c.installationID, c.deviceID, s.userType, s.userID, s.id, s.expiry.UTC().Format(time.RFC3339))
}

// GoString is String: %#v must not print keys or tokens either.
func (c *Context) GoString() string { return c.String() }

// LogValue implements slog.LogValuer without secrets.
func (c *Context) LogValue() slog.Value {
	if c == nil {
		return slog.StringValue("nil")
	}
	s := c.sessionSnapshot()
	return slog.GroupValue(
		slog.String("kind", string(c.kind)),
		slog.Int64("installation_id", c.installationID),
		slog.Int64("device_id", c.deviceID),
		slog.String("user_type", s.userType),
		slog.Int64("user_id", s.userID),
		slog.Int64("session_id", s.id),
		slog.Time("session_expiry", s.expiry),
	)
}

// contextJSON is the serialised form. Version 1.
type contextJSON struct {
	Version      int         `json:"version"`
	Kind         ContextKind `json:"kind"`
	Installation struct {
		ID    int64  `json:"id"`
		Token string `json:"token"`
		// ClientPublicKey is no longer written (it is derived from the
		// private key); contexts stored before still carry it.
		ClientPublicKey string `json:"client_public_key,omitempty"`
		ClientPrivate   string `json:"client_private_key"`
		ServerPublicKey string `json:"server_public_key"`
	} `json:"installation"`
	Device struct {
		ID           int64    `json:"id"`
		PermittedIPs []string `json:"permitted_ips,omitempty"`
	} `json:"device"`
	Secret  string       `json:"secret"`
	Session *sessionJSON `json:"session,omitempty"`
}

type sessionJSON struct {
	ID       int64     `json:"id"`
	Token    string    `json:"token"`
	UserID   int64     `json:"user_id"`
	UserType string    `json:"user_type"`
	Expiry   time.Time `json:"expiry"`
}

const contextVersion = 1

// MarshalJSON serialises the context, secrets included (the client private
// key as PKCS#8 PEM; its public key is left out, as it follows from the
// private key). Store the result only sealed: see Seal.
func (c *Context) MarshalJSON() ([]byte, error) {
	var j contextJSON
	j.Version = contextVersion
	j.Kind = c.kind
	j.Installation.ID = c.installationID
	j.Installation.Token = c.sec.installationToken
	typ := "PRIVATE KEY"
	if c.sec.clientKeyPKCS1 {
		typ = "RSA PRIVATE KEY"
	}
	j.Installation.ClientPrivate = string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: c.sec.clientKeyDER}))
	j.Installation.ServerPublicKey = c.sec.serverPublicPEM
	j.Device.ID = c.deviceID
	j.Device.PermittedIPs = c.permittedIPs
	j.Secret = c.sec.secret
	if s := c.sessionSnapshot(); s.token != "" {
		j.Session = &sessionJSON{ID: s.id, Token: s.token, UserID: s.userID, UserType: s.userType, Expiry: s.expiry}
	}
	return json.Marshal(j)
}

// UnmarshalJSON restores a context written by MarshalJSON. It must be called
// on a fresh Context (new(psd2.Context)), before the context is shared.
func (c *Context) UnmarshalJSON(b []byte) error {
	var j contextJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("psd2: decode context: %w", err)
	}
	if j.Version != contextVersion {
		return fmt.Errorf("psd2: context version %d, want %d", j.Version, contextVersion)
	}
	if j.Installation.Token == "" || j.Secret == "" {
		return errors.New("psd2: context lacks installation token or secret")
	}
	// Parsed to reject a bad key now (the context then reads as
	// unreadable and is rebuilt), then kept unparsed until it signs.
	block, _ := pem.Decode([]byte(j.Installation.ClientPrivate))
	if block == nil {
		return errors.New("psd2: private key is not PEM")
	}
	key, err := parsePrivateKeyDER(block.Type, block.Bytes)
	if err != nil {
		return err
	}
	server, err := parsePublicKeyPEM(j.Installation.ServerPublicKey)
	if err != nil {
		return fmt.Errorf("psd2: context server key: %w", err)
	}
	pub := j.Installation.ClientPublicKey
	if pub == "" {
		if pub, err = publicKeyPEM(&key.PublicKey); err != nil {
			return err
		}
	}
	*c = Context{
		kind:           j.Kind,
		installationID: j.Installation.ID,
		deviceID:       j.Device.ID,
		permittedIPs:   j.Device.PermittedIPs,
		serverKey:      server,
		budgetID:       budgetID(pub),
		sec: &contextSecrets{
			clientKeyDER:      block.Bytes,
			clientKeyPKCS1:    block.Type == "RSA PRIVATE KEY",
			serverPublicPEM:   j.Installation.ServerPublicKey,
			installationToken: j.Installation.Token,
			secret:            j.Secret,
		},
	}
	if s := j.Session; s != nil {
		c.setSession(session{id: s.ID, token: s.Token, userID: s.UserID, userType: s.UserType, expiry: s.Expiry})
	}
	return nil
}

// signingKey returns the parsed client private key, parsing it once.
func (s *contextSecrets) signingKey() (*rsa.PrivateKey, error) {
	if k := s.clientKey.Load(); k != nil {
		return k, nil
	}
	typ := "PRIVATE KEY"
	if s.clientKeyPKCS1 {
		typ = "RSA PRIVATE KEY"
	}
	k, err := parsePrivateKeyDER(typ, s.clientKeyDER)
	if err != nil {
		return nil, err
	}
	s.clientKey.Store(k)
	return k, nil
}

// budgetID names an installation in rate-limit keys without revealing
// anything secret: a hash of its client public key.
func budgetID(clientPublicPEM string) string {
	sum := sha256.Sum256([]byte(clientPublicPEM))
	return hex.EncodeToString(sum[:8])
}

// Sealer encrypts and authenticates small values; *seal.Keyring is one.
type Sealer interface {
	Seal(plaintext, ad []byte) ([]byte, error)
	Open(sealed, ad []byte) ([]byte, error)
}

// Seal serialises the context and seals it with s under associated data ad
// (for example "bunq-context:consent:42"), for storage at rest.
func (c *Context) Seal(s Sealer, ad []byte) ([]byte, error) {
	b, err := c.MarshalJSON()
	if err != nil {
		return nil, err
	}
	out, err := s.Seal(b, ad)
	clear(b)
	if err != nil {
		return nil, fmt.Errorf("psd2: seal context: %w", err)
	}
	return out, nil
}

// OpenContext opens a context sealed by (*Context).Seal with the same ad.
func OpenContext(s Sealer, sealed, ad []byte) (*Context, error) {
	b, err := s.Open(sealed, ad)
	if err != nil {
		return nil, fmt.Errorf("psd2: open context: %w", err)
	}
	defer clear(b)
	c := new(Context)
	if err := c.UnmarshalJSON(b); err != nil {
		return nil, err
	}
	return c, nil
}
