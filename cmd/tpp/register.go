package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/certs"
	"github.com/bunqtpp/tpp/psd2"
)

// runRegister registers this TPP with a bunq environment, or shows the
// registration with --status.
func runRegister(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return registerMain(ctx, args, stdout, stderr, os.Getenv, tpp.SystemClock{})
}

func registerUsage(w io.Writer) {
	fmt.Fprint(w, `Usage:
  tpp register --env ENV --cert FILE --key FILE --chain FILE --public-url URL [--permitted-ips IPS]
  tpp register --status [--env ENV]

Registers this TPP with bunq: installation, PSD2 credential (certificate),
device, session, OAuth client, OAuth callback URL (<public-url>/oauth/callback)
and notification filters for OAUTH and DRAFT_PAYMENT (<public-url>/bank/callbacks).
Running it again reuses the registration: it renews the session if needed,
adds what is missing and never creates duplicates.

Flags (environment variable in brackets):
  --env ENV            sandbox, production, or a bunq API base URL such as the
                       emulated sandbox's http://127.0.0.1:5000 ($TPP_BUNQ_ENV)
  --cert, --key, --chain FILE
                       QSeal certificate, its key and chain, PEM
                       ($TPP_CERT_FILE, $TPP_KEY_FILE, $TPP_CHAIN_FILE)
  --db PATH            SQLite database ($TPP_DB_PATH, default data/tpp.db)
  --master-key KEYS    master keys sealing secrets at rest ($TPP_MASTER_KEY)
  --public-url URL     where browsers and the bank reach this TPP ($TPP_PUBLIC_URL)
  --permitted-ips IPS  comma-separated IPs for the device registration; empty
                       binds the calling IP, "*" any IP ($TPP_PERMITTED_IPS)
  --status             show what is registered instead of registering
`)
}

type registerFlags struct {
	env, cert, key, chain, db, masterKey, publicURL, permittedIPs string
	status                                                        bool
}

func registerMain(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string, clock tpp.Clock) error {
	fs := flag.NewFlagSet("tpp register", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { registerUsage(stderr) }
	var f registerFlags
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&f.env, "env", env("TPP_BUNQ_ENV", ""), "bunq environment ($TPP_BUNQ_ENV)")
	fs.StringVar(&f.env, "bank", env("TPP_BUNQ_ENV", ""), "alias of --env")
	fs.StringVar(&f.cert, "cert", env("TPP_CERT_FILE", ""), "certificate ($TPP_CERT_FILE)")
	fs.StringVar(&f.key, "key", env("TPP_KEY_FILE", ""), "certificate key ($TPP_KEY_FILE)")
	fs.StringVar(&f.chain, "chain", env("TPP_CHAIN_FILE", ""), "certificate chain ($TPP_CHAIN_FILE)")
	fs.StringVar(&f.db, "db", cliDBDefault(getenv), "SQLite database or postgres:// URL ($TPP_DB_URL, $TPP_DB_PATH)")
	fs.StringVar(&f.masterKey, "master-key", getenv("TPP_MASTER_KEY"), "master keys ($TPP_MASTER_KEY)")
	fs.StringVar(&f.publicURL, "public-url", env("TPP_PUBLIC_URL", ""), "public base URL ($TPP_PUBLIC_URL)")
	fs.StringVar(&f.permittedIPs, "permitted-ips", env("TPP_PERMITTED_IPS", ""), "device permitted IPs ($TPP_PERMITTED_IPS)")
	fs.BoolVar(&f.status, "status", false, "show the registration")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tpp register: unexpected argument %q\n\n", fs.Arg(0))
		registerUsage(stderr)
		return errUsage
	}

	apiBase := ""
	if f.env != "" || !f.status {
		var err error
		if apiBase, err = resolveBunqEnv(f.env); err != nil {
			return err
		}
	}
	// The master key first: nothing is touched without it.
	kr, err := openKeyringFor(f.masterKey, f.db)
	if err != nil {
		return err
	}
	open := openCLIStore
	if f.status {
		open = openExistingCLIStore // showing never creates a database
	}
	st, err := open(ctx, f.db, clock, kr)
	if err != nil {
		return err
	}
	defer st.close()
	store := st.registrations
	if f.status {
		return registerStatus(ctx, store, apiBase, clock.Now(), stdout)
	}
	r := &registrar{store: store, clock: clock, out: stdout}
	return r.register(ctx, apiBase, f)
}

