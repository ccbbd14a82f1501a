// Package sandbox emulates bunq's sandbox API closely enough that bunq's own
// Postman collection and our bunq client run against it unchanged. It speaks
// the real wire protocol (envelopes, positional context responses, body
// signatures, pagination, bunq's error texts) as described in
// docs/bunq-api.md, and adds emulator-only control endpoints under /_sandbox/
// for tests: fault injection, rate-limit switch, clock, stats, consent.
//
// It deliberately shares no protocol code with package psd2: each side is
// written from the reference on its own, so a misreading in one shows up as
// a failing test against the other.
//
// Decisions on the reference's open points (§11):
//   - unknown or expired tokens answer 403 "Insufficient authorisation.";
//   - sessions have a fixed lifetime of the user's session_timeout (no
//     sliding extension, matching what the SDKs model);
//   - draft and PSP draft payments use PENDING / ACCEPTED / REJECTED / CANCELLED;
//   - /v1/token takes its parameters from the query string or a form body;
//   - one installation may register any number of API keys;
//   - repeated request ids are tolerated unless Config.Strict;
//   - callbacks are unsigned (Config.SignCallbacks signs them), retried 6
//     times a minute apart on the emulator's clock;
//   - devices are bound to their IP and rate limits count per source IP
//     (Config.RateLimitPerInstallation counts per installation);
//   - a sandbox certificate's CN must end in its roles: any of AISP, PISP,
//     CBPII or PIISP (CBPII and PIISP are the same role).
package sandbox

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Config configures an emulated bank.
type Config struct {
	// Seed makes the seeded users, accounts, API keys and histories
	// reproducible: the same seed gives the same bank. 0 means 1.
	Seed int64
	// RateLimits turns on bunq's per-endpoint rate limits.
	RateLimits bool
	// DropMerchantReference reads draft payment entries back with a null
	// merchant_reference: bunq does not document echoing it (a switch,
	// also PUT /_sandbox/merchant-reference).
	DropMerchantReference bool
	// Clock tells the time; nil means time.Now. Expiry logic uses it plus the
	// offset set through POST /_sandbox/clock.
	Clock func() time.Time
	// Logger receives request logs; nil discards them. Tokens, keys, secrets
	// and codes are never logged.
	Logger *slog.Logger
	// HTTPClient delivers callbacks; nil means a client with a 5 s timeout.
	HTTPClient *http.Client
	// SignCallbacks adds X-Bunq-Server-Signature to notification callbacks.
	// bunq documents no callback signature, so it is off by default (an
	// option for TPPs that want to test signature checks).
	SignCallbacks bool
	// RateLimitPerInstallation counts rate limits per installation instead
	// of per source IP (bunq's documented rule, the default).
	RateLimitPerInstallation bool
	// FundsAnswer is the confirmation-of-funds answer shape:
	// "confirmation" (default, {"ConfirmationOfFunds": {"has_sufficient_funds"}}
	// as bunq's Python SDK parses it) or "id" ({"Id": {"id"}} as bunq's PISP
	// page and OpenAPI document show it).
	FundsAnswer string
	// Strict refuses requests without the headers bunq documents as
	// mandatory (User-Agent, Cache-Control, X-Bunq-Geolocation,
	// X-Bunq-Language, X-Bunq-Region, X-Bunq-Client-Request-Id) and request
	// ids repeated within one installation. bunq is lenient in practice, so
	// it is off by default (bunq's own clients keep working).
	Strict bool
	// NullEmptyObjects sends null for empty object fields as real payloads
	// do (bunq-api.md §12.8: permitted_device, responses, object,
	// merchant_reference). bunq's OpenAPI schema forbids null there, and
	// the conformance tests hold the default mode to it, so it is off by
	// default.
	NullEmptyObjects bool
	// DNFormat is how the PSP user's certificate_distinguished_name (and
	// its CERTIFICATE_DISTINGUISHED_NAME alias) spells the certificate's
	// subject: "rfc2253" (default, "CN=…,O=…,C=NL", most specific first) or
	// "openssl" ("/C=NL/O=…/CN=…", in certificate order). bunq documents the
	// field but not its format, so it is a switch.
	DNFormat string
}

