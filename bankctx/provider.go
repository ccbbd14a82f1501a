// Package bankctx gives each active consent a live bunq API context.
//
// A consent's context (installation key, installation token, session) sits
// sealed in Redis, where every replica can use it. SQLite keeps only the
// consent's sealed OAuth access token; from it a lost context (Redis
// flushed, evicted, replaced) is rebuilt on the next request: a new
// installation, device and session. A Redis lock makes sure only one
// replica rebuilds a consent's context at a time; the others wait for it
// and read what it stored.
package bankctx

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"
	"weak"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/psd2"
)

// Bank is the part of the bunq client the provider uses (*psd2.Client).
type Bank interface {
	NewOAuthContext(ctx context.Context, accessToken string, o psd2.ContextOptions) (*psd2.Context, error)
	GetUser(ctx context.Context, bc *psd2.Context, id int64) (psd2.User, error)
	CloseSession(ctx context.Context, bc *psd2.Context) error
}

// Store keeps sealed contexts by consent id (*redis.ContextStore). Get
// returns tpp.ErrNotFound or tpp.ErrUnreadable when there is nothing usable.
type Store interface {
	Get(ctx context.Context, consentID string) ([]byte, error)
	Put(ctx context.Context, consentID string, blob []byte) error
	Delete(ctx context.Context, consentID string) error
}

// Locker hands out cross-replica locks (*redis.Locker).
type Locker interface {
	Acquire(ctx context.Context, name string, ttl time.Duration) (tpp.Lock, error)
}

// Tokens opens a consent's sealed OAuth access token (the sqlite store).
type Tokens interface {
	AccessToken(ctx context.Context, consentID string) (string, error)
}

// Keys hands out installation keys (*KeyPool).
type Keys interface {
	Get(ctx context.Context) (*rsa.PrivateKey, error)
}

// ErrGrantRevoked means the bank no longer accepts the consent's access
// token: the user withdrew it (or it expired at the bank).
var ErrGrantRevoked = errors.New("bankctx: the bank no longer accepts this consent's access token")

// Config holds the provider's dependencies.
type Config struct {
	Bank   Bank
	Store  Store
	Locker Locker
	Tokens Tokens
	Keys   Keys
	// LockTTL bounds one rebuild (installation, device, session); default 30 s.
	LockTTL time.Duration
	// CloseTimeout bounds the best-effort session delete at revocation
	// (a refused session makes the client try to renew first); default 5 s.
	CloseTimeout time.Duration
	// DeviceDescription is sent to device-server ("bunqtpp consent <id>" when empty).
	DeviceDescription string
	// PermittedIPs for device-server (nil: the bank binds the calling IP;
	// several replicas behind different IPs need ["*"] or their list).
	PermittedIPs []string
	Logger       *slog.Logger
	// NotifyURL, when set, is registered in each new consent context as
	// its DRAFT_PAYMENT notification filter: bunq's filters are per user
	// and per monetary account, so a draft made through a grant is
	// announced to the grant's own filters, not to the TPP's user-level
	// one. It is removed again when the consent's context is closed.
	NotifyURL string
	// OnRebuild, if set, is called after each rebuild (for metrics).
	OnRebuild func(consentID string)
	// Recheck is how long a context this process parsed, saved or checked
	// is used without asking Redis whether another replica renewed,
	// rebuilt or purged it; 0 asks every time (DefaultRecheck is the
	// service's choice). Waiting that long is safe: every caller checks
	// the consent's status in SQLite first, and an older session of the
	// same grant stays valid at bunq.
	Recheck time.Duration
	// Clock times Recheck; tpp.SystemClock when nil.
	Clock tpp.Clock
	// Residue, if set, deletes what else Redis holds about a consent:
	// Purge drops its cached bank answers, Close (revocation) also its
	// access window.
	Residue Residue
}

// Residue is what Redis keeps about a consent besides its context.
type Residue interface {
	// PurgeCached deletes the consent's cached bank answers.
	PurgeCached(ctx context.Context, consentID string) error
	// PurgeAccess deletes the consent's PSD2 access window.
	PurgeAccess(ctx context.Context, consentID string) error
}

// DefaultRecheck saves the hot path a Redis round trip per request while
// keeping another replica's change at most a second away.
const DefaultRecheck = time.Second

