package main

import (
	"context"
	"io"
	"os"

	"github.com/bunqtpp/tpp/storage"
)

// runRekey re-seals the database's secrets under the current master key.
func runRekey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return ownUsage(storage.RekeyCommand(ctx, args, stdout, stderr, os.Getenv), storage.ErrUsage)
}

// runMigrate copies a SQLite database into PostgreSQL.
func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return ownUsage(storage.MigrateCommand(ctx, args, stdout, stderr, os.Getenv), storage.ErrUsage)
}
