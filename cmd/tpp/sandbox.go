package main

import (
	"context"
	"io"

	"github.com/bunqtpp/tpp/sandbox"
)

// runSandbox runs the emulated bunq sandbox until ctx is cancelled.
func runSandbox(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return ownUsage(sandbox.Command(ctx, args, stdout, stderr), sandbox.ErrUsage)
}
