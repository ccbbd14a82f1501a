package psd2

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// ContextOptions tune context creation.
type ContextOptions struct {
	// Key is the installation's client key. When nil, KeySource is asked,
	// and when that is nil too a fresh RSA-2048 key is generated (~50-100 ms:
	// a key pool should hand out pre-generated keys through KeySource).
	Key       *rsa.PrivateKey
	KeySource func() (*rsa.PrivateKey, error)
	// Description for device-server; Options.DeviceDescription when empty.
	Description string
	// PermittedIPs for device-server; omitted when nil (the bank then binds
	// the calling IP). ["*"] makes a wildcard registration.
	PermittedIPs []string
}

// PSD2Credentials are the TPP's QSeal certificate and its key.
type PSD2Credentials struct {
	Certificate *x509.Certificate
	// Chain are the intermediate and root certificates. When empty the
	// certificate itself is sent as its chain, as bunq's sandbox tests do.
	Chain []*x509.Certificate
	// Key is the certificate's private key (RSA: the signature must be
	// PKCS#1 v1.5 with SHA-256).
	Key crypto.Signer
}

// NewAPIKeyContext creates a context from a bunq API key: installation,
// device-server, session-server (reference §1.2).
func (c *Client) NewAPIKeyContext(ctx context.Context, apiKey string, o ContextOptions) (*Context, error) {
	return c.newContext(ctx, KindAPIKey, apiKey, nil, o)
}

// NewOAuthContext creates a context for an end user from the OAuth access
// token, used as an API key (§1.4). The session user is a UserApiKey, whose
// id is the context's UserID.
func (c *Client) NewOAuthContext(ctx context.Context, accessToken string, o ContextOptions) (*Context, error) {
	return c.newContext(ctx, KindOAuth, accessToken, nil, o)
}

// NewPSD2Context creates the TPP's own context: installation,
// payment-service-provider-credential with the certificate, then
// device-server and session-server with the returned token (§1.3).
func (c *Client) NewPSD2Context(ctx context.Context, cred PSD2Credentials, o ContextOptions) (*Context, error) {
	if cred.Certificate == nil || cred.Key == nil {
		return nil, errors.New("psd2: PSD2 context needs a certificate and its key")
	}
	return c.newContext(ctx, KindPSD2, "", &cred, o)
}

func (c *Client) newContext(ctx context.Context, kind ContextKind, secret string, cred *PSD2Credentials, o ContextOptions) (*Context, error) {
	if kind != KindPSD2 && secret == "" {
		return nil, errors.New("psd2: empty API key or access token")
	}
	bc, err := c.Install(ctx, kind, o)
	if err != nil {
		return nil, err
	}
	if cred != nil {
		if secret, err = c.RegisterPSD2Credential(ctx, bc, *cred); err != nil {
			return nil, err
		}
	}
	bc.sec.secret = secret
	if err := c.RegisterDevice(ctx, bc, o); err != nil {
		return nil, err
	}
	if err := c.OpenSession(ctx, bc); err != nil {
		return nil, err
	}
	return bc, nil
}

// Install runs POST /installation with the client key from o and returns a
// context that has an installation but no secret, device or session yet.
// NewAPIKeyContext and friends do all steps; Install and the other steps are
// exported for callers that persist progress between them (tpp register).
func (c *Client) Install(ctx context.Context, kind ContextKind, o ContextOptions) (*Context, error) {
	key := o.Key
	if key == nil && o.KeySource != nil {
		var err error
		if key, err = o.KeySource(); err != nil {
			return nil, fmt.Errorf("psd2: client key: %w", err)
		}
	}
	if key == nil {
		var err error
		if key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			return nil, fmt.Errorf("psd2: generate client key: %w", err)
		}
	}
	if key.N.BitLen() < 2048 {
		return nil, fmt.Errorf("psd2: client key has %d bits, bunq requires 2048", key.N.BitLen())
	}
	pub, err := publicKeyPEM(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	cl := call{method: http.MethodPost, path: "/installation", auth: authNone, noVerify: true,
		body: map[string]string{"client_public_key": pub}}
	env, err := c.do(ctx, nil, cl)
	if err != nil {
		return nil, err
	}
	var inst struct {
		ID     int64
		Token  string
		Server string
	}
	for _, el := range env.Elements {
		switch el.Type {
		case "Id", "Token":
			err = el.idOrToken(&inst.ID, &inst.Token)
		case "ServerPublicKey":
			var v struct {
				Key string `json:"server_public_key"`
			}
			err = json.Unmarshal(el.Value, &v)
			inst.Server = v.Key
		}
		if err != nil {
			return nil, &ResponseError{Method: cl.method, Path: cl.path, Err: err}
		}
	}
	if inst.Token == "" || inst.Server == "" {
		return nil, &ResponseError{Method: cl.method, Path: cl.path, Err: errors.New("installation answer lacks Token or ServerPublicKey")}
	}
	server, err := parsePublicKeyPEM(inst.Server)
	if err != nil {
		return nil, &ResponseError{Method: cl.method, Path: cl.path, Err: err}
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("psd2: encode private key: %w", err)
	}
	bc := &Context{
		kind:           kind,
		installationID: inst.ID,
		serverKey:      server,
		budgetID:       budgetID(pub),
		sec: &contextSecrets{
			clientKeyDER:      der,
			clientPublicPEM:   pub,
			serverPublicPEM:   inst.Server,
			installationToken: inst.Token,
		},
	}
	bc.sec.clientKey.Store(key)
	return bc, nil
}

