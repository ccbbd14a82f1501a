package main

import (
	"context"
	"io"
	"os"

	"github.com/bunqtpp/tpp/clientadmin"
)

// runClients manages fintech API clients: tpp clients create|list|revoke|rotate-key.
func runClients(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return clientsMain(ctx, args, stdout, stderr, os.Getenv)
}

func clientsMain(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	return ownUsage(clientadmin.Command(ctx, args, stdout, stderr, getenv), clientadmin.ErrUsage)
}
