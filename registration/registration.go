// Package registration registers this TPP with a bunq environment, as
// 'tpp register' does: its installation, PSD2 credential (the QSeal
// certificate), device-server and session, its OAuth client and callback
// URL, and the notification filters for OAUTH and DRAFT_PAYMENT. Every step
// is saved in the tpp.RegistrationStore as it completes, so a failure
// halfway loses nothing and a rerun continues without duplicates.
package registration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/certs"
	"github.com/bunqtpp/tpp/notify"
	"github.com/bunqtpp/tpp/oauth"
	"github.com/bunqtpp/tpp/psd2"
)

// Request is what to register.
type Request struct {
	// Env is the environment as given (sandbox, production or a base URL);
	// APIBase is what ResolveEnv made of it.
	Env, APIBase string
	// Cert, Key and Chain are the QSeal certificate's PEM files.
	Cert, Key, Chain string
	// PublicURL is where the bank and browsers reach this TPP.
	PublicURL string
	// PermittedIPs is the device's comma-separated IPs; empty binds the
	// calling IP, "*" any.
	PermittedIPs string
}

// Register registers with req.APIBase, or completes and refreshes an
// earlier registration there, writing one progress line per step to out.
func Register(ctx context.Context, store tpp.RegistrationStore, clock tpp.Clock, out io.Writer, req Request) error {
	r := &registrar{store: store, clock: clock, out: out}
	return r.register(ctx, req)
}

// ResolveEnv maps --env to the API base URL (without /v1).
func ResolveEnv(v string) (string, error) {
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

func (r *registrar) register(ctx context.Context, f Request) error {
	public, err := publicURL(f)
	if err != nil {
		return err
	}
	if f.Cert == "" || f.Key == "" || f.Chain == "" {
		return errors.New("settings --cert, --key and --chain ($TPP_CERT_FILE, $TPP_KEY_FILE, $TPP_CHAIN_FILE) are all required; 'tpp certs' makes test ones")
	}
	bundle, err := certs.Load(f.Cert, f.Key, f.Chain)
	if err != nil {
		return err
	}
	if err := bundle.Validate(r.clock.Now()); err != nil {
		return fmt.Errorf("certificate %s: %w", f.Cert, err)
	}
	r.client, err = psd2.New(psd2.Options{BaseURL: f.APIBase, Clock: r.clock, HTTPClient: &http.Client{Timeout: 30 * time.Second},
		DeviceDescription: "bunqtpp TPP"})
	if err != nil {
		return err
	}
	fmt.Fprintf(r.out, "Registering with %s as %s\n", f.APIBase, bundle.Subject())

	r.reg, err = r.store.Registration(ctx, f.APIBase)
	if tpp.ErrorCode(err) == tpp.ENotFound {
		r.reg, err = &tpp.Registration{APIBaseURL: f.APIBase}, nil
	}
	if err != nil {
		return err
	}
	// 1. The TPP's API context.
	if err := r.apiContext(ctx, bundle, splitIPs(f.PermittedIPs)); err != nil {
		return err
	}
	// 2. The OAuth client: bunq allows one, so reuse whatever exists.
	if err := r.oauthClient(ctx); err != nil {
		return err
	}
	// 3. The callback URL.
	if err := r.callbackURL(ctx, public+oauth.CallbackPath); err != nil {
		return err
	}
	// 4. Notification filters.
	if err := r.notificationFilters(ctx, public+notify.Path); err != nil {
		return err
	}
	// 5. Done.
	r.progress("registered: OAuth client_id %s, callback %s, notifications %s", r.reg.ClientID, r.reg.CallbackURL, r.reg.NotificationURL)
	return nil
}

// publicURL checks req.PublicURL and returns it without a trailing slash.
func publicURL(f Request) (string, error) {
	public, err := url.Parse(strings.TrimRight(strings.TrimSpace(f.PublicURL), "/"))
	if err != nil || (public.Scheme != "http" && public.Scheme != "https") || public.Host == "" || public.RawQuery != "" || public.Fragment != "" {
		return "", fmt.Errorf("setting --public-url ($TPP_PUBLIC_URL) = %q must be the absolute http(s) base URL where the bank and browsers reach this TPP", f.PublicURL)
	}
	// bunq calls back over https only (its callback documentation).
	if public.Scheme != "https" && (f.Env == "sandbox" || f.Env == "production") {
		return "", fmt.Errorf("setting --public-url ($TPP_PUBLIC_URL) = %q must be https for --env %s: bunq sends callbacks to https URLs only", f.PublicURL, f.Env)
	}
	return public.String(), nil
}

func splitIPs(s string) []string {
	var ips []string
	for _, ip := range strings.Split(s, ",") {
		if ip = strings.TrimSpace(ip); ip != "" {
			ips = append(ips, ip)
		}
	}
	return ips
}

// apiContext reuses the stored API context of the same certificate
// (renewing its session) or installs a new one: installation, PSD2
// credential, device-server and session.
func (r *registrar) apiContext(ctx context.Context, bundle *certs.Bundle, ips []string) error {
	sum := sha256.Sum256(bundle.Leaf.Raw)
	fingerprint := hex.EncodeToString(sum[:])
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
		bc, err := r.install(ctx, bundle, ips)
		if err != nil {
			return err
		}
		r.bc = bc
		r.reg.OAuthClientID, r.reg.ClientID, r.reg.ClientSecret = 0, "", ""
		r.progress("API context: new session for user %d (valid until %s)", bc.UserID(), bc.SessionExpiry().UTC().Format(time.RFC3339))
	}
	r.reg.CertSubject, r.reg.CertFingerprint, r.reg.CertNotAfter = bundle.Subject(), fingerprint, bundle.Leaf.NotAfter
	return r.save(ctx)
}

