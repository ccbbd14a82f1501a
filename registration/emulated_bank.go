package registration

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/sandbox"
)

// EmulatedBank is where 'tpp serve --bank emulated' runs the emulated bunq
// sandbox in its own process, and how it registers with it.
type EmulatedBank struct {
	// Addr is the API host's address; the OAuth and token hosts take the
	// next two ports.
	Addr          string
	SignCallbacks bool   // when the TPP checks the callbacks' signature
	DataDir       string // the test certificate is kept in DataDir/certs
	PublicURL     string
	PermittedIPs  string
	Store         tpp.RegistrationStore
	Clock         tpp.Clock
	Logger        *slog.Logger
}

// EmulatedURLs are the started bank's three hosts: the API base (without
// /v1), the authorize page and the token endpoint.
type EmulatedURLs struct{ API, OAuth, Token string }

// StartEmulated starts the emulated bunq sandbox in this process and
// registers the TPP with it, as an operator would with 'tpp certs generate'
// and 'tpp register' against a real bank. The test certificate is kept
// beside the database, so a restart registers the same certificate again.
func StartEmulated(ctx context.Context, e EmulatedBank, out io.Writer) (EmulatedURLs, func(), error) {
	host, port, err := net.SplitHostPort(e.Addr)
	p, perr := strconv.Atoi(port)
	if err != nil || perr != nil || p <= 0 || p > 65533 {
		return EmulatedURLs{}, nil, fmt.Errorf("setting --emulated-addr ($TPP_EMULATED_ADDR) = %q must be host:port with a fixed port", e.Addr)
	}
	addr := func(n int) string { return net.JoinHostPort(host, strconv.Itoa(p+n)) }
	// Rate limits count per installation here, not per IP as at bunq: a
	// developer's flows through one loopback IP would otherwise wait 30 s
	// per authorization. Tests of the per-IP behaviour use banktest.
	srv, err := sandbox.Start(ctx, sandbox.Config{Seed: 1, RateLimits: true, RateLimitPerInstallation: true, SignCallbacks: e.SignCallbacks, Logger: e.Logger}, addr(0), addr(1), addr(2))
	if err != nil {
		return EmulatedURLs{}, nil, fmt.Errorf("start the emulated bank on %s (--emulated-addr): %w", e.Addr, err)
	}
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}
	fmt.Fprintf(out, "tpp: emulated bunq sandbox at %s/v1 (OAuth %s/auth)\n", srv.APIURL, srv.OAuthURL)
	if err := e.register(ctx, srv.APIURL, out); err != nil {
		stop()
		return EmulatedURLs{}, nil, err
	}
	return EmulatedURLs{API: srv.APIURL, OAuth: srv.OAuthURL + "/auth", Token: srv.TokenURL + "/v1/token"}, stop, nil
}

// register registers the TPP with the emulated bank at apiBase, which
// starts empty: what an earlier run registered there is forgotten first.
func (e EmulatedBank) register(ctx context.Context, apiBase string, out io.Writer) error {
	dir := filepath.Join(e.DataDir, "certs")
	req, generated, err := TestCertificate(dir, "Demo TPP B.V.", e.Clock.Now())
	if err != nil {
		return err
	}
	if generated {
		fmt.Fprintf(out, "tpp: generated a test certificate in %s\n", dir)
	}
	if err := Forget(ctx, e.Store, apiBase); err != nil {
		return err
	}
	req.APIBase, req.PublicURL, req.PermittedIPs = apiBase, e.PublicURL, e.PermittedIPs
	if err := Register(ctx, e.Store, e.Clock, PrefixWriter{W: out, Prefix: "tpp: register: "}, req); err != nil {
		return fmt.Errorf("register with the emulated bank: %w", err)
	}
	return nil
}
