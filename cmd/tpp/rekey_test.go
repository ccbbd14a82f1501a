package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bunqtpp/tpp/sqlite"
)

// rekeyRow finds the counts printed for one sealed column.
func rekeyRow(t *testing.T, out, column string) []string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == column {
			return f
		}
	}
	t.Fatalf("no row for %s in:\n%s", column, out)
	return nil
}

// TestRekeyRotatesTheMasterKey is the rotation of docs/OPERATIONS.md:
// values sealed under k1, the list rotated to k2,k1, 'tpp rekey', then the
// service runs with k2 alone and everything still opens: it starts (the
// registration), reads accounts (the consent's access token; the Redis
// context under k1 is rebuilt) and signs webhooks (the client's secret).
func TestRekeyRotatesTheMasterKey(t *testing.T) {
	t.Parallel()
	hooks := newWebhookReceiver(t)
	o := newOpsHarness(t, opsOptions{webhookURL: hooks.URL})
	ctx := context.Background()
	db, err := sqlite.Open(ctx, o.DBPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := sqlite.NewClientService(db, o.keyring).WebhookSecret(ctx, o.ClientID)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	hooks.verifyWith(secret)

	first := o.serve(t)
	consent := o.activeConsent(t, "accounts")
	o.firstAccount(t, consent)
	waitUntil(t, 20*time.Second, "the activation's webhook", func() bool { return hooks.count("consent.updated") == 1 })
	if err := first.stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}

	k2 := make([]byte, 32)
	_, _ = rand.Read(k2)
	o.secrets.add("master key k2", hex.EncodeToString(k2))
	onlyK2 := "k2:" + hex.EncodeToString(k2)
	rotated := onlyK2 + "," + o.MasterKey

	// Before the rekey, k2 alone cannot run the service: the registration
	// is sealed under k1.
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	var out, errOut bytes.Buffer
	err = run(sctx, o.serveArgs("--master-key", onlyK2), &out, &errOut)
	cancel()
	if err == nil || !strings.Contains(err.Error(), `"k1"`) {
		t.Fatalf("serve with k2 alone before the rekey: %v, want a refusal naming k1\n%s", err, tail(errOut.String(), 2000))
	}

	// A dry run counts by key id and changes nothing.
	dry := o.cli("rekey", "--dry-run", "--db", o.DBPath, "--master-key", rotated)
	for _, col := range []string{"consents.access_token_sealed", "clients.webhook_secret_sealed", "registration.context_sealed", "registration.client_secret_sealed"} {
		if f := rekeyRow(t, dry, col); f[1] != "k1:1" || f[2] != "1" || f[3] != "0" || f[4] != "0" {
			t.Errorf("dry run, %s: %v", col, f)
		}
	}
	if !strings.Contains(dry, "Dry run: nothing changed") {
		t.Errorf("dry run output:\n%s", dry)
	}

	done := o.cli("rekey", "--db", o.DBPath, "--master-key", rotated)
	for _, col := range []string{"consents.access_token_sealed", "clients.webhook_secret_sealed", "registration.context_sealed", "registration.client_secret_sealed"} {
		if f := rekeyRow(t, done, col); f[1] != "k1:1" || f[2] != "1" || f[3] != "0" || f[4] != "0" {
			t.Errorf("rekey, %s: %v", col, f)
		}
	}
	if !strings.Contains(done, "now under k2") {
		t.Errorf("rekey output:\n%s", done)
	}
	// Again: nothing left to move.
	again := o.cli("rekey", "--db", o.DBPath, "--master-key", rotated)
	if f := rekeyRow(t, again, "consents.access_token_sealed"); f[1] != "k2:1" || f[2] != "0" || f[3] != "1" {
		t.Errorf("second rekey: %v\n%s", f, again)
	}

	// k1 is dropped.
	o.serve(t, "--master-key", onlyK2)
	o.Env.ResetStats(t)
	o.firstAccount(t, consent)
	if n := o.Env.Stats(t)["POST /v1/session-server"]; n != 1 {
		t.Errorf("the bank saw %d session-server calls, want 1 (the k1 context in Redis rebuilt from the token)", n)
	}
	if st, c := o.api(http.MethodDelete, "/v1/consents/"+consent, nil); st != http.StatusOK || c.str("status") != "revoked" {
		t.Fatalf("revoke: %d %v", st, c)
	}
	waitUntil(t, 20*time.Second, "the revocation's webhook, signed with the re-sealed secret",
		func() bool { return hooks.count("consent.updated") == 2 })
	if bad := hooks.refused(); bad != 0 {
		t.Errorf("%d webhooks did not verify", bad)
	}
}

func TestRekeyCommandErrors(t *testing.T) {
	t.Parallel()
	dbPath := newTestDB(t, t.TempDir()+"/tpp.db")
	if _, _, err := runClientsCmd(t, "rekey", "--db", dbPath); err == nil || !strings.Contains(err.Error(), "--master-key") {
		t.Errorf("without a master key: %v", err)
	}
	if _, errOut, err := runClientsCmd(t, "rekey", "--db", dbPath, "--master-key", testMasterKey, "extra"); err != errUsage || !strings.Contains(errOut, "Usage") {
		t.Errorf("with an argument: %v\n%s", err, errOut)
	}
	// A value sealed under a key the list lacks stops the run with an
	// error, and is left as it was.
	if _, _, err := runClientsCmd(t, "clients", "create", "--db", dbPath, "--master-key", testMasterKey,
		"--name", "Acme", "--return-url", "https://acme.example/return"); err != nil {
		t.Fatal(err)
	}
	other := "k9:" + strings.Repeat("ee", 32)
	out, _, err := runClientsCmd(t, "rekey", "--db", dbPath, "--master-key", other)
	if err == nil || !strings.Contains(err.Error(), "do not open") {
		t.Fatalf("rekey without the needed key: %v\n%s", err, out)
	}
	if f := rekeyRow(t, out, "clients.webhook_secret_sealed"); f[1] != "k1:1" || f[4] != "1" {
		t.Errorf("unreadable row: %v", f)
	}
	if out, _, err := runClientsCmd(t, "rekey", "--dry-run", "--db", dbPath, "--master-key", testMasterKey); err != nil ||
		rekeyRow(t, out, "clients.webhook_secret_sealed")[1] != "k1:1" {
		t.Errorf("the unreadable value changed: %v\n%s", err, out)
	}
}