// resolveBunqEnv maps --env to the API base URL (without /v1).
func resolveBunqEnv(v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", errors.New("setting --env ($TPP_BUNQ_ENV) is empty: give sandbox, production, or the API base URL of an emulated sandbox (tpp sandbox prints it)")
	}
	if v == "emulated" {
		return "", errors.New("--env emulated would register with a bank that vanishes when this command ends: start 'tpp sandbox' and pass its API URL")
	}
	if e, ok := psd2.LookupEnvironment(v); ok {
		return e.APIBaseURL, nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("setting --env ($TPP_BUNQ_ENV) = %q is not sandbox, production or an http(s) base URL", v)
	}
	return strings.TrimSuffix(strings.TrimRight(u.String(), "/"), "/v1"), nil
}

// registrar runs the registration steps, saving after each one so that a
// failure halfway loses nothing and a rerun continues.
type registrar struct {
	store  tpp.RegistrationStore
	clock  tpp.Clock
	out    io.Writer
	client *psd2.Client
	reg    *tpp.Registration
	bc     *psd2.Context
	step   int
}

const registerSteps = 5

func (r *registrar) progress(format string, args ...any) {
	r.step++
	fmt.Fprintf(r.out, "[%d/%d] %s\n", r.step, registerSteps, fmt.Sprintf(format, args...))
}

func (r *registrar) save(ctx context.Context) error {
	if r.bc != nil {
		b, err := json.Marshal(r.bc)
		if err != nil {
			return err
		}
		r.reg.Context = b
		r.reg.UserID = r.bc.UserID()
		r.reg.SessionExpiry = r.bc.SessionExpiry()
	}
	if err := r.store.SaveRegistration(ctx, r.reg); err != nil {
		return fmt.Errorf("save registration: %w", err)
	}
	return nil
}

func (r *registrar) register(ctx context.Context, apiBase string, f registerFlags) error {
	public, err := url.Parse(strings.TrimRight(strings.TrimSpace(f.publicURL), "/"))
	if err != nil || (public.Scheme != "http" && public.Scheme != "https") || public.Host == "" || public.RawQuery != "" || public.Fragment != "" {
		return fmt.Errorf("setting --public-url ($TPP_PUBLIC_URL) = %q must be the absolute http(s) base URL where the bank and browsers reach this TPP", f.publicURL)
	}
	// bunq calls back over https only (its callback documentation).
	if public.Scheme != "https" && (f.env == "sandbox" || f.env == "production") {
		return fmt.Errorf("setting --public-url ($TPP_PUBLIC_URL) = %q must be https for --env %s: bunq sends callbacks to https URLs only", f.publicURL, f.env)
	}
	callbackURL := public.String() + "/oauth/callback"
	notifyURL := public.String() + "/bank/callbacks"
	if f.cert == "" || f.key == "" || f.chain == "" {
		return errors.New("settings --cert, --key and --chain ($TPP_CERT_FILE, $TPP_KEY_FILE, $TPP_CHAIN_FILE) are all required; 'tpp certs' makes test ones")
	}
	bundle, err := certs.Load(f.cert, f.key, f.chain)
	if err != nil {
		return err
	}
	if err := bundle.Validate(r.clock.Now()); err != nil {
		return fmt.Errorf("certificate %s: %w", f.cert, err)
	}
	sum := sha256.Sum256(bundle.Leaf.Raw)
	fingerprint := hex.EncodeToString(sum[:])
	var ips []string
	for _, ip := range strings.Split(f.permittedIPs, ",") {
		if ip = strings.TrimSpace(ip); ip != "" {
			ips = append(ips, ip)
		}
	}

	r.client, err = psd2.New(psd2.Options{BaseURL: apiBase, Clock: r.clock, HTTPClient: &http.Client{Timeout: 30 * time.Second},
		DeviceDescription: "bunqtpp TPP"})
	if err != nil {
		return err
	}
	fmt.Fprintf(r.out, "Registering with %s as %s\n", apiBase, bundle.Subject())

	r.reg, err = r.store.Registration(ctx, apiBase)
	if tpp.ErrorCode(err) == tpp.ENotFound {
		r.reg, err = &tpp.Registration{APIBaseURL: apiBase}, nil
	}
	if err != nil {
		return err
	}

	// 1. The TPP's API context.
	if len(r.reg.Context) > 0 && r.reg.CertFingerprint == fingerprint {
		r.bc = new(psd2.Context)
		if err := json.Unmarshal(r.reg.Context, r.bc); err != nil {
			return fmt.Errorf("stored API context: %w", err)
		}
		before := r.bc.SessionID()
		if err := r.client.EnsureSession(ctx, r.bc); err != nil {
			return fmt.Errorf("renew session: %w", err)
		}
		if r.bc.SessionID() != before {
			r.progress("API context: reused installation %d, renewed session (valid until %s)", r.bc.InstallationID(), r.bc.SessionExpiry().UTC().Format(time.RFC3339))
		} else {
			r.progress("API context: reused installation %d, session valid until %s", r.bc.InstallationID(), r.bc.SessionExpiry().UTC().Format(time.RFC3339))
		}
	} else {
		if len(r.reg.Context) > 0 {
			fmt.Fprintln(r.out, "      the certificate changed: registering it with a new API context")
		}
		bc, err := r.client.Install(ctx, psd2.KindPSD2, psd2.ContextOptions{})
		if err != nil {
			return fmt.Errorf("installation: %w", err)
		}
		fmt.Fprintf(r.out, "      installation %d created\n", bc.InstallationID())
		token, err := r.client.RegisterPSD2Credential(ctx, bc, psd2.PSD2Credentials{Certificate: bundle.Leaf, Chain: bundle.Chain, Key: bundle.Key})
		if err != nil {
			return fmt.Errorf("PSD2 credential: %w", err)
		}
		bc.SetSecret(token)
		fmt.Fprintln(r.out, "      PSD2 credential registered")
		if err := r.client.RegisterDevice(ctx, bc, psd2.ContextOptions{Description: "bunqtpp TPP", PermittedIPs: ips}); err != nil {
			return fmt.Errorf("device-server: %w", err)
		}
		fmt.Fprintf(r.out, "      device %d registered (permitted IPs: %s)\n", bc.DeviceID(), ipsText(ips))
		if err := r.client.OpenSession(ctx, bc); err != nil {
			return fmt.Errorf("session-server: %w", err)
		}
		r.bc = bc
		r.reg.OAuthClientID, r.reg.ClientID, r.reg.ClientSecret = 0, "", ""
		r.progress("API context: new session for user %d (valid until %s)", bc.UserID(), bc.SessionExpiry().UTC().Format(time.RFC3339))
	}
	r.reg.CertSubject, r.reg.CertFingerprint, r.reg.CertNotAfter = bundle.Subject(), fingerprint, bundle.Leaf.NotAfter
	if err := r.save(ctx); err != nil {
		return err
	}

	// 2. The OAuth client: bunq allows one, so reuse whatever exists.
	if err := r.oauthClient(ctx); err != nil {
		return err
	}
	// 3. The callback URL.
	if err := r.callbackURL(ctx, callbackURL); err != nil {
		return err
	}
	// 4. Notification filters.
	if err := r.notificationFilters(ctx, notifyURL); err != nil {
		return err
	}
	// 5. Done.
	r.progress("registered: OAuth client_id %s, callback %s, notifications %s", r.reg.ClientID, r.reg.CallbackURL, r.reg.NotificationURL)
	return nil
}

