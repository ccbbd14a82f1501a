package notify

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/psd2"
)

// How bank callbacks are authenticated (Config.Auth). bunq documents
// no signature on callbacks: it names its source ranges instead
// (production 185.40.108.0/22; sandbox: changing AWS addresses). Whatever
// the mode, a callback is only a hint that is re-checked at the bank.
const (
	// AuthIP accepts callbacks whose TCP peer is inside one of
	// Config.CIDRs.
	AuthIP = "ip"
	// AuthSignature requires X-Bunq-Server-Signature by the bank's
	// server key (Config.Key): the emulator's option, not bunq's.
	AuthSignature = "signature"
	// AuthNone accepts every callback (still only a hint).
	AuthNone = "none"
)

// BunqProductionRange is the source range of bunq's production
// callbacks (bunq's callback documentation).
var BunqProductionRange = netip.MustParsePrefix("185.40.108.0/22")

// callbackAuth checks inbound callbacks before they are parsed.
type callbackAuth struct {
	mode  string
	key   *rsa.PublicKey
	cidrs []netip.Prefix
}

func newCallbackAuth(cfg Config) (callbackAuth, error) {
	mode := cfg.Auth
	if mode == "" {
		mode = AuthNone
		if cfg.Key != nil {
			mode = AuthSignature
		}
	}
	a := callbackAuth{mode: mode, key: cfg.Key, cidrs: cfg.CIDRs}
	switch mode {
	case AuthSignature:
		if a.key == nil {
			return a, errors.New("notify: callback auth signature needs the bank's server key")
		}
	case AuthIP:
		if len(a.cidrs) == 0 {
			return a, errors.New("notify: callback auth ip needs at least one CIDR")
		}
	case AuthNone:
	default:
		return a, fmt.Errorf("notify: callback auth %q: use ip, signature or none", mode)
	}
	return a, nil
}

// errCallbackRefused is a callback from an unknown source or with a bad
// signature.
var errCallbackRefused = errors.New("notify: callback refused")

// check authenticates a callback by its TCP peer or signature. The peer is
// the connection's address, never a forwarding header, which anyone could
// set.
func (a callbackAuth) check(r *http.Request, body []byte) error {
	switch a.mode {
	case AuthSignature:
		if err := psd2.Verify(a.key, body, r.Header.Get("X-Bunq-Server-Signature")); err != nil {
			return fmt.Errorf("%w: %w", errCallbackRefused, err)
		}
	case AuthIP:
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return fmt.Errorf("%w: peer %q", errCallbackRefused, r.RemoteAddr)
		}
		ip = ip.Unmap()
		for _, p := range a.cidrs {
			if p.Contains(ip) {
				return nil
			}
		}
		return fmt.Errorf("%w: peer %s is outside the allowed ranges", errCallbackRefused, ip)
	}
	return nil
}

// Re-check limits: a callback makes the TPP open a fresh bunq context per
// consent it names (installation, device, session: bunq allows one
// session-server call per 30 s per IP). Forged or replayed callbacks must
// not spend that budget, so re-checks are bounded per bunq user and
// overall, per process and minute. Over the limit the callback answers
// 503 and bunq retries it a minute later (6 tries in all).
const (
	DefaultRechecksPerMinute     = 10
	DefaultUserRechecksPerMinute = 5
)

// ErrRecheckLimited: the callback's re-checks are over the rate limit.
var ErrRecheckLimited = errors.New("notify: callback re-checks are rate limited; the bank retries")

type recheckLimiter struct {
	clock         tpp.Clock
	total, byUser int

	mu      sync.Mutex
	minute  time.Time
	used    int
	perUser map[int64]int
}

func newRecheckLimiter(clock tpp.Clock, total, byUser int) *recheckLimiter {
	if total <= 0 {
		total = DefaultRechecksPerMinute
	}
	if byUser <= 0 {
		byUser = DefaultUserRechecksPerMinute
	}
	return &recheckLimiter{clock: clock, total: total, byUser: byUser, perUser: map[int64]int{}}
}

// take takes one re-check for bunq user (0: the callback named no user;
// only the overall limit applies), or answers ErrRecheckLimited.
func (l *recheckLimiter) take(user int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if m := l.clock.Now().Truncate(time.Minute); !m.Equal(l.minute) {
		l.minute, l.used = m, 0
		clear(l.perUser)
	}
	if l.used >= l.total || (user != 0 && l.perUser[user] >= l.byUser) {
		return ErrRecheckLimited
	}
	l.used++
	if user != 0 {
		l.perUser[user]++
	}
	return nil
}
