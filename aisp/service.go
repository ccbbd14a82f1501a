// Package aisp is the account information service (PSD2 AISP, scope
// "accounts"): a user's bunq accounts, balances and transactions as one
// JSON API, read through the consent's own bank context, cached briefly in
// Redis and held to the PSD2 access frequency. Consents are opened at the
// one gate (package consent), as every role opens them.
package aisp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/api"
	"github.com/bunqtpp/tpp/psd2"
)

// Bank is the part of the bunq client the service reads with (*psd2.Client).
type Bank interface {
	ListMonetaryAccounts(ctx context.Context, bc *psd2.Context, p psd2.Page) (*psd2.Listing[psd2.MonetaryAccount], error)
	GetMonetaryAccount(ctx context.Context, bc *psd2.Context, id int64) (psd2.MonetaryAccount, error)
	ListPayments(ctx context.Context, bc *psd2.Context, accountID int64, p psd2.Page) (*psd2.Listing[psd2.Payment], error)
}

// Cache is a read-through cache that coalesces identical loads (*redis.Cache).
type Cache interface {
	GetOrLoad(ctx context.Context, key string, ttl time.Duration, fresh bool, load func(context.Context) ([]byte, error)) ([]byte, bool, error)
}

// Gate opens a consent for a read and maps failed bank calls, revoking a
// consent whose grant the bank confirms is gone (*consent.Gate).
type Gate interface {
	Open(ctx context.Context, clientID, consentID string, scope tpp.Scope) (*tpp.Consent, error)
	Context(ctx context.Context, c *tpp.Consent) (*psd2.Context, error)
	BankError(ctx context.Context, c *tpp.Consent, err error) error
}

// AccessWindow counts unattended reads per consent (*redis.AccessWindow).
// A Redis error must refuse the read (fail closed).
type AccessWindow interface {
	Allow(ctx context.Context, consentID string) (tpp.AccessDecision, error)
}

// DefaultCacheTTL is how long a read is served from the cache.
const DefaultCacheTTL = 30 * time.Second

// Config holds the service's dependencies and settings.
type Config struct {
	Gate   Gate
	Bank   Bank
	Cache  Cache
	Access AccessWindow
	// CursorKey authenticates transaction cursors (HMAC-SHA256). Replicas
	// must share it; at least 32 bytes. Empty means a random key per
	// process: cursors then only work on the replica that made them.
	CursorKey []byte
	// CacheTTL of reads; DefaultCacheTTL when 0.
	CacheTTL time.Duration
	Logger   *slog.Logger
}

// Service reads accounts and transactions for fintech clients.
type Service struct {
	gate    Gate
	bank    Bank
	cache   Cache
	access  AccessWindow
	cursors cursorCodec
	ttl     time.Duration
	log     *slog.Logger
}

// New validates cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Gate == nil || cfg.Bank == nil || cfg.Cache == nil || cfg.Access == nil {
		return nil, errors.New("aisp: Gate, Bank, Cache and Access are required")
	}
	codec, err := newCursorCodec(cfg.CursorKey)
	if err != nil {
		return nil, err
	}
	ttl := cfg.CacheTTL
	if ttl == 0 {
		ttl = DefaultCacheTTL
	}
	if ttl < time.Millisecond {
		return nil, fmt.Errorf("aisp: cache TTL %s is below 1 ms", ttl)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{gate: cfg.Gate, bank: cfg.Bank, cache: cfg.Cache, access: cfg.Access, cursors: codec, ttl: ttl, log: log}, nil
}

// Request says who reads and how.
type Request struct {
	ClientID  string
	ConsentID string
	// Attended: the user is present (PSU-IP-Address was sent); the read
	// does not count against the PSD2 access frequency.
	Attended bool
	// Fresh skips the cache (Cache-Control: no-cache).
	Fresh bool
}

// Access is where a read leaves the consent's daily budget. Known is
// false when there is nothing to tell: a request refused before the count,
// or an attended read while Access cannot peek. Counted says whether this
// read used up one of the budget's reads.
type Access struct {
	Known     bool
	Counted   bool
	Limit     int
	Remaining int
}

// AccessPeeker is an AccessWindow that can also tell the budget left
// without using it. When Access implements it, attended answers carry the
// RateLimit headers too.
type AccessPeeker interface {
	Peek(ctx context.Context, consentID string) (tpp.AccessDecision, error)
}

