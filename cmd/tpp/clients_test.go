package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/seal"
	"github.com/bunqtpp/tpp/sqlite"
	"github.com/bunqtpp/tpp/storage"
)

const testMasterKey = "k1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

func runClientsCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errw bytes.Buffer
	err := run(context.Background(), args, &out, &errw)
	return out.String(), errw.String(), err
}

var (
	reClientID = regexp.MustCompile(`(?m)^  (cli_[a-z2-7]+)$`)
	reAPIKey   = regexp.MustCompile(`(?m)^  (tpp_[a-z2-7]+_[a-z2-7]+)$`)
	reSecret   = regexp.MustCompile(`(?m)^  (whsec_[A-Za-z0-9+/=]+)$`)
)

// newTestDB creates the service's database at path, as 'tpp serve' or
// 'tpp register' would, and returns path.
func newTestDB(t *testing.T, path string) string {
	t.Helper()
	db, err := storage.OpenSQLite(context.Background(), path, tpp.SystemClock{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	return path
}

// TestClientsNeverCreateADatabase: the clients, rekey and register --status
// commands on a missing file say so, name the path and create nothing.
func TestClientsNeverCreateADatabase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "data", "tpp.db")
	for _, args := range [][]string{
		{"clients", "list", "--db", dbPath},
		{"clients", "create", "--db", dbPath, "--master-key", testMasterKey, "--name", "Acme", "--return-url", "https://acme.example/return"},
		{"rekey", "--db", dbPath, "--master-key", testMasterKey},
		{"register", "--status", "--db", dbPath, "--master-key", testMasterKey},
	} {
		_, _, err := runClientsCmd(t, args...)
		if err == nil || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), dbPath) {
			t.Errorf("%v: err = %v, want it to name the missing %s", args[:2], err, dbPath)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the commands created %s/data: %v", dir, err)
	}
}

// TestClientsBesideTheDemo: without --master-key beside a demo's data, the
// error says where the demo keeps its key; a key that does not open the
// secrets already there is refused before anything is written.
func TestClientsBesideTheDemo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dbPath := newTestDB(t, filepath.Join(dir, "tpp.db"))
	keyFile := filepath.Join(dir, "master.key")
	if err := os.WriteFile(keyFile, []byte(testMasterKey), 0o600); err != nil {
		t.Fatal(err)
	}
	create := func(key string) error {
		_, _, err := runClientsCmd(t, "clients", "create", "--db", dbPath, "--master-key", key, "--name", "Acme", "--return-url", "https://acme.example/return")
		return err
	}
	if err := create(""); err == nil || !strings.Contains(err.Error(), keyFile) {
		t.Errorf("without a master key: %v, want it to point at %s", err, keyFile)
	}
	if err := create(testMasterKey); err != nil {
		t.Fatal(err)
	}
	other := "k9:" + strings.Repeat("ee", 32)
	if err := create(other); err == nil || !strings.Contains(err.Error(), "does not open") || !strings.Contains(err.Error(), "k1") {
		t.Errorf("with a key that does not open the secrets: %v", err)
	}
	out, _, err := runClientsCmd(t, "clients", "list", "--db", dbPath)
	if err != nil || strings.Count(out, "cli_") != 1 {
		t.Errorf("after the refused create, list shows:\n%s (%v)", out, err)
	}
}

func TestClientsCommandLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbPath := newTestDB(t, filepath.Join(t.TempDir(), "data", "tpp.db"))

	out, _, err := runClientsCmd(t, "clients", "create", "--db", dbPath, "--master-key", testMasterKey,
		"--name", "Acme Budget", "--return-url", "https://acme.example/return",
		"--return-url", "http://localhost:3000/cb", "--webhook-url", "https://acme.example/hooks")
	if err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	id, key, secret := reClientID.FindStringSubmatch(out), reAPIKey.FindStringSubmatch(out), reSecret.FindStringSubmatch(out)
	if id == nil || key == nil || secret == nil || !strings.Contains(out, "store it now") {
		t.Fatalf("create output lacks id, key, secret or warning:\n%s", out)
	}

	// The printed key and secret are the real ones.
	db, kr := openClientsDB(t, dbPath)
	svc := sqlite.NewClientService(db, kr)
	if c, err := svc.Authenticate(ctx, key[1]); err != nil || c.ID != id[1] {
		t.Fatalf("printed key does not authenticate: %v", err)
	}
	if ws, err := svc.WebhookSecret(ctx, id[1]); err != nil || ws != secret[1] {
		t.Fatalf("printed secret = %q, stored %q, %v", secret[1], ws, err)
	}

	// list (no master key needed), flags after the subcommand's arguments too.
	out, _, err = runClientsCmd(t, "clients", "list", "--db", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, id[1]) || !strings.Contains(out, "Acme Budget") || !strings.Contains(out, "active") ||
		!strings.Contains(out, "https://acme.example/return http://localhost:3000/cb") || strings.Contains(out, key[1]) {
		t.Fatalf("list output:\n%s", out)
	}

	out, _, err = runClientsCmd(t, "clients", "rotate-key", id[1], "--db", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	newKey := reAPIKey.FindStringSubmatch(out)
	if newKey == nil || newKey[1] == key[1] {
		t.Fatalf("rotate-key output:\n%s", out)
	}
	if _, err := svc.Authenticate(ctx, key[1]); tpp.ErrorCode(err) != tpp.EUnauthorized {
		t.Fatalf("old key after rotation: %v", err)
	}
	if _, err := svc.Authenticate(ctx, newKey[1]); err != nil {
		t.Fatalf("new key: %v", err)
	}

	if _, _, err := runClientsCmd(t, "clients", "revoke", "--db", dbPath, id[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authenticate(ctx, newKey[1]); tpp.ErrorCode(err) != tpp.EUnauthorized {
		t.Fatalf("key of revoked client: %v", err)
	}
	out, _, _ = runClientsCmd(t, "clients", "list", "--db", dbPath)
	if !strings.Contains(out, "revoked") {
		t.Fatalf("list after revoke:\n%s", out)
	}
	_, _, err = runClientsCmd(t, "clients", "revoke", "--db", dbPath, id[1])
	if tpp.ErrorCode(err) != tpp.EConflict {
		t.Fatalf("second revoke: %v", err)
	}
	_, _, err = runClientsCmd(t, "clients", "revoke", "--db", dbPath, "cli_unknown")
	if tpp.ErrorCode(err) != tpp.ENotFound {
		t.Fatalf("unknown revoke: %v", err)
	}
}

func TestClientsCommandErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dbPath := newTestDB(t, filepath.Join(dir, "tpp.db"))
	create := []string{"clients", "create", "--db", dbPath, "--name", "x", "--return-url", "https://x.example/r"}

	cases := []struct {
		name string
		args []string
		want string // substring of the error
	}{
		{"missing master key", create, "--master-key ($TPP_MASTER_KEY)"},
		{"malformed master key", append(create, "--master-key", "k1:abcd"), "--master-key ($TPP_MASTER_KEY)"},
		{"http return url", []string{"clients", "create", "--db", dbPath, "--master-key", testMasterKey,
			"--name", "x", "--return-url", "http://x.example/r"}, "https"},
		{"fragment", []string{"clients", "create", "--db", dbPath, "--master-key", testMasterKey,
			"--name", "x", "--return-url", "https://x.example/r#f"}, "fragment"},
		{"no return url", []string{"clients", "create", "--db", dbPath, "--master-key", testMasterKey, "--name", "x"}, "return URL"},
		{"name with right-to-left override", []string{"clients", "create", "--db", dbPath, "--master-key", testMasterKey,
			"--name", "Acme \u202Ekcab", "--return-url", "https://x.example/r"}, "U+202E"},
		{"bad webhook", []string{"clients", "create", "--db", dbPath, "--master-key", testMasterKey,
			"--name", "x", "--return-url", "https://x.example/r", "--webhook-url", "http://x.example/h"}, "webhook URL"},
	}
	for _, tc := range cases {
		_, _, err := runClientsCmd(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "000102030405") {
			t.Errorf("%s: error echoes the master key", tc.name)
		}
	}
	for _, args := range [][]string{
		{"clients"},
		{"clients", "frobnicate"},
		{"clients", "revoke", "--db", dbPath},
		{"clients", "revoke", "--db", dbPath, "a", "b"},
		{"clients", "list", "--bogus"},
	} {
		if _, _, err := runClientsCmd(t, args...); !errors.Is(err, errUsage) {
			t.Errorf("%v: err = %v, want usage error", args, err)
		}
	}
	out, _, _ := runClientsCmd(t, "clients", "list", "--db", dbPath)
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("failed creates left clients behind:\n%s", out)
	}
}

