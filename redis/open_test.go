package redis

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
)

// With no Redis configured, Open starts the embedded one, except in
// production, where the error names the setting.
func TestOpenEmbeddedUnlessProduction(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, _, err := Open(ctx, Settings{}, true, log); err == nil || !strings.Contains(err.Error(), "--redis-url") {
		t.Fatalf("production without Redis: %v", err)
	}
	rdb, stop, err := Open(ctx, Settings{}, false, log)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("embedded Redis: %v", err)
	}
}
