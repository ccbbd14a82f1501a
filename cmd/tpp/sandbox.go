package main

import (
	"context"
	"errors"
	"io"

	"github.com/bunqtpp/tpp/sandbox"
)

// runSandbox runs the emulated bunq sandbox until ctx is cancelled.
func runSandbox(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	err := sandbox.Command(ctx, args, stdout, stderr)
	if errors.Is(err, sandbox.ErrUsage) {
		return errUsage
	}
	return err
}