func ipsText(ips []string) string {
	if len(ips) == 0 {
		return "the calling IP"
	}
	return strings.Join(ips, ", ")
}

func (r *registrar) oauthClient(ctx context.Context) error {
	c, bc := r.client, r.bc
	var oc psd2.OAuthClient
	var err error
	how := "reused"
	if r.reg.OAuthClientID != 0 {
		oc, err = c.GetOAuthClient(ctx, bc, r.reg.OAuthClientID)
		if errors.Is(err, psd2.ErrNotFound) {
			r.reg.OAuthClientID, err = 0, nil
		} else if err != nil {
			return fmt.Errorf("read OAuth client: %w", err)
		}
	}
	if r.reg.OAuthClientID == 0 {
		list, err := c.ListOAuthClients(ctx, bc)
		if err != nil {
			return fmt.Errorf("list OAuth clients: %w", err)
		}
		for _, x := range list {
			if x.Status == "" || x.Status == "ACTIVE" {
				r.reg.OAuthClientID = x.ID
				break
			}
		}
		if r.reg.OAuthClientID == 0 {
			if r.reg.OAuthClientID, err = c.CreateOAuthClient(ctx, bc); err != nil {
				return fmt.Errorf("create OAuth client: %w", err)
			}
			how = "created"
		}
		if oc, err = c.GetOAuthClient(ctx, bc, r.reg.OAuthClientID); err != nil {
			return fmt.Errorf("read OAuth client: %w", err)
		}
	}
	if oc.ClientID == "" || oc.Secret == "" {
		return fmt.Errorf("OAuth client %d has no client_id or secret", oc.ID)
	}
	r.reg.ClientID, r.reg.ClientSecret = oc.ClientID, oc.Secret
	r.progress("OAuth client %d %s (client_id %s)", oc.ID, how, oc.ClientID)
	return r.save(ctx)
}

