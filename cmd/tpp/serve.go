package main

import (
	"context"
	"crypto/rsa"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	goredis "github.com/redis/go-redis/v9"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/aisp"
	"github.com/bunqtpp/tpp/api"
	"github.com/bunqtpp/tpp/apidoc"
	"github.com/bunqtpp/tpp/bankctx"
	"github.com/bunqtpp/tpp/cbpii"
	"github.com/bunqtpp/tpp/consent"
	"github.com/bunqtpp/tpp/health"
	"github.com/bunqtpp/tpp/janitor"
	"github.com/bunqtpp/tpp/logging"
	"github.com/bunqtpp/tpp/metrics"
	"github.com/bunqtpp/tpp/notify"
	"github.com/bunqtpp/tpp/oauth"
	"github.com/bunqtpp/tpp/pisp"
	"github.com/bunqtpp/tpp/psd2"
	"github.com/bunqtpp/tpp/redis"
	"github.com/bunqtpp/tpp/registration"
	"github.com/bunqtpp/tpp/seal"
	"github.com/bunqtpp/tpp/server"
	"github.com/bunqtpp/tpp/settings"
	"github.com/bunqtpp/tpp/storage"
	"github.com/bunqtpp/tpp/web"
	"github.com/bunqtpp/tpp/webhook"
)

// runServe runs the TPP: the fintech API, the consent pages, the bank
// callback endpoint and the background workers, until ctx ends.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tpp serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: tpp serve [flags]\n\nRuns the TPP. Every flag has a TPP_ environment variable; flags win.\n\nFlags:")
		fs.PrintDefaults()
	}
	cfg, err := parseConfig(fs, args, os.Getenv)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	return serve(ctx, cfg, serveEnv{stdout: stdout, stderr: stderr, clock: tpp.SystemClock{}})
}

// serveEnv is what the process gives the server besides its configuration.
type serveEnv struct {
	stdout, stderr io.Writer
	clock          tpp.Clock
	// prepare, when set, runs after the wiring and before the listener
	// serves: 'tpp demo' uses it to add its demo client and routes.
	prepare func(ctx context.Context, a *app) error
	// started, when set, is called once the listeners are up, with the
	// server's public URL (tests and the demo use it).
	started func(publicURL string)
}

// app is the wired service. Fields are filled by newApp in dependency order
// and closed by close in reverse order.
type app struct {
	cfg   *config
	log   *slog.Logger
	clock tpp.Clock

	keyring *seal.Keyring
	store   *storage.Stores
	rdb     goredis.UniversalClient
	rkeys   redis.Keys // one prefix for every Redis key the TPP writes
	bank    bankURLs
	reg     *tpp.Registration
	psd2    *psd2.Client
	tppCtx  *psd2.Context
	keys    *bankctx.KeyPool
	ctxs    *bankctx.Provider
	cache   *redis.Cache        // AISP answers, grouped per consent
	access  *redis.AccessWindow // PSD2 unattended reads per consent
	oauth   *oauth.Service
	hooks   *webhook.Dispatcher
	engine  *gin.Engine
	metrics *metrics.Metrics
	workers []func(context.Context) error
	// onCall are the services' hooks on every bank call, added once the
	// services exist (after the bank client): swapped whole, read per call.
	onCall atomic.Pointer[[]func(psd2.CallInfo)]

	closers []func()
}

// bankURLs are the three bunq hosts the TPP talks to.
type bankURLs struct {
	API      string // without /v1
	OAuth    string // the authorize page URL
	Token    string // the token endpoint URL
	Emulated bool
}

