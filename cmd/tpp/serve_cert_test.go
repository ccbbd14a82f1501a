package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/bunqtpp/tpp/sqlite"
)

// TestServeRefusesExpiredCertificate: a registration whose QSeal
// certificate has expired stops 'tpp serve' at start with a message saying
// what to do, instead of a service that starts and fails every bank call.
func TestServeRefusesExpiredCertificate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	db, err := sqlite.Open(context.Background(), h.DBPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	expired := time.Now().Add(-time.Hour).UTC().Format("2006-01-02T15:04:05.000000Z")
	if _, err := db.Exec(`UPDATE registration SET cert_not_after = ?`, expired); err != nil {
		t.Fatal(err)
	}
	db.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = run(ctx, h.serveArgs(), h.out, h.logs)
	if err == nil {
		t.Fatal("tpp serve started with an expired certificate")
	}
	for _, want := range []string{"QSeal certificate", "expired at", "tpp register"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
