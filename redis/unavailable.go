package redis

import (
	"errors"
	"io"
	"net"
	"syscall"

	goredis "github.com/redis/go-redis/v9"
)

// Unavailable reports whether err means Redis cannot be reached or cannot
// serve right now (down, restarting, loading its data, failing over, or its
// connection pool exhausted): a condition that passes, answered with 503
// and Retry-After rather than as our bug.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	switch {
	case errors.Is(err, goredis.ErrClosed), errors.Is(err, goredis.ErrPoolTimeout), errors.Is(err, goredis.ErrPoolExhausted),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.As(err, &ne):
		return true
	}
	return goredis.IsLoadingError(err) || goredis.IsClusterDownError(err) || goredis.IsTryAgainError(err) ||
		goredis.IsReadOnlyError(err) || goredis.IsMasterDownError(err)
}
