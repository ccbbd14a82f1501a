package main

import (
	"context"
	"io"

	"github.com/bunqtpp/tpp/certs"
)

// runCerts is 'tpp certs': generate test certificates and inspect real ones.
func runCerts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return ownUsage(certs.Command(ctx, args, stdout, stderr), certs.ErrUsage)
}