func serve(ctx context.Context, cfg *config, env serveEnv) error {
	log := newLogger(env.stderr, cfg)
	cfg.print(env.stderr)

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("setting --listen ($TPP_LISTEN) = %q: %w", cfg.Listen, err)
	}
	// A public URL derived from a ":0" listen address only becomes known now.
	if cfg.PublicURL == "http://"+cfg.Listen {
		cfg.PublicURL = "http://" + ln.Addr().String()
	}

	a := &app{cfg: cfg, log: log, clock: env.clock}
	defer a.close()
	if err := a.wire(ctx, env.stdout); err != nil {
		ln.Close()
		return err
	}
	if env.prepare != nil {
		if err := env.prepare(ctx, a); err != nil {
			ln.Close()
			return err
		}
	}

	return server.Run(ctx, server.Config{
		Handler: a.engine, Listener: ln,
		MetricsListen: cfg.MetricsListen, Metrics: a.metrics.Handler(),
		Start:   a.keys.Start, // running from here on: Get waits for keys, never fails
		Workers: a.workers,
		Grace:   cfg.ShutdownGrace, Log: log, Out: env.stdout,
		PublicURL: cfg.PublicURL, Started: env.started, LogAttrs: []any{"bank", a.bank.API},
	})
}

func newLogger(w io.Writer, cfg *config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	return logging.New(w, logging.Options{Level: level, Text: cfg.LogFormat == "text"})
}

func (a *app) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
}

// wire builds every component in dependency order.
func (a *app) wire(ctx context.Context, out io.Writer) error {
	cfg := a.cfg
	var err error
	a.metrics = metrics.New(metrics.WithClock(a.clock))

	// 1. Secrets at rest.
	if a.keyring, err = a.openKeyring(); err != nil {
		return err
	}
	// 2. SQLite or PostgreSQL: the source of truth.
	if a.store, err = storage.Open(ctx, cfg.storage(), a.clock, a.keyring); err != nil {
		return err
	}
	a.closers = append(a.closers, func() { a.store.Close() })
	// 3. Redis: contexts, state, budgets, caches.
	if err := a.openRedis(ctx); err != nil {
		return err
	}
	// 4. The bank, and this TPP's registration with it.
	if err := a.connectBank(ctx, out); err != nil {
		return err
	}
	// 5. The bunq client, per-user contexts and the key pool.
	if err := a.bankClient(ctx); err != nil {
		return err
	}
	// 6. Services and routes.
	return a.services(ctx)
}

// openKeyring uses the configured master key. Only against the emulated
// bank may it be missing: then a dev key is kept beside the database.
func (a *app) openKeyring() (*seal.Keyring, error) {
	if a.cfg.MasterKey != "" || a.cfg.BankEnv != "emulated" {
		return storage.OpenKeyring(a.cfg.MasterKey)
	}
	path := filepath.Join(filepath.Dir(a.cfg.DBPath), "master.key")
	key, created, err := seal.DevKey(path)
	if err != nil {
		return nil, err
	}
	if created {
		a.log.Warn("no master key set: generated a development key for the emulated bank", "file", path)
	}
	return storage.OpenKeyring(key)
}

func (a *app) openRedis(ctx context.Context) error {
	cfg := a.cfg
	a.rkeys = redis.NewKeys("tpp:")
	settings := redis.Settings{URL: cfg.RedisURL, Sentinel: cfg.RedisSentinel, Cluster: cfg.RedisCluster, Password: cfg.RedisPassword, CAFile: cfg.RedisCA}
	rdb, stop, err := redis.Open(ctx, settings, cfg.BankEnv == "production", a.log)
	if err != nil {
		return err
	}
	a.rdb = rdb
	a.closers = append(a.closers, stop)
	return nil
}