// Provider hands out live contexts per consent. Safe for concurrent use.
type Provider struct {
	cfg Config
	log *slog.Logger

	// owners maps contexts handed out to their consent, so the psd2
	// renewal hook (which sees only the *psd2.Context) can write a renewed
	// session back. Weak keys: an entry goes when its context is collected.
	mu     sync.Mutex
	owners map[weak.Pointer[psd2.Context]]string
	// parsed keeps the last parsed context per consent with the hash of the
	// stored value it came from. Redis stays the source (a renewal or purge
	// by another replica shows at the first load after Recheck); the parse,
	// which costs an RSA key check, is skipped when nothing changed.
	// Sharing one *psd2.Context per consent also makes renewals single-flight.
	parsed map[string]parsedContext
}

type parsedContext struct {
	sum     [sha256.Size]byte
	bc      *psd2.Context
	checked time.Time // when Redis last held exactly sum
}

// maxParsed bounds the parsed-context cache (about 3 KiB each).
const maxParsed = 10_000

// New returns a Provider.
func New(cfg Config) (*Provider, error) {
	if cfg.Bank == nil || cfg.Store == nil || cfg.Locker == nil || cfg.Tokens == nil || cfg.Keys == nil {
		return nil, errors.New("bankctx: Bank, Store, Locker, Tokens and Keys are required")
	}
	if cfg.LockTTL <= 0 {
		cfg.LockTTL = 30 * time.Second
	}
	if cfg.CloseTimeout <= 0 {
		cfg.CloseTimeout = 5 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = tpp.SystemClock{}
	}
	return &Provider{cfg: cfg, log: log, owners: map[weak.Pointer[psd2.Context]]string{}, parsed: map[string]parsedContext{}}, nil
}

// User is the bunq customer who granted a consent.
type User struct {
	ID          int64 // the granting user's id (UserPerson / UserCompany)
	Type        string
	DisplayName string
	APIKeyID    int64 // the UserApiKey's id: the {userID} of the context's calls
}

// Create builds a new context from a fresh access token (at the OAuth
// callback), stores it, and returns it with the user who granted access.
func (p *Provider) Create(ctx context.Context, consentID, accessToken string) (*psd2.Context, User, error) {
	bc, err := p.build(ctx, consentID, accessToken)
	if err != nil {
		return nil, User{}, err
	}
	// The session-server answer names the granting user; read it only when
	// it did not (it always does at bunq, reference §1.4).
	u, ok := bc.SessionUser()
	if !ok || (u.Type == psd2.UserTypeAPIKey && u.GrantedBy == nil) {
		if u, err = p.cfg.Bank.GetUser(ctx, bc, bc.UserID()); err != nil {
			return nil, User{}, fmt.Errorf("bankctx: read the granting user: %w", err)
		}
	}
	user := User{ID: u.ID, Type: u.Type, DisplayName: displayName(&u), APIKeyID: bc.UserID()}
	if g := u.GrantedBy; g != nil {
		user = User{ID: g.ID, Type: g.Type, DisplayName: displayName(g), APIKeyID: bc.UserID()}
	}
	if err := p.save(ctx, consentID, bc); err != nil {
		return nil, User{}, err
	}
	p.track(bc, consentID)
	p.setDraftFilter(ctx, consentID, bc, true)
	return bc, user, nil
}

// filterBank is the part of the bank client that sets notification filters
// (*psd2.Client).
type filterBank interface {
	CreateNotificationFilters(ctx context.Context, bc *psd2.Context, filters []psd2.NotificationFilter) ([]psd2.NotificationFilter, error)
}

// setDraftFilter registers (on) or removes the consent context's
// DRAFT_PAYMENT filter. A failure is logged, not returned: the payment
// poller covers lost callbacks.
func (p *Provider) setDraftFilter(ctx context.Context, consentID string, bc *psd2.Context, on bool) {
	fb, ok := p.cfg.Bank.(filterBank)
	if p.cfg.NotifyURL == "" || !ok {
		return
	}
	filters := []psd2.NotificationFilter{}
	if on {
		filters = append(filters, psd2.NotificationFilter{Category: psd2.CategoryDraftPayment, NotificationTarget: p.cfg.NotifyURL})
	}
	if _, err := fb.CreateNotificationFilters(ctx, bc, filters); err != nil {
		p.log.WarnContext(ctx, "bunq notification filter of a consent not set", "consent_id", consentID, "on", on, "error", err)
	}
}

func displayName(u *psd2.User) string {
	for _, s := range []string{u.DisplayName, u.PublicNickName, u.LegalName, u.Name} {
		if s != "" {
			return s
		}
	}
	return ""
}

