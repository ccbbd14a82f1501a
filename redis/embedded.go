package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/bunqtpp/tpp"
)

// errEmbeddedClosed answers dials after EmbeddedRedis.Close.
var errEmbeddedClosed = errors.New("redis: embedded redis is closed")

// EmbeddedRedis is an in-process Redis (miniredis) for demo and development
// only: it is not shared between processes and forgets everything on exit.
//
// It behaves like a real server where the TPP depends on it:
//   - TTLs run down with the wall clock (miniredis's ClockTTL), so locks,
//     OAuth states and cache entries expire; without it miniredis keeps keys
//     until a test calls FastForward, and a demo's poll lock is held forever.
//   - It listens on no socket: clients reach it through in-memory pipes
//     (Dial), so no other process on the machine can connect. Each
//     connection must still AUTH with a password generated at start, so a
//     client without it is refused even in-process.
type EmbeddedRedis struct {
	mr       *miniredis.Miniredis
	password string

	mu     sync.Mutex
	closed bool
}

// StartEmbedded starts an in-process Redis with a fresh random password.
func StartEmbedded() *EmbeddedRedis {
	mr := miniredis.NewMiniRedis()
	mr.ClockTTL(true)
	e := &EmbeddedRedis{mr: mr, password: tpp.RandomToken(32)}
	mr.RequireAuth(e.password)
	return e
}

// Dial opens a connection to the server over an in-memory pipe; it fits
// goredis.Options.Dialer.
func (e *EmbeddedRedis) Dial(context.Context, string, string) (net.Conn, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		// miniredis would start a new, empty server on Dial after Close.
		return nil, errEmbeddedClosed
	}
	return e.mr.Dial()
}

// Client returns a new authenticated client of the server.
func (e *EmbeddedRedis) Client() *goredis.Client {
	return goredis.NewClient(&goredis.Options{Addr: "embedded", Dialer: e.Dial, Password: e.password})
}

// Close stops the server; clients' commands fail afterwards.
func (e *EmbeddedRedis) Close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.mr.Close()
}

// Embedded starts an EmbeddedRedis and returns a client of it. The returned
// func closes the client and stops the server.
func Embedded(ctx context.Context) (goredis.UniversalClient, func(), error) {
	e := StartEmbedded()
	rdb := e.Client()
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		e.Close()
		return nil, nil, fmt.Errorf("redis: ping embedded redis: %w", err)
	}
	return rdb, func() { _ = rdb.Close(); e.Close() }, nil
}