// Account is an account as the API shows it.
type Account struct {
	ID         string    `json:"id"`
	IBAN       string    `json:"iban"`
	HolderName string    `json:"holder_name"` // the account holder, as the bank names them
	Label      string    `json:"label"`       // the user's own name for the account at the bank
	Type       string    `json:"type"`
	Status     string    `json:"status"`
	Currency   string    `json:"currency"`
	Balance    tpp.Money `json:"balance"`
}

// open runs the checks every read shares: the consent and its scope, then
// check (the request's own validation, may be nil), then the access
// frequency. Only a read that passes the others is counted.
func (s *Service) open(ctx context.Context, r Request, check func(c *tpp.Consent) error) (*tpp.Consent, Access, error) {
	c, err := s.gate.Open(ctx, r.ClientID, r.ConsentID, tpp.ScopeAccounts)
	if err != nil {
		return nil, Access{}, err
	}
	if check != nil {
		if err := check(c); err != nil {
			return nil, Access{}, err
		}
	}
	if r.Attended {
		if p, ok := s.access.(AccessPeeker); ok {
			// Only informative: an error here must not fail an attended read.
			if d, err := p.Peek(ctx, c.ID); err == nil {
				return c, Access{Known: true, Limit: d.Limit, Remaining: d.Remaining}, nil
			}
		}
		return c, Access{}, nil
	}
	d, err := s.access.Allow(ctx, c.ID)
	if err != nil {
		return nil, Access{}, fmt.Errorf("aisp: access frequency of consent %s: %w", c.ID, err)
	}
	// A refused read is not recorded by the window: it is not counted.
	acc := Access{Known: true, Counted: d.Allowed, Limit: d.Limit, Remaining: d.Remaining}
	if !d.Allowed {
		return nil, acc, &tpp.Error{
			Code: tpp.EAccessLimitExceed,
			Message: fmt.Sprintf("the %d unattended reads of the last 24 hours are used up for consent %s; send PSU-IP-Address when the user is present",
				d.Limit, c.ID),
			RetryAfter: d.RetryAfter,
		}
	}
	return c, acc, nil
}

// CacheGroup is the prefix of every cache key of a consent's answers
// ("aisp:<consent>"): its first two ':'-separated fields, so a cache
// grouping keys by two fields can purge them together at revocation.
func CacheGroup(consentID string) string { return "aisp:" + consentID }

// cached serves key from the cache or load. The load runs once for
// identical concurrent reads, with the bank context of c.
func (s *Service) cached(ctx context.Context, c *tpp.Consent, fresh bool, key string, load func(context.Context, *psd2.Context) (any, error)) ([]byte, error) {
	b, _, err := s.cache.GetOrLoad(ctx, CacheGroup(c.ID)+":"+key, s.ttl, fresh, func(ctx context.Context) ([]byte, error) {
		bc, err := s.gate.Context(ctx, c)
		if err != nil {
			return nil, err
		}
		v, err := load(ctx, bc)
		if err != nil {
			return nil, err
		}
		return json.Marshal(v)
	})
	return b, readError(err)
}

// cachedAs serves key like cached, as a T. When this call's own load made
// the value, it is returned as made instead of decoded again from the
// bytes it was encoded to for the cache; calls that shared another's load
// or hit the cache decode.
func cachedAs[T any](ctx context.Context, s *Service, c *tpp.Consent, fresh bool, key string, load func(context.Context, *psd2.Context) (T, error)) (T, error) {
	// Written in the cache's load goroutine before GetOrLoad hands back
	// its result, and read only after a successful return.
	var made *T
	b, err := s.cached(ctx, c, fresh, key, func(ctx context.Context, bc *psd2.Context) (any, error) {
		v, err := load(ctx, bc)
		if err != nil {
			return nil, err
		}
		made = &v
		return v, nil
	})
	var out T
	if err != nil {
		return out, err
	}
	if made != nil {
		return *made, nil
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return out, fmt.Errorf("aisp: cached %s: %w", key, err)
	}
	return out, nil
}

// readError adapts bank_rejected for reads: the read endpoints' contract
// has no 422, and a bank refusing a read we built is the bank failing, not
// the client; the bank's reason stays in the detail.
func readError(err error) error {
	var e *tpp.Error
	if !errors.As(err, &e) || e.Code != tpp.EBankRejected {
		return err
	}
	return &tpp.Error{Code: tpp.EBankUnavailable, Message: e.Message, Err: err}
}