// Get returns the live context of an active consent, rebuilding it from
// the sealed access token when Redis has none.
func (p *Provider) Get(ctx context.Context, c *tpp.Consent) (*psd2.Context, error) {
	if c == nil {
		return nil, errors.New("bankctx: nil consent")
	}
	if c.Status != tpp.ConsentActive {
		return nil, tpp.Errorf(tpp.EConsentNotActive, "consent %s is %s", c.ID, c.Status)
	}
	if bc, err := p.load(ctx, c.ID); err == nil {
		return bc, nil
	} else if !missing(err) {
		return nil, err
	}
	return p.rebuild(ctx, c.ID)
}

// rebuild makes a new context under the consent's lock. Whoever gets the
// lock second finds the first one's context and uses it.
func (p *Provider) rebuild(ctx context.Context, consentID string) (*psd2.Context, error) {
	lock, err := p.cfg.Locker.Acquire(ctx, lockName(consentID), p.cfg.LockTTL)
	if err != nil {
		return nil, fmt.Errorf("bankctx: wait for context rebuild of consent %s: %w", consentID, err)
	}
	// The lock outlives a cancelled request only until its TTL; release it
	// even when ctx is done.
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := lock.Release(rctx); err != nil {
			p.log.WarnContext(ctx, "releasing bunq context lock failed", "consent_id", consentID, "error", err)
		}
	}()
	if bc, err := p.load(ctx, consentID); err == nil {
		return bc, nil
	} else if !missing(err) {
		return nil, err
	}
	token, err := p.cfg.Tokens.AccessToken(ctx, consentID)
	if err != nil {
		return nil, fmt.Errorf("bankctx: access token of consent %s: %w", consentID, err)
	}
	bc, err := p.build(ctx, consentID, token)
	if err != nil {
		return nil, err
	}
	if err := p.save(ctx, consentID, bc); err != nil {
		return nil, err
	}
	p.track(bc, consentID)
	p.log.InfoContext(ctx, "rebuilt bunq context", "consent_id", consentID, "context", bc)
	if p.cfg.OnRebuild != nil {
		p.cfg.OnRebuild(consentID)
	}
	return bc, nil
}

func (p *Provider) build(ctx context.Context, consentID, token string) (*psd2.Context, error) {
	desc := p.cfg.DeviceDescription
	if desc == "" {
		desc = "bunqtpp consent " + consentID
	}
	bc, err := p.cfg.Bank.NewOAuthContext(ctx, token, psd2.ContextOptions{
		KeySource:    func() (*rsa.PrivateKey, error) { return p.cfg.Keys.Get(ctx) },
		Description:  desc,
		PermittedIPs: p.cfg.PermittedIPs,
	})
	if err != nil {
		if CredentialsRefused(err) {
			return nil, fmt.Errorf("bankctx: create bunq context for consent %s: %w: %w", consentID, ErrCredentialsRefused, err)
		}
		if IsAuthError(err) || badCredentials(err) {
			return nil, fmt.Errorf("%w: %w", ErrGrantRevoked, err)
		}
		return nil, fmt.Errorf("bankctx: create bunq context for consent %s: %w", consentID, err)
	}
	return bc, nil
}

// IsAuthError reports whether err is the bank refusing our credentials
// (as opposed to the bank being down or rate limiting).
func IsAuthError(err error) bool {
	return errors.Is(err, psd2.ErrUnauthorized) || errors.Is(err, psd2.ErrForbidden) ||
		errors.Is(err, psd2.ErrSessionExpired) || errors.Is(err, ErrGrantRevoked)
}

// badCredentials recognises bunq refusing the secret while a device is
// registered: device-server answers 400 "User credentials are incorrect.
// Incorrect API key or IP address." for a withdrawn token. (A new device is
// bound to the calling IP, so there the IP cannot be the reason.)
func badCredentials(err error) bool {
	var ae *psd2.APIError
	return errors.As(err, &ae) && ae.Kind == psd2.KindBadRequest && ae.Path == "/device-server" && incorrectCredentials(ae)
}

// ErrCredentialsRefused: bunq refused a session for a device with "User
// credentials are incorrect. Incorrect API key or IP address." A device is
// bound to the IP it was registered from (or to --permitted-ips), so after
// an egress IP change (NAT pool, failover, new host) or with permitted IPs
// that leave out the egress IP, session-server says exactly this. It is an
// operator matter ("check the permitted IPs"), never the user's revocation.
var ErrCredentialsRefused = errors.New("bankctx: credentials refused: check the permitted IPs")