// install creates a new API context for the certificate.
func (r *registrar) install(ctx context.Context, bundle *certs.Bundle, ips []string) (*psd2.Context, error) {
	bc, err := r.client.Install(ctx, psd2.KindPSD2, psd2.ContextOptions{})
	if err != nil {
		return nil, fmt.Errorf("installation: %w", err)
	}
	fmt.Fprintf(r.out, "      installation %d created\n", bc.InstallationID())
	token, err := r.client.RegisterPSD2Credential(ctx, bc, psd2.PSD2Credentials{Certificate: bundle.Leaf, Chain: bundle.Chain, Key: bundle.Key})
	if err != nil {
		return nil, fmt.Errorf("PSD2 credential: %w", err)
	}
	bc.SetSecret(token)
	fmt.Fprintln(r.out, "      PSD2 credential registered")
	if err := r.client.RegisterDevice(ctx, bc, psd2.ContextOptions{Description: "bunqtpp TPP", PermittedIPs: ips}); err != nil {
		return nil, fmt.Errorf("device-server: %w", err)
	}
	fmt.Fprintf(r.out, "      device %d registered (permitted IPs: %s)\n", bc.DeviceID(), ipsText(ips))
	if err := r.client.OpenSession(ctx, bc); err != nil {
		return nil, fmt.Errorf("session-server: %w", err)
	}
	r.describePSP(bc, bundle)
	return bc, nil
}

// describePSP says how bunq shows this TPP to its users, and warns when the
// certificate subject bunq recorded is not the certificate's: bunq would
// then show users another identity than the one registered here.
func (r *registrar) describePSP(bc *psd2.Context, bundle *certs.Bundle) {
	u, ok := bc.SessionUser()
	if !ok {
		return
	}
	fmt.Fprintf(r.out, "      bunq shows users this TPP as %q\n", u.DisplayName)
	dn := u.CertificateSubject()
	if !psd2.SameSubject(dn, bundle.Leaf.Subject) {
		fmt.Fprintf(r.out, "      WARNING: bunq recorded the certificate subject %q, not the certificate's %q\n", dn, bundle.Subject())
	}
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

// Status prints what is registered with apiBase (every environment when
// empty), warning about a certificate near or past its expiry.
func Status(ctx context.Context, store tpp.RegistrationStore, apiBase string, now time.Time, w io.Writer) error {
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