// RegisterPSD2Credential posts the certificate to
// /payment-service-provider-credential and returns the token_value that
// serves as the context's secret.
func (c *Client) RegisterPSD2Credential(ctx context.Context, bc *Context, cred PSD2Credentials) (string, error) {
	sig, err := signPSD2(cred.Key, bc.sec.clientPublicPEM, bc.sec.installationToken)
	if err != nil {
		return "", err
	}
	chain := cred.Chain
	if len(chain) == 0 {
		chain = []*x509.Certificate{cred.Certificate}
	}
	var chainPEM []byte
	for _, cert := range chain {
		chainPEM = append(chainPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})...)
	}
	body := map[string]string{
		"client_payment_service_provider_certificate":       string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cred.Certificate.Raw})),
		"client_payment_service_provider_certificate_chain": string(chainPEM),
		"client_public_key_signature":                       sig,
	}
	cl := call{method: http.MethodPost, path: "/payment-service-provider-credential", auth: authInstallation, sign: true, body: body}
	env, err := c.do(ctx, bc, cl)
	if err != nil {
		return "", err
	}
	v, err := decodeOne[struct {
		ID         int64  `json:"id"`
		Status     string `json:"status"`
		TokenValue string `json:"token_value"`
	}](env, "CredentialPasswordIp")
	if err == nil && v.TokenValue == "" {
		err = errors.New("CredentialPasswordIp has no token_value")
	}
	if err != nil {
		return "", &ResponseError{Method: cl.method, Path: cl.path, Err: err}
	}
	return v.TokenValue, nil
}

// SetSecret sets the secret (API key, token_value, access token) of a
// context made by Install.
func (bc *Context) SetSecret(secret string) { bc.sec.secret = secret }

// RegisterDevice runs POST /device-server for the context's secret.
func (c *Client) RegisterDevice(ctx context.Context, bc *Context, o ContextOptions) error {
	if bc.sec.secret == "" {
		return errors.New("psd2: context has no secret to register")
	}
	desc := o.Description
	if desc == "" {
		desc = c.opt.DeviceDescription
	}
	body := struct {
		Description  string   `json:"description"`
		Secret       string   `json:"secret"`
		PermittedIPs []string `json:"permitted_ips,omitempty"`
	}{desc, bc.sec.secret, o.PermittedIPs}
	// bunq requires no signature here (reference §2.2); Options.SignAll adds one.
	cl := call{method: http.MethodPost, path: "/device-server", auth: authInstallation, body: body}
	env, err := c.do(ctx, bc, cl)
	if err != nil {
		return err
	}
	id, err := env.id()
	if err != nil {
		return &ResponseError{Method: cl.method, Path: cl.path, Err: err}
	}
	bc.deviceID = id
	bc.permittedIPs = o.PermittedIPs
	return nil
}

// OpenSession runs POST /session-server and stores the new session in bc.
// Calls renew sessions on their own; use this (or EnsureSession) only to
// open the first one or to force a new one.
func (c *Client) OpenSession(ctx context.Context, bc *Context) error {
	return c.openSession(ctx, bc, 0)
}