// connectBank resolves the bank's URLs and loads the registration.
func (a *app) connectBank(ctx context.Context, out io.Writer) error {
	cfg := a.cfg
	switch cfg.BankEnv {
	case "emulated":
		// The emulated bank signs its callbacks only when the TPP checks
		// signatures (--bank-callback-auth signature, the default for emulated).
		mode, _, _ := cfg.callbackAuth()
		urls, stop, err := registration.StartEmulated(ctx, registration.EmulatedBank{
			Addr: cfg.EmulatedAddr, SignCallbacks: mode == notify.AuthSignature,
			DataDir: filepath.Dir(cfg.DBPath), PublicURL: cfg.PublicURL, PermittedIPs: cfg.PermittedIPs,
			Store: a.store.Registrations, Clock: a.clock, Logger: a.log.With("component", "emulated-bank"),
		}, out)
		if err != nil {
			return err
		}
		a.closers = append(a.closers, stop)
		a.bank = bankURLs{API: urls.API, OAuth: urls.OAuth, Token: urls.Token, Emulated: true}
	case "sandbox", "production":
		e, _ := psd2.LookupEnvironment(cfg.BankEnv)
		a.bank = bankURLs{API: e.APIBaseURL, OAuth: e.OAuthAuthorizeURL, Token: e.TokenURL}
	default:
		a.bank = bankURLs{API: strings.TrimRight(cfg.BankEnv, "/"), OAuth: cfg.BankOAuthURL, Token: cfg.BankTokenURL}
	}
	reg, tppCtx, err := registration.ForServing(ctx, a.store.Registrations, a.bank.API, cfg.BankEnv, cfg.PublicURL, a.clock.Now())
	if err != nil {
		return err
	}
	a.reg, a.tppCtx = reg, tppCtx
	a.metrics.SetCertificateExpiry(reg.CertNotAfter)
	return nil
}

func (a *app) bankClient(ctx context.Context) error {
	cfg := a.cfg
	keys := a.rkeys
	regs := a.store.Registrations
	var provider *bankctx.Provider
	// Many users' contexts talk to one bank host: keep enough idle
	// connections, or every burst pays for new TCP (and TLS) handshakes.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 64
	client, err := psd2.New(psd2.Options{
		BaseURL:    a.bank.API,
		HTTPClient: &http.Client{Timeout: 30 * time.Second, Transport: transport},
		Budget:     a.rateBudget(keys),
		SignAll:    cfg.SignAll,
		// bunq limits context creation per egress IP. Emulated banks (in
		// process, or a base URL such as 'tpp sandbox') are not held to
		// it, so local flows are not held up by session-server's 1 per 30 s.
		SharedEgress: cfg.BankEnv == "sandbox" || cfg.BankEnv == "production",
		Clock:        a.clock,
		Logger:       a.log,
		OnCall: func(ci psd2.CallInfo) {
			a.metrics.ObserveBankCall(ci.Method, ci.Path, ci.Status, ci.Duration)
			bankctx.AlertCredentialsRefused(a.log, a.metrics, ci)
			if hooks := a.onCall.Load(); hooks != nil {
				for _, fn := range *hooks {
					fn(ci)
				}
			}
		},
		OnRenew: func(ctx context.Context, c *psd2.Context) error {
			a.metrics.SessionRenewed()
			if c == a.tppCtx {
				return registration.SaveSession(ctx, regs, a.reg, c, a.log)
			}
			return provider.OnRenew(ctx, c)
		},
	})
	if err != nil {
		return err
	}
	a.psd2 = client

	a.keys = bankctx.NewKeyPool(8, 1) // started in serve, before the listener
	store, err := redis.NewContextStore(a.rdb, keys, a.keyring, 0)
	if err != nil {
		return err
	}
	// The provider purges these with a consent's context (aisp uses them).
	a.cache = redis.NewCache(a.rdb, keys, redis.CacheOptions{Sealer: a.keyring, GroupFields: 2, Clock: a.clock})
	if a.access, err = redis.NewAccessWindow(a.rdb, keys, 4, 24*time.Hour); err != nil {
		return err
	}
	provider, err = bankctx.New(bankctx.Config{
		Bank:         client,
		Store:        store,
		Locker:       redis.NewLocker(a.rdb, keys),
		Tokens:       a.store.Consents,
		Keys:         a.keys,
		PermittedIPs: settings.List(cfg.PermittedIPs),
		NotifyURL:    a.reg.NotificationURL,
		Logger:       a.log,
		OnRebuild:    a.metrics.OnContextRebuild(),
		Recheck:      bankctx.DefaultRecheck,
		Clock:        a.clock,
		Residue:      aisp.Residue{Cache: a.cache, Access: a.access},
	})
	if err != nil {
		return err
	}
	a.ctxs = provider
	return nil
}