// CredentialsRefused reports whether err is bunq's session-server refusing
// the device's credentials (see ErrCredentialsRefused).
func CredentialsRefused(err error) bool {
	if errors.Is(err, ErrCredentialsRefused) {
		return true
	}
	return anyError(err, func(e error) bool {
		ae, ok := e.(*psd2.APIError)
		return ok && ae.Kind == psd2.KindBadRequest && ae.Path == "/session-server" && incorrectCredentials(ae)
	})
}

// anyError walks err's whole tree (errors.Join included: a failed session
// renewal is joined to the call's own refusal) and reports whether match
// holds for one of them.
func anyError(err error, match func(error) bool) bool {
	if err == nil {
		return false
	}
	if match(err) {
		return true
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return anyError(u.Unwrap(), match)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if anyError(e, match) {
				return true
			}
		}
	}
	return false
}

func incorrectCredentials(ae *psd2.APIError) bool {
	for _, d := range ae.Descriptions {
		l := strings.ToLower(d)
		if strings.Contains(l, "credentials are incorrect") || strings.Contains(l, "incorrect api key") {
			return true
		}
	}
	return false
}

func (p *Provider) load(ctx context.Context, consentID string) (*psd2.Context, error) {
	now := p.cfg.Clock.Now()
	p.mu.Lock()
	cached, ok := p.parsed[consentID]
	p.mu.Unlock()
	if ok && p.cfg.Recheck > 0 && now.Sub(cached.checked) < p.cfg.Recheck {
		return cached.bc, nil
	}
	blob, err := p.cfg.Store.Get(ctx, consentID)
	if err != nil {
		if missing(err) {
			p.forget(consentID)
		}
		return nil, err
	}
	defer clear(blob)
	sum := sha256.Sum256(blob)
	if ok && cached.sum == sum {
		p.remember(consentID, sum, cached.bc)
		return cached.bc, nil
	}
	bc := new(psd2.Context)
	if err := bc.UnmarshalJSON(blob); err != nil {
		// A value we cannot read is as good as none: rebuild over it.
		return nil, fmt.Errorf("%w: %w", tpp.ErrUnreadable, err)
	}
	p.track(bc, consentID)
	p.remember(consentID, sum, bc)
	return bc, nil
}

// remember caches a parsed context, evicting an arbitrary one when full.
func (p *Provider) remember(consentID string, sum [sha256.Size]byte, bc *psd2.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.parsed[consentID]; !ok && len(p.parsed) >= maxParsed {
		for k := range p.parsed {
			delete(p.parsed, k)
			break
		}
	}
	p.parsed[consentID] = parsedContext{sum: sum, bc: bc, checked: p.cfg.Clock.Now()}
}

func (p *Provider) forget(consentID string) {
	p.mu.Lock()
	delete(p.parsed, consentID)
	p.mu.Unlock()
}

func (p *Provider) save(ctx context.Context, consentID string, bc *psd2.Context) error {
	blob, err := bc.MarshalJSON()
	if err != nil {
		return fmt.Errorf("bankctx: serialise context of consent %s: %w", consentID, err)
	}
	defer clear(blob)
	if err := p.cfg.Store.Put(ctx, consentID, blob); err != nil {
		return fmt.Errorf("bankctx: store context of consent %s: %w", consentID, err)
	}
	p.remember(consentID, sha256.Sum256(blob), bc)
	return nil
}

func missing(err error) bool {
	return errors.Is(err, tpp.ErrNotFound) || errors.Is(err, tpp.ErrUnreadable)
}

func lockName(consentID string) string { return "ctx:" + consentID }

func (p *Provider) track(bc *psd2.Context, consentID string) {
	wp := weak.Make(bc)
	p.mu.Lock()
	p.owners[wp] = consentID
	p.mu.Unlock()
	runtime.AddCleanup(bc, func(wp weak.Pointer[psd2.Context]) {
		p.mu.Lock()
		delete(p.owners, wp)
		p.mu.Unlock()
	}, wp)
}

// ConsentOf returns the consent a context handed out by p belongs to.
func (p *Provider) ConsentOf(bc *psd2.Context) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id, ok := p.owners[weak.Make(bc)]
	return id, ok
}

// OnRenew writes a renewed session back to Redis. Pass it as
// psd2.Options.OnRenew (through a closure, since the client is made first).
// Contexts the provider did not hand out (the TPP's own) are ignored.
func (p *Provider) OnRenew(ctx context.Context, bc *psd2.Context) error {
	id, ok := p.ConsentOf(bc)
	if !ok {
		return nil
	}
	return p.save(ctx, id, bc)
}

