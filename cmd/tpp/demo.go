package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/demo"
)

// runDemo runs the whole product on embedded defaults (the emulated bank,
// an embedded Redis, a SQLite file) plus the demo fintech app at /demo.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tpp demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	reset := fs.Bool("reset", false, "delete the demo's data (database, dev master key, test certificates, demo client) first and start fresh")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: tpp demo [--reset] [flags]\n\nRuns the whole product with the emulated bunq sandbox and a demo fintech app at /demo.\nIt takes every flag of 'tpp serve'; each has a TPP_ environment variable; flags win.\n\nFlags:")
		fs.PrintDefaults()
	}
	cfg, err := parseConfig(fs, args, os.Getenv)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	quietDemoLogs(fs, cfg, os.Getenv)
	demoBranding(cfg)

	// Every address first: a port in use must not leave a reset or a
	// half-written data directory behind.
	if err := checkListenAddrs(cfg); err != nil {
		return err
	}
	dataDir := filepath.Dir(cfg.DBPath)
	if *reset {
		if err := demo.ResetData(cfg.DBPath, stdout); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "demo: starting the TPP with the emulated bunq sandbox (data in %s)\n", dataDir)

	var d *demo.Welcome
	return serve(ctx, cfg, serveEnv{
		stdout: stdout,
		stderr: stderr,
		clock:  tpp.SystemClock{},
		prepare: func(ctx context.Context, a *app) error {
			var err error
			d, err = prepareDemo(ctx, a, stdout)
			return err
		},
		started: func(publicURL string) {
			d.Print(stdout, publicURL)
		},
	})
}

// demoBranding fills in who runs the TPP with demo values where the
// settings are empty: the consent pages show them.
func demoBranding(cfg *config) {
	for _, s := range []struct {
		v    *string
		demo string
	}{
		{&cfg.TPPName, "Open Banking Connect"},
		{&cfg.TPPLegalEntity, "Demo TPP B.V. (a demo, not a company)"},
		{&cfg.TPPLicence, "no licence: demo only"},
		{&cfg.TPPPrivacyURL, "https://example.com/privacy"},
	} {
		if *s.v == "" {
			*s.v = s.demo
		}
	}
}

// checkListenAddrs opens and closes every address the demo will listen on
// (public, metrics, the emulated bank's three hosts), so a taken port is
// reported, naming its setting, before anything is written.
func checkListenAddrs(cfg *config) error {
	type addr struct{ setting, value string }
	addrs := []addr{{"--listen ($TPP_LISTEN)", cfg.Listen}}
	if cfg.MetricsListen != "" {
		addrs = append(addrs, addr{"--metrics-listen ($TPP_METRICS_LISTEN)", cfg.MetricsListen})
	}
	if cfg.BankEnv == "emulated" {
		host, port, err := net.SplitHostPort(cfg.EmulatedAddr)
		p, perr := strconv.Atoi(port)
		if err != nil || perr != nil || p <= 0 || p > 65533 {
			return fmt.Errorf("setting --emulated-addr ($TPP_EMULATED_ADDR) = %q must be host:port with a fixed port", cfg.EmulatedAddr)
		}
		for i, role := range []string{"API", "OAuth", "token"} {
			addrs = append(addrs, addr{fmt.Sprintf("--emulated-addr ($TPP_EMULATED_ADDR; the emulated bank's %s host)", role), net.JoinHostPort(host, strconv.Itoa(p+i))})
		}
	}
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a.value)
		if err != nil {
			return fmt.Errorf("setting %s: cannot listen on %s: %w", a.setting, a.value, err)
		}
		ln.Close()
	}
	return nil
}

// quietDemoLogs keeps the terminal readable: unless the log settings were
// given (flag or environment), the demo logs warnings and errors as text.
func quietDemoLogs(fs *flag.FlagSet, cfg *config, getenv func(string) string) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["log-level"] && getenv("TPP_LOG_LEVEL") == "" {
		cfg.LogLevel = "warn"
	}
	if !set["log-format"] && getenv("TPP_LOG_FORMAT") == "" {
		cfg.LogFormat = "text"
	}
}

// prepareDemo creates or loads the demo fintech client and mounts the demo
// app on the engine. It runs inside serve, after the wiring.
func prepareDemo(ctx context.Context, a *app, out io.Writer) (*demo.Welcome, error) {
	s := demo.Setup{Clients: a.store.Clients, PublicURL: a.cfg.PublicURL, DBPath: a.cfg.DBPath,
		MetricsListen: a.cfg.MetricsListen, Logger: a.log.With("component", "demo")}
	if a.bank.Emulated {
		s.BankOAuthURL = a.bank.OAuth
	}
	d, app, err := demo.Prepare(ctx, s, out)
	if err != nil {
		return nil, err
	}
	h := gin.WrapH(app)
	a.engine.Any(demo.BasePath, h)
	a.engine.Any(demo.BasePath+"/*path", h)
	return d, nil
}