// rateBudget keeps bank calls under bunq's limits, as configured, shared
// between fintech clients in round robin where they use one key (the
// TPP's own installation, context creation).
func (a *app) rateBudget(keys redis.Keys) psd2.Budget {
	var b psd2.Budget
	switch a.cfg.RateBudget {
	case "local":
		b = a.metrics.WrapBudget(psd2.NewMemoryBudget(a.clock))
	case "off":
		a.log.Warn("bank rate budget is off: only for load tests against a bank without rate limits")
		return psd2.Unlimited{}
	default:
		rb := redis.NewRateBudget(a.rdb, keys)
		rb.OnWait = a.metrics.ObserveBudgetWait
		b = rb
	}
	return psd2.NewFairBudget(b, api.BudgetShare)
}

// services wires the services and their routes, in dependency order.
func (a *app) services(ctx context.Context) error {
	if err := a.webhooks(); err != nil {
		return err
	}
	gate, err := a.consentGate()
	if err != nil {
		return err
	}
	payments, err := a.paymentService(gate)
	if err != nil {
		return err
	}
	svc, err := a.oauthService(gate, payments)
	if err != nil {
		return err
	}
	callbacks, err := a.bankCallbacks(gate, payments)
	if err != nil {
		return err
	}
	v1, err := a.baseRoutes(svc, callbacks)
	if err != nil {
		return err
	}
	if err := a.roles(v1, gate, svc, payments); err != nil {
		return err
	}
	a.sweeper(gate)
	return nil
}

// webhooks delivers webhooks to fintechs, from the durable outbox.
func (a *app) webhooks() error {
	cfg, clients := a.cfg, a.store.Clients
	hooks, err := webhook.NewDispatcher(webhook.NewOutboxStore(a.store.Outbox, clients), webhook.Options{
		Clock:               a.clock,
		Logger:              a.log,
		OnResult:            a.metrics.ObserveWebhook,
		DenyPrivateNetworks: cfg.webhookDenyPrivate(),
	})
	if err != nil {
		return err
	}
	a.hooks = hooks
	a.workers = append(a.workers, hooks.Run)
	return nil
}

// consentGate is the one consent gate: where a consent may be used. It
// names oauth's consent page in reauthorize_url; oauth, the roles and the
// janitor apply its deadlines.
func (a *app) consentGate() (*consent.Gate, error) {
	return consent.NewGate(consent.Config{
		Store: a.store.Consents, BankContexts: a.ctxs, Clock: a.clock, Logger: a.log,
		AuthorizeURL: oauth.AuthorizeURLs(a.cfg.PublicURL),
	})
}

// paymentService is the PISP service and its status poller. It takes part
// in oauth's browser flow (oauth.Config.Payments), so it is made first,
// with the authorize URLs oauth will serve.
func (a *app) paymentService(gate *consent.Gate) (*pisp.Service, error) {
	payments, err := pisp.New(pisp.Config{
		Payments:        a.store.Payments,
		Consents:        a.store.Consents,
		Idempotency:     a.store.Idempotency,
		Bank:            a.psd2,
		Contexts:        a.ctxs,
		Gate:            gate,
		TPP:             pisp.TPPContextFunc(func(context.Context) (*psd2.Context, error) { return a.tppCtx, nil }),
		AuthorizeURL:    oauth.AuthorizeURLs(a.cfg.PublicURL),
		Events:          a.store.Outbox,
		OnUnknownStatus: a.metrics.UnknownBankStatus,
		OnPollRound:     a.metrics.PollRound,
		PollInterval:    a.cfg.PollInterval,
		Clock:           a.clock,
		Logger:          a.log,
	})
	if err != nil {
		return nil, err
	}
	// One replica polls per round; the others skip it.
	pollLocks := redis.NewLocker(a.rdb, a.rkeys)
	a.workers = append(a.workers, func(ctx context.Context) error { return payments.RunExclusive(ctx, pollLocks) })
	return payments, nil
}

