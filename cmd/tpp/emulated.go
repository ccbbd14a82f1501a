package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/bunqtpp/tpp/notify"
	"github.com/bunqtpp/tpp/registration"
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
	req, generated, err := registration.TestCertificate(dir, "Demo TPP B.V.", a.clock.Now())
	if err != nil {
		stop()
		return bankURLs{}, nil, err
	}
	if generated {
		fmt.Fprintf(out, "tpp: generated a test certificate in %s\n", dir)
	}
	store := a.store.Registrations
	if err := registration.Forget(ctx, store, srv.APIURL); err != nil {
		stop()
		return bankURLs{}, nil, err
	}
	req.APIBase, req.PublicURL, req.PermittedIPs = srv.APIURL, a.cfg.PublicURL, a.cfg.PermittedIPs
	if err := registration.Register(ctx, store, a.clock, registration.PrefixWriter{W: out, Prefix: "tpp: register: "}, req); err != nil {
		stop()
		return bankURLs{}, nil, fmt.Errorf("register with the emulated bank: %w", err)
	}
	return bankURLs{API: srv.APIURL, OAuth: srv.OAuthURL + "/auth", Token: srv.TokenURL + "/v1/token", Emulated: true}, stop, nil
}

// randomHex returns n random bytes as hex.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return hex.EncodeToString(b)
}