// openSession is OpenSession waiting at most maxWait (0: no bound) for the
// session-server rate budget.
func (c *Client) openSession(ctx context.Context, bc *Context, maxWait time.Duration) error {
	cl := call{method: http.MethodPost, path: "/session-server", auth: authInstallation, sign: true,
		body: map[string]string{"secret": bc.sec.secret}, maxWait: maxWait}
	env, err := c.do(ctx, bc, cl)
	if err != nil {
		return err
	}
	s := session{}
	var user *User
	for _, el := range env.Elements {
		switch el.Type {
		case "Id", "Token":
			err = el.idOrToken(&s.id, &s.token)
		case UserTypePerson, UserTypeCompany, UserTypeAPIKey, UserTypePaymentServiceProvider:
			var u User
			u, err = decodeUser(el.Type, el.Value)
			user = &u
		}
		if err != nil {
			return &ResponseError{Method: cl.method, Path: cl.path, Err: err}
		}
	}
	if s.token == "" || user == nil || user.ID == 0 {
		return &ResponseError{Method: cl.method, Path: cl.path, Err: errors.New("session answer lacks Token or user")}
	}
	timeout := user.sessionTimeout()
	if timeout <= 0 {
		timeout = defaultSessionTimeout
	}
	s.userID, s.userType, s.user = user.ID, user.Type, user
	s.expiry = c.clock.Now().Add(timeout)
	bc.setSession(s)
	return nil
}

// idOrToken decodes the Id or Token element that /installation and
// /session-server both answer with into id or token.
func (el element) idOrToken(id *int64, token *string) error {
	var v struct {
		ID    int64  `json:"id"`
		Token string `json:"token"`
	}
	if err := json.Unmarshal(el.Value, &v); err != nil {
		return err
	}
	if el.Type == "Id" {
		*id = v.ID
	} else {
		*token = v.Token
	}
	return nil
}

// defaultSessionTimeout applies when the bank names no session_timeout:
// the shortest lifetime bunq documents (a PSD2 key's first session).
const defaultSessionTimeout = time.Hour

// sessionMargin: renew when less than this remains (the SDKs' 30 s).
const sessionMargin = 30 * time.Second

// EnsureSession renews the context's session if it is missing or expires
// within 30 seconds.
func (c *Client) EnsureSession(ctx context.Context, bc *Context) error {
	return c.ensureSession(ctx, bc)
}

func (c *Client) ensureSession(ctx context.Context, bc *Context) error {
	if bc == nil {
		return ErrNoSession
	}
	s := bc.sessionSnapshot()
	if s.token != "" && c.clock.Now().Add(sessionMargin).Before(s.expiry) {
		return nil
	}
	if bc.sec.secret == "" {
		return ErrNoSession
	}
	return c.renewSession(ctx, bc, s.token)
}

// renewSession opens a new session unless the one identified by stale was
// already replaced. Concurrent callers share one session-server call.
func (c *Client) renewSession(ctx context.Context, bc *Context, stale string) error {
	bc.mu.Lock()
	if bc.sessionSnapshot().token != stale {
		bc.mu.Unlock()
		return nil // someone renewed it already
	}
	if f := bc.flight; f != nil {
		bc.mu.Unlock()
		select {
		case <-f.done:
			return f.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f := &renewal{done: make(chan struct{})}
	bc.flight = f
	bc.mu.Unlock()

	// The renewal serves every waiter, so one caller giving up must not
	// cancel it; it is bounded by the HTTP client's timeout and the budget.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*SessionRateWindow)
	f.err = c.openSession(rctx, bc, renewalWait(ctx))
	cancel()
	bc.mu.Lock()
	bc.flight = nil
	bc.mu.Unlock()
	close(f.done)
	if f.err == nil && c.opt.OnRenew != nil {
		if err := c.opt.OnRenew(ctx, bc); err != nil {
			c.log.WarnContext(ctx, "persisting renewed bunq session failed", slog.Any("context", bc), slog.Any("error", err))
		}
	}
	if f.err != nil {
		return fmt.Errorf("psd2: renew session: %w", f.err)
	}
	return nil
}

// DefaultRenewalWait bounds how long a request waits for bunq's
// session-server limit (1 per 30 s) when its session must be renewed again
// soon after the last renewal: longer answers *RenewalThrottledError at once.
const DefaultRenewalWait = 5 * time.Second

// renewalWait is how long the caller of a renewal may wait for the budget:
// DefaultRenewalWait, or less when its deadline is nearer.
func renewalWait(ctx context.Context) time.Duration {
	w := DefaultRenewalWait
	if dl, ok := ctx.Deadline(); ok {
		w = min(w, time.Until(dl))
	}
	return max(w, time.Millisecond)
}

// CloseSession deletes the context's current session at the bank
// (DELETE /session/0: id 0 means the current one, as in the SDKs) and
// forgets it locally.
func (c *Client) CloseSession(ctx context.Context, bc *Context) error {
	cur := bc.sess.Load()
	if cur == nil || cur.token == "" {
		return nil
	}
	cl := call{method: http.MethodDelete, path: "/session/0", auth: authSession}
	if _, err := c.doRaw(ctx, bc, cl); err != nil {
		return err
	}
	bc.sess.CompareAndSwap(cur, nil) // unless renewed meanwhile
	return nil
}