// Accounts lists the user's bank, savings and joint accounts.
func (s *Service) Accounts(ctx context.Context, r Request) ([]Account, Access, error) {
	c, acc, err := s.open(ctx, r, nil)
	if err != nil {
		return nil, acc, err
	}
	out, err := cachedAs(ctx, s, c, r.Fresh, "accounts.v2", func(ctx context.Context, bc *psd2.Context) ([]Account, error) {
		out := []Account{}
		p := psd2.Page{Count: 200}
		for range maxPages {
			l, err := s.bank.ListMonetaryAccounts(ctx, bc, p)
			if err != nil {
				return nil, s.gate.BankError(ctx, c, err)
			}
			for i := range l.Items {
				if a, ok := accountView(&l.Items[i]); ok {
					out = append(out, a)
				}
			}
			next, more := olderPage(l.Pagination, len(l.Items))
			if !more {
				break
			}
			p.OlderID = next
		}
		return out, nil
	})
	if err != nil {
		return nil, acc, err
	}
	return out, acc, nil
}

// Account returns one account of the user.
func (s *Service) Account(ctx context.Context, r Request, accountID string) (Account, Access, error) {
	var id int64
	c, acc, err := s.open(ctx, r, func(*tpp.Consent) (err error) {
		id, err = tpp.ParseAccountID(accountID)
		return err
	})
	if err != nil {
		return Account{}, acc, err
	}
	out, err := cachedAs(ctx, s, c, r.Fresh, "account.v2:"+accountID, func(ctx context.Context, bc *psd2.Context) (Account, error) {
		ma, err := s.bank.GetMonetaryAccount(ctx, bc, id)
		if err != nil {
			return Account{}, s.accountError(ctx, c, accountID, err)
		}
		a, ok := accountView(&ma)
		if !ok || ma.ID != id {
			return Account{}, tpp.Errorf(tpp.EAccountNotFound, "no account %q under consent %s", accountID, c.ID)
		}
		return a, nil
	})
	if err != nil {
		return Account{}, acc, err
	}
	return out, acc, nil
}

// accountError maps a bank failure on one account: the bank not knowing
// it (in this consent's context) is account_not_found.
func (s *Service) accountError(ctx context.Context, c *tpp.Consent, accountID string, err error) error {
	if errors.Is(err, psd2.ErrNotFound) {
		return tpp.Wrap(err, tpp.EAccountNotFound, "no account %q under consent %s", accountID, c.ID)
	}
	return s.gate.BankError(ctx, c, err)
}

// maxPages bounds the bank pages one request may read.
const maxPages = 25

// olderPage returns the older_id of the page after a listing, and whether
// there is one.
func olderPage(p psd2.Pagination, n int) (int64, bool) {
	if n == 0 || !p.Present || p.OlderID <= 0 {
		return 0, false
	}
	return p.OlderID, true
}

var accountTypes = map[string]string{
	psd2.AccountTypeBank:    "bank",
	psd2.AccountTypeSavings: "savings",
	psd2.AccountTypeJoint:   "joint",
}

var accountStatuses = map[string]string{
	"ACTIVE":         "active",
	"BLOCKED":        "blocked",
	"CANCELLED":      "cancelled",
	"PENDING_REOPEN": "pending_reopen",
}

// accountView maps a bunq account; ok is false for types the API does not
// show and for accounts without an IBAN.
func accountView(ma *psd2.MonetaryAccount) (Account, bool) {
	typ, ok := accountTypes[ma.Type]
	if !ok {
		return Account{}, false
	}
	iban, holder := ma.IBAN()
	iban, err := tpp.NormalizeIBAN(iban)
	if err != nil {
		return Account{}, false
	}
	if holder == "" {
		holder = ma.DisplayName
	}
	status, ok := accountStatuses[strings.ToUpper(ma.Status)]
	if !ok {
		// An unknown status cannot be trusted to pay: show it as blocked.
		status = "blocked"
	}
	cur := ma.Currency
	bal := tpp.Money{Amount: "0.00", Currency: cur}
	if ma.Balance != nil {
		bal = money(*ma.Balance, cur)
	}
	return Account{
		ID: tpp.AccountID(ma.ID), IBAN: iban, HolderName: holder, Label: ma.Description,
		Type: typ, Status: status, Currency: cur, Balance: bal,
	}, true
}

// money normalises a bank amount to two decimals. A value that does not
// parse is kept as the bank sent it rather than invented.
func money(a psd2.Amount, fallbackCurrency string) tpp.Money {
	cur := a.Currency
	if cur == "" {
		cur = fallbackCurrency
	}
	if n, err := tpp.ParseSignedMinor(a.Value); err == nil {
		return tpp.Money{Amount: tpp.FormatMinor(n), Currency: cur}
	}
	return tpp.Money{Amount: a.Value, Currency: cur}
}

func requestID(ctx context.Context) string { return api.RequestIDFromContext(ctx) }