// Purge forgets a consent's context (revocation, re-authorization due) and
// its cached bank answers. It takes the rebuild lock so a rebuild in
// flight cannot write the context back afterwards.
func (p *Provider) Purge(ctx context.Context, consentID string) error {
	lock, err := p.cfg.Locker.Acquire(ctx, lockName(consentID), p.cfg.LockTTL)
	if err != nil {
		return fmt.Errorf("bankctx: purge consent %s: %w", consentID, err)
	}
	defer func() { _ = lock.Release(context.WithoutCancel(ctx)) }()
	p.forget(consentID)
	if err := p.cfg.Store.Delete(ctx, consentID); err != nil {
		return err
	}
	if p.cfg.Residue != nil {
		if err := p.cfg.Residue.PurgeCached(ctx, consentID); err != nil {
			return fmt.Errorf("bankctx: purge cached answers of consent %s: %w", consentID, err)
		}
	}
	return nil
}

// Close ends the consent's session at the bank (DELETE /session/0) when a
// context is stored, then purges it and its access window. A bank error is
// returned after the purge: locally the context is gone either way.
func (p *Provider) Close(ctx context.Context, consentID string) error {
	var bankErr error
	bc, err := p.load(ctx, consentID)
	switch {
	case err == nil:
		// psd2 renews a refused session before giving up, and a renewal
		// does not stop when its caller does: wait at most CloseTimeout and
		// let a slow attempt finish on its own (bounded by psd2's timeouts).
		done := make(chan error, 1)
		go func() {
			p.setDraftFilter(context.WithoutCancel(ctx), consentID, bc, false)
			done <- p.cfg.Bank.CloseSession(context.WithoutCancel(ctx), bc)
		}()
		var err error
		select {
		case err = <-done:
		case <-time.After(p.cfg.CloseTimeout):
			err = fmt.Errorf("no answer within %s", p.cfg.CloseTimeout)
		}
		if err != nil && !IsAuthError(err) {
			bankErr = fmt.Errorf("bankctx: close bunq session of consent %s: %w", consentID, err)
		}
	case !missing(err):
		bankErr = err
	}
	if err := p.Purge(ctx, consentID); err != nil {
		return err
	}
	if p.cfg.Residue != nil {
		// Nothing is left to count for a revoked consent.
		if err := p.cfg.Residue.PurgeAccess(ctx, consentID); err != nil {
			return fmt.Errorf("bankctx: purge access window of consent %s: %w", consentID, err)
		}
	}
	return bankErr
}

// Verify asks the bank whether the consent's grant still works, by opening
// a fresh context from the stored access token (a new installation, so no
// rate window of the old one is in the way). It returns ErrGrantRevoked
// (wrapped) when the bank refuses the token, nil when the grant is alive
// (the fresh context then replaces the stored one), and other errors when
// the bank could not tell (down, rate limited).
func (p *Provider) Verify(ctx context.Context, c *tpp.Consent) error {
	if c == nil || c.Status != tpp.ConsentActive {
		return errors.New("bankctx: only active consents can be verified")
	}
	token, err := p.cfg.Tokens.AccessToken(ctx, c.ID)
	if err != nil {
		return fmt.Errorf("bankctx: access token of consent %s: %w", c.ID, err)
	}
	bc, err := p.build(ctx, c.ID, token)
	if err != nil {
		return err
	}
	lock, err := p.cfg.Locker.Acquire(ctx, lockName(c.ID), p.cfg.LockTTL)
	if err != nil {
		return fmt.Errorf("bankctx: store verified context of consent %s: %w", c.ID, err)
	}
	defer func() { _ = lock.Release(context.WithoutCancel(ctx)) }()
	return p.save(ctx, c.ID, bc)
}

// ServerKey returns the bank's server public key as recorded in a context's
// installation: the key that signs the bank's answers and its notification
// callbacks (notify.Config.Key).
func ServerKey(bc *psd2.Context) (*rsa.PublicKey, error) {
	blob, err := bc.MarshalJSON()
	if err != nil {
		return nil, err
	}
	defer clear(blob)
	var j struct {
		Installation struct {
			ServerPublicKey string `json:"server_public_key"`
		} `json:"installation"`
	}
	if err := json.Unmarshal(blob, &j); err != nil {
		return nil, fmt.Errorf("bankctx: read server key: %w", err)
	}
	block, _ := pem.Decode([]byte(j.Installation.ServerPublicKey))
	if block == nil {
		return nil, errors.New("bankctx: context has no server public key")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("bankctx: parse server key: %w", err)
	}
	rk, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("bankctx: server key is not RSA")
	}
	return rk, nil
}
