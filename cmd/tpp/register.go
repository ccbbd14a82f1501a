package main

import (
	"context"
	"io"
	"os"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/registration"
)

// runRegister registers this TPP with a bunq environment, or shows the
// registration with --status.
func runRegister(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return registerMain(ctx, args, stdout, stderr, os.Getenv, tpp.SystemClock{})
}

func registerMain(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string, clock tpp.Clock) error {
	return ownUsage(registration.Command(ctx, args, stdout, stderr, getenv, clock), registration.ErrUsage)
}
