package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/certs"
	"github.com/bunqtpp/tpp/notify"
	"github.com/bunqtpp/tpp/sandbox"
)

// startEmulatedBank starts the emulated bunq sandbox in this process and
// registers the TPP with it, as an operator would with 'tpp certs generate'
// and 'tpp register' against a real bank. Test certificates are kept beside
// the database, so a restart registers the same certificate again.
func startEmulatedBank(ctx context.Context, a *app, out io.Writer) (bankURLs, func(), error) {
	host, port, err := net.SplitHostPort(a.cfg.EmulatedAddr)
	p, perr := strconv.Atoi(port)
	if err != nil || perr != nil || p <= 0 || p > 65533 {
		return bankURLs{}, nil, fmt.Errorf("setting --emulated-addr ($TPP_EMULATED_ADDR) = %q must be host:port with a fixed port", a.cfg.EmulatedAddr)
	}
	addr := func(n int) string { return net.JoinHostPort(host, strconv.Itoa(p+n)) }
	// The emulated bank signs its callbacks only when the TPP checks
	// signatures (--bank-callback-auth signature, the default for emulated).
	mode, _, _ := a.cfg.callbackAuth()
	signCallbacks := mode == notify.AuthSignature
	// Rate limits count per installation here, not per IP as at bunq: a
	// developer's flows through one loopback IP would otherwise wait 30 s
	// per authorization. Tests of the per-IP behaviour use banktest.
	srv, err := sandbox.Start(ctx, sandbox.Config{Seed: 1, RateLimits: true, RateLimitPerInstallation: true, SignCallbacks: signCallbacks, Logger: a.log.With("component", "emulated-bank")}, addr(0), addr(1), addr(2))
	if err != nil {
		return bankURLs{}, nil, fmt.Errorf("start the emulated bank on %s (--emulated-addr): %w", a.cfg.EmulatedAddr, err)
	}
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}
	fmt.Fprintf(out, "tpp: emulated bunq sandbox at %s/v1 (OAuth %s/auth)\n", srv.APIURL, srv.OAuthURL)

	dir := filepath.Join(filepath.Dir(a.cfg.DBPath), "certs")
	f := registerFlags{
		cert:         filepath.Join(dir, "cert.pem"),
		key:          filepath.Join(dir, "key.pem"),
		chain:        filepath.Join(dir, "chain.pem"),
		publicURL:    a.cfg.PublicURL,
		permittedIPs: a.cfg.PermittedIPs,
	}
	if _, err := os.Stat(f.cert); errors.Is(err, os.ErrNotExist) {
		g, err := certs.Generate(rand.Reader, a.clock.Now(), certs.Options{
			Roles:        []certs.Role{certs.RoleAISP, certs.RolePISP, certs.RoleCBPII},
			Organization: "Demo TPP B.V.",
		})
		if err != nil {
			return bankURLs{}, stop, fmt.Errorf("generate test certificate: %w", err)
		}
		if _, err := g.WriteFiles(dir, certs.FileNames{}, false); err != nil {
			stop()
			return bankURLs{}, nil, fmt.Errorf("write test certificate: %w", err)
		}
		fmt.Fprintf(out, "tpp: generated a test certificate in %s\n", dir)
	}
	// The emulated bank starts empty every time: forget what an earlier run
	// registered there, or register would try to reuse a dead installation.
	store := a.store.registrations
	if old, err := store.Registration(ctx, srv.APIURL); err == nil {
		*old = tpp.Registration{APIBaseURL: old.APIBaseURL, CreatedAt: old.CreatedAt}
		if err := store.SaveRegistration(ctx, old); err != nil {
			stop()
			return bankURLs{}, nil, fmt.Errorf("reset the emulated bank's registration: %w", err)
		}
	}
	r := &registrar{store: store, clock: a.clock, out: prefixWriter{out, "tpp: register: "}}
	if err := r.register(ctx, srv.APIURL, f); err != nil {
		stop()
		return bankURLs{}, nil, fmt.Errorf("register with the emulated bank: %w", err)
	}
	return bankURLs{API: srv.APIURL, OAuth: srv.OAuthURL + "/auth", Token: srv.TokenURL + "/v1/token", Emulated: true}, stop, nil
}

// prefixWriter prefixes each write (one progress line) with a label.
type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p prefixWriter) Write(b []byte) (int, error) {
	if _, err := io.WriteString(p.w, p.prefix); err != nil {
		return 0, err
	}
	return p.w.Write(b)
}

// randomHex returns n random bytes as hex.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return hex.EncodeToString(b)
}
