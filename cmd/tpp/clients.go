package main

import (
	"context"
	"errors"
	"io"
	"os"

	"github.com/bunqtpp/tpp/clientadmin"
)

// runClients manages fintech API clients: tpp clients create|list|revoke|rotate-key.
func runClients(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return clientsMain(ctx, args, stdout, stderr, os.Getenv)
}

func clientsMain(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	err := clientadmin.Command(ctx, args, stdout, stderr, getenv)
	if errors.Is(err, clientadmin.ErrUsage) {
		return errUsage
	}
	return err
}
