package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/demo"
)

// demoClientFile keeps the demo fintech client's credentials beside the
// database, so later runs reuse the client and its API key (shown by the
// client service only once, when made).
const demoClientFile = "demo-client.json"

// demoClient is the content of demoClientFile.
type demoClient struct {
	ClientID      string `json:"client_id"`
	APIKey        string `json:"api_key"`
	WebhookSecret string `json:"webhook_secret"`
	PublicURL     string `json:"public_url"`
	reused        bool   // loaded from an earlier run, not created now
}

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
		if err := resetDemoData(cfg.DBPath, stdout); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "demo: starting the TPP with the emulated bunq sandbox (data in %s)\n", dataDir)

	var d *demoSetup
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
			d.printWelcome(stdout, publicURL)
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

// resetDemoData deletes what the demo keeps beside the database. Only the
// files the product made are deleted, never the whole folder: --db may
// point into a folder that holds other things.
func resetDemoData(dbPath string, out io.Writer) error {
	dir := filepath.Dir(dbPath)
	targets := []string{
		dbPath, dbPath + "-wal", dbPath + "-shm", dbPath + "-journal",
		filepath.Join(dir, "master.key"),
		filepath.Join(dir, "certs"),
		filepath.Join(dir, demoClientFile),
	}
	var gone []string
	for _, p := range targets {
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("--reset: delete %s: %w", p, err)
		}
		gone = append(gone, p)
	}
	if len(gone) == 0 {
		fmt.Fprintf(out, "demo: --reset: nothing to delete in %s; starting fresh\n", dir)
		return nil
	}
	fmt.Fprintf(out, "demo: --reset: deleted %s; starting fresh\n", strings.Join(gone, ", "))
	return nil
}

// demoSetup is what the welcome text needs.
type demoSetup struct {
	client     demoClient
	bankApp    string
	metricsURL string
	dataDir    string
}

// prepareDemo creates or loads the demo fintech client and mounts the demo
// app on the engine. It runs inside serve, after the wiring.
func prepareDemo(ctx context.Context, a *app, out io.Writer) (*demoSetup, error) {
	publicURL := strings.TrimRight(a.cfg.PublicURL, "/")
	dataDir := filepath.Dir(a.cfg.DBPath)
	clients := a.store.clients
	dc, err := ensureDemoClient(ctx, clients, filepath.Join(dataDir, demoClientFile), publicURL, out)
	if err != nil {
		return nil, err
	}
	d := &demoSetup{client: dc, dataDir: dataDir}
	if a.bank.Emulated && dc.reused {
		fmt.Fprintln(out, "demo: the emulated bank keeps its users and connections in memory only: bunq connections made in an earlier run have ended. Connect again at /demo/.")
	}
	if a.bank.Emulated {
		// The emulator's OAuth host also serves its "bunq app" page.
		d.bankApp = strings.TrimSuffix(a.bank.OAuth, "/auth") + "/app"
	}
	if a.cfg.MetricsListen != "" {
		d.metricsURL = "http://" + a.cfg.MetricsListen + "/metrics"
	}
	app, err := demo.New(demo.Config{
		PublicURL:     publicURL,
		APIKey:        dc.APIKey,
		WebhookSecret: dc.WebhookSecret,
		BankAppURL:    d.bankApp,
		Logger:        a.log.With("component", "demo"),
		Secure:        strings.HasPrefix(publicURL, "https://"),
	})
	if err != nil {
		return nil, err
	}
	h := gin.WrapH(app.Handler())
	a.engine.Any(demo.BasePath, h)
	a.engine.Any(demo.BasePath+"/*path", h)
	return d, nil
}