// oauthService is the consent flow: the consents API, the consent pages
// and the bank's OAuth.
func (a *app) oauthService(gate *consent.Gate, payments *pisp.Service) (*oauth.Service, error) {
	cfg, consents := a.cfg, a.store.Consents
	svc, err := oauth.New(oauth.Config{
		PublicURL: cfg.PublicURL,
		Bank: oauth.BankOAuth{
			ClientID:     a.reg.ClientID,
			ClientSecret: a.reg.ClientSecret,
			AuthURL:      a.bank.OAuth,
			TokenURL:     a.bank.Token,
			HTTPClient:   &http.Client{Timeout: 15 * time.Second, Transport: a.metrics.BankTransport(http.DefaultTransport)},
		},
		CSRFKey: a.keyring.DeriveKey("csrf"),
		Sealer:  a.keyring,
		Audit:   a.store.Audit,
		// Off unless the operator accepts token answers without state.
		AcceptTokenWithoutState: cfg.AcceptTokenWithoutState,
		Consents:                consents,
		Clients:                 a.store.Clients,
		States:                  redis.NewStateStore(a.rdb, a.rkeys, 0, a.clock),
		BankContexts:            a.ctxs,
		Deadlines:               gate,
		Closes:                  consents,
		Payments:                payments,
		Clock:                   a.clock,
		Logger:                  a.log,
	})
	if err != nil {
		return nil, err
	}
	a.oauth = svc
	return svc, nil
}

// bankCallbacks takes bunq's callbacks. They are authenticated by source
// range (production), by the emulated bank's signature, or not at all
// (bunq's sandbox); either way they are hints re-checked at the bank at a
// bounded rate.
func (a *app) bankCallbacks(gate *consent.Gate, payments *pisp.Service) (*notify.Handler, error) {
	mode, cidrs, err := a.cfg.callbackAuth()
	if err != nil {
		return nil, err
	}
	var key *rsa.PublicKey
	if mode == notify.AuthSignature {
		if key, err = bankctx.ServerKey(a.tppCtx); err != nil {
			return nil, fmt.Errorf("the registration's bank server key: %w", err)
		}
	}
	return notify.New(notify.Config{
		Consents: a.store.Consents,
		Grants:   gate,
		Drafts:   payments,
		Key:      key,
		Auth:     mode,
		CIDRs:    cidrs,
		Clock:    a.clock,
		Logger:   a.log,
	})
}

// baseRoutes creates the engine with health, metrics, the API docs, the
// consent pages and the bank's callbacks, and returns the fintech API's
// one group behind API-key authentication (and the per-client rate limit).
func (a *app) baseRoutes(svc *oauth.Service, callbacks *notify.Handler) (*gin.RouterGroup, error) {
	cfg := a.cfg
	pages, err := web.NewBranded(web.Branding{Name: cfg.TPPName, LegalEntity: cfg.TPPLegalEntity, Licence: cfg.TPPLicence, PrivacyURL: cfg.TPPPrivacyURL})
	if err != nil {
		return nil, err
	}
	auth, err := a.authenticate(a.store.Clients)
	if err != nil {
		return nil, err
	}
	a.engine = api.NewEngine(api.Options{Logger: a.log, Observe: a.metrics.APIObserver(), Unavailable: unavailable})
	a.health().Register(a.engine)
	if err := a.metrics.WatchConsents(metrics.SQLConsents{DB: a.store.Raw}, 0); err != nil {
		return nil, err
	}
	apidoc.Register(a.engine)
	apidoc.RegisterHome(a.engine)
	root := &a.engine.RouterGroup
	if err := api.Mount(root)(oauth.NewPages(svc, pages)); err != nil {
		return nil, err
	}
	callbacks.Register(root)
	return a.engine.Group("/v1", auth), nil
}