// TestClientsCommandEnv checks that the settings come from the environment.
func TestClientsCommandEnv(t *testing.T) {
	dbPath := newTestDB(t, filepath.Join(t.TempDir(), "env.db"))
	env := map[string]string{"TPP_DB_PATH": dbPath, "TPP_MASTER_KEY": testMasterKey}
	var out, errw bytes.Buffer
	err := clientsMain(context.Background(), []string{"create", "--name", "E", "--return-url", "https://e.example/r"},
		&out, &errw, func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("create from env: %v", err)
	}
	id := reClientID.FindStringSubmatch(out.String())
	out.Reset()
	if err := clientsMain(context.Background(), []string{"list"}, &out, &errw, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if id == nil || !strings.Contains(out.String(), id[1]) {
		t.Fatalf("list from env:\n%s", out.String())
	}
}

// 'tpp clients revoke' revokes the client's live consents at once (the
// status machine, audited as the operator) and queues them for the
// service's janitor, which ends their bunq sessions.
func TestClientsRevokeRevokesConsents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbPath := newTestDB(t, filepath.Join(t.TempDir(), "tpp.db"))
	out, _, err := runClientsCmd(t, "clients", "create", "--db", dbPath, "--master-key", testMasterKey,
		"--name", "Acme", "--return-url", "https://acme.example/return")
	if err != nil {
		t.Fatal(err)
	}
	id := reClientID.FindStringSubmatch(out)[1]
	db, kr := openClientsDB(t, dbPath)
	consents := sqlite.NewConsentService(db, kr)
	var ids []string
	for i := range 2 {
		c, err := consents.CreateConsent(ctx, tpp.NewConsent{ClientID: id, UserRef: "u", Scopes: []tpp.Scope{tpp.ScopeAccounts},
			ReturnURL: "https://acme.example/return", Actor: tpp.ActorClient(id)})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if _, err := consents.TransitionConsent(ctx, tpp.ConsentTransition{ID: c.ID, To: tpp.ConsentActive, BunqUserID: 1,
				BunqUserName: "Jane", AccessToken: "tok", Actor: tpp.ActorPSU}); err != nil {
				t.Fatal(err)
			}
		}
		ids = append(ids, c.ID)
	}

	out, _, err = runClientsCmd(t, "clients", "revoke", "--db", dbPath, id)
	if err != nil || !strings.Contains(out, "live consents are revoked") || !strings.Contains(out, "janitor") {
		t.Fatalf("revoke: %v\n%s", err, out)
	}
	for _, cid := range ids {
		c, err := consents.ConsentByID(ctx, cid)
		if err != nil || c.Status != tpp.ConsentRevoked {
			t.Errorf("consent %s after revoke: %v, %v", cid, c, err)
		}
		if _, err := consents.AccessToken(ctx, cid); err == nil {
			t.Errorf("consent %s still has a usable token", cid)
		}
	}
	var audited int
	if err := db.GetContext(ctx, &audited, `SELECT count(*) FROM audit_log WHERE client_id = ? AND actor = ? AND to_status = 'revoked'
		AND consent_id <> ''`, id, tpp.ActorOperator); err != nil || audited != 2 {
		t.Errorf("%d consent revocations audited as the operator, want 2 (%v)", audited, err)
	}
	queued, err := consents.PendingCloses(ctx, 10)
	if err != nil || len(queued) != 2 {
		t.Errorf("queued for the janitor: %v, %v; want both consents", queued, err)
	}
}

// openClientsDB opens the database the clients command wrote, with its
// keyring, closed when the test ends.
func openClientsDB(t *testing.T, dbPath string) (*sqlite.DB, *seal.Keyring) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), dbPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	kr, err := storage.OpenKeyring(testMasterKey)
	if err != nil {
		t.Fatal(err)
	}
	return db, kr
}
