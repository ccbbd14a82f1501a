package main

import (
	"context"
	"fmt"

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
