package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bunqtpp/tpp"
)

// A server that refuses connections, and the server's own refusals and
// lost races past Tx's retries, are outages that pass (503); a request's
// own faults are not.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	// A port nobody listens on: taken and released.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = Open(context.Background(), "postgres://postgres@"+addr+"/tpp?sslmode=disable&connect_timeout=2", nil, Pool{})
	if err == nil || !Unavailable(err) {
		t.Fatalf("connection refused: %v (Unavailable %v)", err, err != nil && Unavailable(err))
	}
	for code, want := range map[string]bool{
		"53300": true,  // too many connections
		"57P03": true,  // the server is starting up
		"08006": true,  // connection failure
		"40001": true,  // serialization failure past the retries
		"55P03": true,  // lock_timeout
		"23505": false, // a unique violation is the request's conflict
		"42P01": false, // a missing table is a bug
	} {
		err := fmt.Errorf("postgres: transaction lost %d serialization conflicts: %w", 20, &pgconn.PgError{Code: code})
		if got := Unavailable(err); got != want {
			t.Errorf("SQLSTATE %s: Unavailable %v, want %v", code, got, want)
		}
	}
	if Unavailable(nil) || Unavailable(errors.New("x")) || Unavailable(tpp.Errorf(tpp.EConflict, "x")) {
		t.Fatal("Unavailable recognises errors that do not pass")
	}
}