// roles mounts the fintech API of the consents and the three PSD2 roles on
// the authenticated group v1.
func (a *app) roles(v1 *gin.RouterGroup, gate *consent.Gate, svc *oauth.Service, payments *pisp.Service) error {
	if err := api.Mount(v1)(oauth.NewHandler(svc)); err != nil {
		return err
	}
	if err := api.Mount(v1)(pisp.NewHandler(payments)); err != nil {
		return err
	}
	accounts, err := aisp.New(aisp.Config{
		Gate:      gate,
		Bank:      a.psd2,
		Cache:     a.cache,
		Access:    a.access,
		CursorKey: a.keyring.DeriveKey("aisp-cursor"),
		CacheTTL:  a.cfg.CacheTTL,
		Logger:    a.log,
	})
	if err != nil {
		return err
	}
	if err := api.Mount(v1)(aisp.NewHandler(accounts)); err != nil {
		return err
	}
	funds, err := cbpii.New(cbpii.Config{Gate: gate, Bank: a.psd2, Audit: a.store.Audit, Clock: a.clock, Log: a.log})
	if err != nil {
		return err
	}
	a.onCall.Store(&[]func(psd2.CallInfo){funds.ObserveCall})
	return api.Mount(v1)(cbpii.NewHandler(funds))
}

// sweeper applies the consent deadlines no request triggers and expires
// idempotency keys and bank sessions.
func (a *app) sweeper(gate *consent.Gate) {
	consents := a.store.Consents
	sweeper := &janitor.Janitor{
		Consents:    consents,
		Deadlines:   gate,
		Expiring:    consents,
		Idempotency: a.store.Idempotency,
		Closes:      consents,
		Sessions:    a.ctxs,
		Clock:       a.clock,
		Logger:      a.log,
	}
	a.workers = append(a.workers, sweeper.Run)
}

// authenticate is the API-key check of the fintech API, followed by the
// per-client rate limit unless --client-rate-limit is off.
func (a *app) authenticate(clients api.Authenticator) (gin.HandlerFunc, error) {
	l, on, err := a.cfg.clientLimit()
	if err != nil || !on {
		return api.Authenticate(clients), err
	}
	rl, err := redis.NewClientRateLimiter(a.rdb, a.rkeys, l)
	if err != nil {
		return nil, err
	}
	allow := func(ctx context.Context, clientID string) (api.RateDecision, error) {
		d, err := rl.Allow(ctx, clientID)
		return api.RateDecision(d), err
	}
	// IETF draft RateLimit-Policy: quota;w=window seconds (;burst is ours).
	policy := fmt.Sprintf("%d;w=%d;burst=%d", l.Rate, int(l.Period/time.Second), l.Burst)
	return api.AuthenticateLimited(clients, allow, policy), nil
}

// health lists what /readyz checks. The bank check is reported but does
// not make the replica unready: a bunq outage must not take every replica
// out of rotation, when consents, docs and callbacks still work.
func (a *app) health() *health.Checker {
	bank := health.Bank(&http.Client{Timeout: 2 * time.Second}, a.bank.API+"/v1")
	bank.Optional = true
	checks := append(append([]health.Check{}, a.store.Checks...),
		health.Redis(redis.Health{Client: a.rdb}),
		bank,
		health.Registration(health.RegistrationValid(a.store.Registrations, a.bank.API, a.clock)),
	)
	return health.NewWithOptions(health.Options{Version: version()}, checks...)
}

// unavailable names the dependency behind an error that will pass, for
// api.Options.Unavailable: 503 with Retry-After, not 500.
func unavailable(err error) string {
	switch {
	case storage.Unavailable(err):
		return "The database"
	case redis.Unavailable(err):
		return "Redis"
	}
	return ""
}