func (r *registrar) callbackURL(ctx context.Context, want string) error {
	list, err := r.client.ListCallbackURLs(ctx, r.bc, r.reg.OAuthClientID)
	if err != nil {
		return fmt.Errorf("list callback URLs: %w", err)
	}
	if slices.ContainsFunc(list, func(c psd2.CallbackURL) bool { return c.URL == want }) {
		r.progress("callback URL %s already registered", want)
	} else {
		if _, err := r.client.CreateCallbackURL(ctx, r.bc, r.reg.OAuthClientID, want); err != nil {
			return fmt.Errorf("add callback URL: %w", err)
		}
		r.progress("callback URL %s added", want)
	}
	r.reg.CallbackURL = want
	return r.save(ctx)
}

func (r *registrar) notificationFilters(ctx context.Context, target string) error {
	have, err := r.client.ListNotificationFilters(ctx, r.bc)
	if err != nil {
		return fmt.Errorf("list notification filters: %w", err)
	}
	// Our own earlier target (a changed --public-url) is replaced, not kept
	// beside the new one: bunq allows 2 URLs per category and would go on
	// calling the stale one. Other targets are left alone.
	stale := r.reg.NotificationURL
	var all []psd2.NotificationFilter
	removed := 0
	for _, f := range have {
		if stale != "" && stale != target && f.NotificationTarget == stale {
			removed++
			continue
		}
		all = append(all, f)
	}
	var added []string
	for _, cat := range []string{psd2.CategoryOAuth, psd2.CategoryDraftPayment} {
		f := psd2.NotificationFilter{Category: cat, NotificationTarget: target}
		if !slices.Contains(all, f) {
			all = append(all, f)
			added = append(added, cat)
		}
	}
	if len(added) == 0 && removed == 0 {
		r.progress("notification filters for OAUTH and DRAFT_PAYMENT already point to %s", target)
	} else {
		// The bank replaces the user's URL filters with the posted set, so
		// the ones already there are posted again.
		if _, err := r.client.CreateNotificationFilters(ctx, r.bc, all); err != nil {
			return fmt.Errorf("set notification filters: %w", err)
		}
		r.progress("notification filters for %s added (%s); %d stale ones of ours removed", strings.Join(added, ", "), target, removed)
	}
	r.reg.NotificationURL = target
	return r.save(ctx)
}

// certWarnDays: below this many days to expiry --status warns.
const certWarnDays = 30

func registerStatus(ctx context.Context, store tpp.RegistrationStore, apiBase string, now time.Time, w io.Writer) error {
	var regs []*tpp.Registration
	if apiBase != "" {
		reg, err := store.Registration(ctx, apiBase)
		if tpp.ErrorCode(err) == tpp.ENotFound {
			fmt.Fprintf(w, "Not registered with %s. Run: tpp register --env %s --cert … --key … --chain … --public-url …\n", apiBase, apiBase)
			return nil
		}
		if err != nil {
			return err
		}
		regs = append(regs, reg)
	} else {
		var err error
		if regs, err = store.Registrations(ctx); err != nil {
			return err
		}
		if len(regs) == 0 {
			fmt.Fprintln(w, "Not registered with any bunq environment. Run: tpp register --help")
			return nil
		}
	}
	for _, reg := range regs {
		fmt.Fprintf(w, "Environment:       %s\n", reg.APIBaseURL)
		fmt.Fprintf(w, "PSP user id:       %d\n", reg.UserID)
		session := "none"
		if !reg.SessionExpiry.IsZero() {
			session = reg.SessionExpiry.UTC().Format(time.RFC3339)
			if !reg.SessionExpiry.After(now) {
				session += " (expired; renewed on next use or by tpp register)"
			}
		}
		fmt.Fprintf(w, "Session expires:   %s\n", session)
		fmt.Fprintf(w, "OAuth client:      %d (client_id %s)\n", reg.OAuthClientID, orNone(reg.ClientID))
		fmt.Fprintf(w, "Callback URL:      %s\n", orNone(reg.CallbackURL))
		fmt.Fprintf(w, "Notifications:     %s\n", orNone(reg.NotificationURL))
		fmt.Fprintf(w, "Certificate:       %s\n", orNone(reg.CertSubject))
		if !reg.CertNotAfter.IsZero() {
			days := int(reg.CertNotAfter.Sub(now).Hours() / 24)
			line := fmt.Sprintf("%s (%d days left)", reg.CertNotAfter.UTC().Format(time.RFC3339), days)
			switch {
			case !reg.CertNotAfter.After(now):
				line += " WARNING: the certificate has expired; renew it and run tpp register again"
			case days < certWarnDays:
				line += fmt.Sprintf(" WARNING: expires within %d days; renew it and run tpp register again", certWarnDays)
			}
			fmt.Fprintf(w, "Certificate until: %s\n", line)
		}
		fmt.Fprintf(w, "Registered:        %s, updated %s\n", reg.CreatedAt.UTC().Format(time.RFC3339), reg.UpdatedAt.UTC().Format(time.RFC3339))
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
