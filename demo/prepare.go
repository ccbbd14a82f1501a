package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/bunqtpp/tpp"
)

// Setup is what 'tpp demo' knows of the TPP it runs in.
type Setup struct {
	Clients   tpp.ClientService
	PublicURL string
	DBPath    string // the demo client's file lies beside it
	// BankOAuthURL is the emulated bank's authorize page, or "" for a
	// real bank.
	BankOAuthURL  string
	MetricsListen string
	Logger        *slog.Logger
}

// Prepare creates or loads the demo fintech client and builds the demo
// app, to be served at BasePath; the Welcome is printed once the TPP
// listens.
func Prepare(ctx context.Context, s Setup, out io.Writer) (*Welcome, http.Handler, error) {
	publicURL := strings.TrimRight(s.PublicURL, "/")
	dataDir := filepath.Dir(s.DBPath)
	dc, err := EnsureClient(ctx, s.Clients, filepath.Join(dataDir, ClientFile), publicURL, out)
	if err != nil {
		return nil, nil, err
	}
	d := &Welcome{Client: dc, DataDir: dataDir}
	emulated := s.BankOAuthURL != ""
	if emulated && dc.Reused {
		fmt.Fprintln(out, "demo: the emulated bank keeps its users and connections in memory only: bunq connections made in an earlier run have ended. Connect again at /demo/.")
	}
	if emulated {
		// The emulator's OAuth host also serves its "bunq app" page.
		d.BankApp = strings.TrimSuffix(s.BankOAuthURL, "/auth") + "/app"
	}
	if s.MetricsListen != "" {
		d.MetricsURL = "http://" + s.MetricsListen + "/metrics"
	}
	app, err := New(Config{
		PublicURL:     publicURL,
		APIKey:        dc.APIKey,
		WebhookSecret: dc.WebhookSecret,
		BankAppURL:    d.BankApp,
		Logger:        s.Logger,
		Secure:        strings.HasPrefix(publicURL, "https://"),
	})
	if err != nil {
		return nil, nil, err
	}
	return d, app.Handler(), nil
}