// Bank is one emulated bunq sandbox. It is safe for concurrent use.
type Bank struct {
	cfg    Config
	log    *slog.Logger
	client *http.Client
	key    *rsa.PrivateKey
	pubPEM string

	mu    sync.Mutex
	st    *state // guarded by mu
	table []route
	// knobs, guarded by mu
	offset     time.Duration
	clockMoved chan struct{} // closed and replaced when offset changes
	rateOn     bool
	signCB     bool
	apparentIP string          // when set, loopback callers appear to come from it
	requestIDs map[string]bool // installation id + " " + X-Bunq-Client-Request-Id (strict mode)
	// noTokenState leaves state out of token answers (PUT
	// /_sandbox/token-state): bunq's documented answer carries it
	// (bunq-api.md §4.3), an older one may not.
	noTokenState bool
	faults       []*fault
	stats        map[string]int
	hits         map[string][]time.Time // rate-limit windows per client+endpoint
	deliveries   []callbackRecord

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New builds a bank and seeds it. It generates the bank's one RSA key.
func New(cfg Config) (*Bank, error) {
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("sandbox: generate bank key: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("sandbox: encode bank key: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Bank{
		cfg:        cfg,
		log:        log,
		client:     client,
		key:        key,
		pubPEM:     string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
		rateOn:     cfg.RateLimits,
		signCB:     cfg.SignCallbacks,
		clockMoved: make(chan struct{}),
		requestIDs: map[string]bool{},
		stats:      map[string]int{},
		hits:       map[string][]time.Time{},
		ctx:        ctx,
		cancel:     cancel,
	}
	b.st = newState(cfg.Seed, b.now())
	b.st.dropMerchantRef = cfg.DropMerchantReference
	b.st.nullEmpty = cfg.NullEmptyObjects
	switch cfg.DNFormat {
	case "", "rfc2253":
	case "openssl":
		b.st.opensslDN = true
	default:
		return nil, fmt.Errorf("sandbox: DNFormat %q: use rfc2253 or openssl", cfg.DNFormat)
	}
	b.table = b.routes()
	return b, nil
}

// now is the emulator's time: the configured clock plus the control offset.
func (b *Bank) now() time.Time {
	return b.cfg.Clock().Add(b.offset).UTC()
}

// API is the REST host: /v1/... and the emulator-only /_sandbox/... .
func (b *Bank) API() http.Handler { return http.HandlerFunc(b.serveAPI) }

// OAuth is the OAuth host: the /auth consent page and the /app pages where a
// sandbox user handles draft payments and connected apps.
func (b *Bank) OAuth() http.Handler { return b.oauthMux() }

// Token is the OAuth token host: POST /v1/token.
func (b *Bank) Token() http.Handler { return http.HandlerFunc(b.serveToken) }

// Close stops callback deliveries and waits for them.
func (b *Bank) Close() {
	b.cancel()
	b.wg.Wait()
}

// Server runs the three hosts of a Bank on real listeners.
type Server struct {
	// URLs without a trailing slash; APIURL is the host base without /v1.
	APIURL, OAuthURL, TokenURL string
	Bank                       *Bank

	servers []*http.Server
}

// Start builds a bank and serves it on the three addresses ("127.0.0.1:0"
// picks a free port). It returns once all three are listening.
func Start(ctx context.Context, cfg Config, apiAddr, oauthAddr, tokenAddr string) (*Server, error) {
	bank, err := New(cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{Bank: bank}
	var lc net.ListenConfig
	hosts := []struct {
		addr string
		h    http.Handler
		url  *string
	}{
		{apiAddr, bank.API(), &s.APIURL},
		{oauthAddr, bank.OAuth(), &s.OAuthURL},
		{tokenAddr, bank.Token(), &s.TokenURL},
	}
	var lns []net.Listener
	for _, h := range hosts {
		ln, err := lc.Listen(ctx, "tcp", h.addr)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			bank.Close()
			return nil, fmt.Errorf("sandbox: listen on %s: %w", h.addr, err)
		}
		lns = append(lns, ln)
		*h.url = "http://" + ln.Addr().String()
	}
	for i, h := range hosts {
		srv := &http.Server{Handler: h.h, ReadHeaderTimeout: 10 * time.Second}
		s.servers = append(s.servers, srv)
		go func(ln net.Listener) {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				bank.log.Error("sandbox: serve", "addr", ln.Addr().String(), "err", err)
			}
		}(lns[i])
	}
	return s, nil
}

// Shutdown stops the listeners gracefully and then the bank's workers.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	for _, srv := range s.servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	s.Bank.Close()
	return errors.Join(errs...)
}
