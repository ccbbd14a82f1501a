package redis

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// libLogger takes go-redis's own log lines (a failed dial is logged once per
// retry, besides the error the caller gets) into the service's logger at
// debug level: the error returned to the caller says it once, clearly.
type libLogger struct{ log *slog.Logger }

func (l libLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, strings.TrimSpace(fmt.Sprintf(format, v...)), "component", "go-redis")
}

// RouteLibraryLogs sends go-redis's log lines to log at debug level instead
// of standard error. go-redis has one logger per process, so the command's
// main calls this once, at start.
func RouteLibraryLogs(log *slog.Logger) {
	goredis.SetLogger(libLogger{log: log})
}
