package sandbox

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"
)

// ErrUsage is Command's answer to a command line it could not parse; the
// usage text has been printed.
var ErrUsage = errors.New("usage")

// Command is 'tpp sandbox': it parses its flags, runs the emulated bunq
// sandbox until ctx is cancelled and prints its URLs, a user and how to
// point the TPP at it.
func Command(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:5000", "listen address of the REST API host")
	oauthAddr := fs.String("oauth-addr", "", "listen address of the OAuth host (default: a free port on the API host)")
	tokenAddr := fs.String("token-addr", "", "listen address of the token host (default: a free port on the API host)")
	seed := fs.Int64("seed", 1, "seed of the sandbox users, accounts and histories")
	noLimits := fs.Bool("no-rate-limits", false, "turn off bunq's rate limits")
	verbose := fs.Bool("v", false, "log every request")
	signCallbacks := fs.Bool("sign-callbacks", false, "sign notification callbacks with the bank key (bunq does not; for TPPs checking signatures)")
	perInstallation := fs.Bool("rate-limit-per-installation", false, "count rate limits per installation instead of per source IP (bunq's rule)")
	fundsAnswer := fs.String("funds-answer", "confirmation", "confirmation-of-funds answer shape: confirmation ({\"ConfirmationOfFunds\":{...}}) or id ({\"Id\":{...}})")
	strict := fs.Bool("strict", false, "refuse requests without the headers bunq documents as mandatory, and repeated request ids")
	dnFormat := fs.String("dn-format", "rfc2253", "how the PSP user's certificate subject is spelt: rfc2253 (CN=…,O=…,C=NL) or openssl (/C=NL/O=…/CN=…); bunq documents the field, not its format")
	nullObjects := fs.Bool("null-empty-objects", false, "send null for empty object fields (permitted_device, responses, object, merchant_reference) as real bunq payloads do; bunq's OpenAPI schema forbids it")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: tpp sandbox [flags]")
		fmt.Fprintln(stderr, "\nRuns an emulation of bunq's sandbox API (REST, OAuth and token hosts) until interrupted.")
		fmt.Fprintln(stderr)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return ErrUsage
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return ErrUsage
	}
	if *fundsAnswer != "confirmation" && *fundsAnswer != "id" {
		return fmt.Errorf("sandbox: --funds-answer %q: use confirmation or id", *fundsAnswer)
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("sandbox: --addr %q: %w", *addr, err)
	}
	if *oauthAddr == "" {
		*oauthAddr = net.JoinHostPort(host, "0")
	}
	if *tokenAddr == "" {
		*tokenAddr = net.JoinHostPort(host, "0")
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	cfg := Config{
		Seed:                     *seed,
		RateLimits:               !*noLimits,
		SignCallbacks:            *signCallbacks,
		RateLimitPerInstallation: *perInstallation,
		FundsAnswer:              *fundsAnswer,
		Strict:                   *strict,
		NullEmptyObjects:         *nullObjects,
		DNFormat:                 *dnFormat,
		Logger:                   slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
	}
	start := time.Now()
	srv, err := Start(ctx, cfg, *addr, *oauthAddr, *tokenAddr)
	if err != nil {
		return err
	}
	users, err := srv.Bank.Users()
	if err != nil {
		srv.Shutdown(context.Background())
		return err
	}
	fmt.Fprintf(stdout, "bunq sandbox emulator ready in %s\n", time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(stdout, "  API base:        %s/v1\n", srv.APIURL)
	fmt.Fprintf(stdout, "  OAuth authorize: %s/auth\n", srv.OAuthURL)
	fmt.Fprintf(stdout, "  Token URL:       %s/v1/token\n", srv.TokenURL)
	fmt.Fprintf(stdout, "  bunq app:        %s/app\n", srv.OAuthURL)
	fmt.Fprintf(stdout, "  Control:         %s/_sandbox/users\n", srv.APIURL)
	if !*noLimits {
		fmt.Fprintln(stdout, "  Rate limits:     on (--no-rate-limits to turn off)")
	}
	if len(users) > 0 {
		u := users[0]
		fmt.Fprintf(stdout, "Sandbox user: %s <%s>\n  API key: %s\n", u.DisplayName, u.Email, u.APIKey)
	}
	PrintNextSteps(stdout, srv.APIURL, srv.OAuthURL, srv.TokenURL)
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("sandbox: shutdown: %w", err)
	}
	fmt.Fprintln(stdout, "bunq sandbox emulator stopped")
	return nil
}

// PrintNextSteps shows how to point the TPP at this emulator: a test
// certificate, registration, then the server.
func PrintNextSteps(w io.Writer, apiURL, oauthURL, tokenURL string) {
	fmt.Fprintln(w, "Point the TPP at it (in another terminal):")
	fmt.Fprintln(w, "  tpp certs generate --out certs-out")
	fmt.Fprintln(w, `  export TPP_MASTER_KEY="k1:$(openssl rand -hex 32)" TPP_PUBLIC_URL=http://127.0.0.1:8080`)
	fmt.Fprintf(w, "  tpp register --env %s --cert certs-out/cert.pem --key certs-out/key.pem --chain certs-out/chain.pem\n", apiURL)
	fmt.Fprintf(w, "  tpp serve --bank %s --bank-oauth-url %s/auth --bank-token-url %s/v1/token\n", apiURL, oauthURL, tokenURL)
}
