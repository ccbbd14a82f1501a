package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/seal"
	"github.com/bunqtpp/tpp/sqlite"
)

// openDB opens the SQLite database of --db / TPP_DB_PATH, applying pending
// migrations.
func openDB(ctx context.Context, path string, clock tpp.Clock) (*sqlite.DB, error) {
	if path == "" {
		return nil, fmt.Errorf("setting --db ($TPP_DB_PATH) is empty: give a file path, e.g. data/tpp.db")
	}
	db, err := sqlite.Open(ctx, path, clock)
	if err != nil {
		return nil, fmt.Errorf("database %s (--db, $TPP_DB_PATH): %w", path, err)
	}
	return db, nil
}

// openKeyring parses the master keys of --master-key / TPP_MASTER_KEY. The
// error names the setting but never echoes its value.
func openKeyring(masterKey string) (*seal.Keyring, error) {
	keys, err := seal.ParseKeys(masterKey)
	if err != nil {
		return nil, fmt.Errorf("setting --master-key ($TPP_MASTER_KEY): %w", err)
	}
	kr, err := seal.NewKeyring(keys...)
	if err != nil {
		return nil, fmt.Errorf("setting --master-key ($TPP_MASTER_KEY): %w", err)
	}
	return kr, nil
}

// openExistingDB opens the database of a command that only works on an
// existing one (clients, rekey, register --status): a missing file is an
// error naming the path, never a new empty database.
func openExistingDB(ctx context.Context, path string, clock tpp.Clock) (*sqlite.DB, error) {
	if err := requireDBFile(path); err != nil {
		return nil, err
	}
	return openDB(ctx, path, clock)
}

// requireDBFile refuses a SQLite path with no database file behind it.
func requireDBFile(path string) error {
	if path == "" {
		return fmt.Errorf("setting --db ($TPP_DB_PATH) is empty: give a file path, e.g. data/tpp.db")
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		abs, _ := filepath.Abs(path)
		return fmt.Errorf("database %s (--db, $TPP_DB_PATH) does not exist: point --db at the service's database ('tpp serve' and 'tpp demo' create it)", abs)
	}
	return nil
}

// demoKeyHint says where the demo keeps its development master key when
// one lies beside the database, for commands run without --master-key.
func demoKeyHint(masterKey, dbPath string) string {
	if strings.TrimSpace(masterKey) != "" {
		return ""
	}
	p := filepath.Join(filepath.Dir(dbPath), "master.key")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return fmt.Sprintf("; the demo keeps its development key in %s: add --master-key \"$(cat %s)\"", p, p)
}

// openKeyringFor parses --master-key for a command on the database at
// dbPath, pointing at the demo's key file when the setting is empty.
func openKeyringFor(masterKey, dbPath string) (*seal.Keyring, error) {
	kr, err := openKeyring(masterKey)
	if err != nil {
		return nil, fmt.Errorf("%w%s", err, demoKeyHint(masterKey, dbPath))
	}
	return kr, nil
}

// checkKeyOpensSecrets refuses a keyring that does not open the secrets
// already sealed in db: a client created under the wrong key would have a
// webhook secret the service cannot read.
func checkKeyOpensSecrets(ctx context.Context, st *store, kr *seal.Keyring, dbPath string) error {
	counts, err := st.rekey(ctx, kr, true)
	if err != nil {
		return err
	}
	unreadable, ids := 0, map[string]bool{}
	for _, c := range counts {
		unreadable += c.Unreadable
		for id := range c.ByKey {
			ids[id] = true
		}
	}
	if unreadable == 0 {
		return nil
	}
	var list []string
	for id := range ids {
		list = append(list, id)
	}
	sort.Strings(list)
	return fmt.Errorf("setting --master-key ($TPP_MASTER_KEY) does not open %d secret(s) already in %s (sealed under key id(s) %s): use the master key the service uses%s",
		unreadable, dbPath, strings.Join(list, ", "), demoKeyHint("", dbPath))
}
