package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	goredis "github.com/redis/go-redis/v9"
)

// Open connects to the Redis the settings name. With none, it starts an
// embedded in-memory one (development and demo only), which production
// refuses: it keeps nothing and no replica shares it. The func closes it.
func Open(ctx context.Context, s Settings, production bool, log *slog.Logger) (goredis.UniversalClient, func(), error) {
	rc, ok, err := s.Config()
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		if production {
			return nil, nil, errors.New("setting --redis-url ($TPP_REDIS_URL) is required in production: the embedded Redis keeps nothing and is not shared by replicas")
		}
		rdb, stop, err := Embedded(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("embedded redis: %w", err)
		}
		log.Warn("no Redis configured: using an embedded in-memory Redis (development and demo only)")
		return rdb, stop, nil
	}
	RouteLibraryLogs(log) // the error below says it once; no per-retry lines
	rdb, err := NewClient(ctx, rc)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", s.Setting(), err)
	}
	return rdb, func() { rdb.Close() }, nil
}
