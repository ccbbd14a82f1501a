package redis

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestUnreachableRedisLogsThroughOurLogger: go-redis's per-retry dial
// lines go to the service's logger at debug level, not to standard error;
// the caller gets one error.
func TestUnreachableRedisLogsThroughOurLogger(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	var buf syncBuffer
	RouteLibraryLogs(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { RouteLibraryLogs(slog.Default()) })
	_, err = NewClient(context.Background(), Config{URL: "redis://" + addr + "/0", PingTimeout: 3 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "cannot reach Redis at redis://"+addr) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(buf.String(), "component=go-redis") || !strings.Contains(buf.String(), "level=DEBUG") {
		t.Errorf("go-redis's own lines did not reach our logger at debug level:\n%s", buf.String())
	}
}