// ensureDemoClient loads the demo client from path when its API key still
// works and its URLs match publicURL; otherwise it creates a new client
// (revoking a stale one) and saves it to path with mode 0600.
func ensureDemoClient(ctx context.Context, clients tpp.ClientService, path, publicURL string, out io.Writer) (demoClient, error) {
	returnURL, hookURL := publicURL+demo.ReturnPath, publicURL+demo.WebhookPath
	var dc demoClient
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &dc); err != nil {
			return dc, fmt.Errorf("read %s: %w (delete it, or run 'tpp demo --reset')", path, err)
		}
		c, err := clients.Authenticate(ctx, dc.APIKey)
		switch {
		case err == nil && c.ID == dc.ClientID && c.AllowsReturnURL(returnURL) && c.WebhookURL == hookURL:
			fmt.Fprintf(out, "demo: reusing the demo fintech client %q (%s) from %s\n", c.Name, c.ID, path)
			dc.reused = true
			return dc, nil
		case err == nil:
			fmt.Fprintf(out, "demo: the public URL changed (%s, was %s): replacing the demo fintech client\n", publicURL, dc.PublicURL)
			if _, err := clients.RevokeClient(ctx, c.ID); err != nil {
				return dc, fmt.Errorf("revoke the old demo client: %w", err)
			}
		case tpp.ErrorCode(err) == tpp.EUnauthorized:
			fmt.Fprintf(out, "demo: the demo client in %s is unknown to this database: creating a new one\n", path)
		default:
			return dc, fmt.Errorf("check the demo client: %w", err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return dc, fmt.Errorf("read %s: %w", path, err)
	}

	c, secrets, err := clients.CreateClient(ctx, tpp.NewClient{Name: "Demo Fintech", ReturnURLs: []string{returnURL}, WebhookURL: hookURL})
	if err != nil {
		return dc, fmt.Errorf("create the demo fintech client: %w", err)
	}
	dc = demoClient{ClientID: c.ID, APIKey: secrets.APIKey, WebhookSecret: secrets.WebhookSecret, PublicURL: publicURL}
	b, err = json.MarshalIndent(dc, "", "  ")
	if err != nil {
		return dc, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return dc, err
	}
	// Write beside and rename, so a crash never leaves half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return dc, fmt.Errorf("save the demo client: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return dc, fmt.Errorf("save the demo client: %w", err)
	}
	fmt.Fprintf(out, "demo: created the demo fintech client \"Demo Fintech\" (%s); its API key is kept in %s (mode 0600)\n", c.ID, path)
	return dc, nil
}

// printWelcome tells the person what to open and how to try the API.
func (d *demoSetup) printWelcome(w io.Writer, publicURL string) {
	publicURL = strings.TrimRight(publicURL, "/")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "demo: ready. Open in your browser:")
	fmt.Fprintf(w, "  Demo fintech app     %s/demo/\n", publicURL)
	fmt.Fprintf(w, "  API docs             %s/docs\n", publicURL)
	if d.bankApp != "" {
		fmt.Fprintf(w, "  bunq app (emulated)  %s\n", d.bankApp)
	}
	if d.metricsURL != "" {
		fmt.Fprintf(w, "  Metrics              %s\n", d.metricsURL)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "demo: API key of \"Demo Fintech\": %s\n", d.client.APIKey)
	fmt.Fprintln(w, "demo: try the API: create a consent, open its authorize_url in your browser and approve it at the")
	fmt.Fprintln(w, "      emulated bunq; you come back to a page that shows the consent and the next command.")
	body := fmt.Sprintf(`{"user_ref":"curl-user","scopes":["accounts","payments","funds"],"return_url":"%s%s"}`, publicURL, demo.ReturnPath)
	fmt.Fprintf(w, "  export TPP_API_KEY=%s\n", d.client.APIKey)
	fmt.Fprintf(w, "  curl -s %s/v1/consents -H \"Authorization: Bearer $TPP_API_KEY\" -H 'Content-Type: application/json' -d '%s'\n", publicURL, body)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "demo: press Ctrl-C to stop. The data stays in %s; 'tpp demo --reset' starts fresh.\n", d.dataDir)
}
