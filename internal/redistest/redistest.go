// Package redistest runs a real redis-server for tests.
//
// Each Start gives the test its own server process on a free loopback port,
// with persistence off and a private temp dir. A server per test (a few
// milliseconds to start) keeps isolation trivially true under t.Parallel and
// lets a test Stop and Restart its Redis without disturbing anyone else.
// Plain 'go test' skips when redis-server is missing; CI=true fails instead.
package redistest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bunqtpp/tpp/internal/testenv"
)

// startTimeout bounds how long a starting server may take to answer PING.
const startTimeout = 10 * time.Second

// Server is one redis-server process owned by a test.
type Server struct {
	// Addr is "127.0.0.1:PORT".
	Addr string
	// URL is "redis://127.0.0.1:PORT/0".
	URL string

	// CAFile is the PEM file of the CA that signed a TLS server's
	// certificate (StartTLS only).
	CAFile string

	bin      string
	dir      string
	port     int
	password string // StartTLS only

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan error // receives cmd.Wait's result once
}

// Start starts a fresh redis-server and stops it when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := testenv.LookPath(t, "Redis-backed tests", "redis-server")
	s := &Server{bin: bin, dir: t.TempDir()}
	// A free port can be taken by someone else between our probe and the
	// server's bind; retry with a new port a few times.
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			t.Fatalf("redistest: find a free port: %v", err)
		}
		s.port = port
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.URL = "redis://" + s.Addr + "/0"
		if lastErr = s.start(); lastErr == nil {
			t.Cleanup(func() { s.kill() })
			return s
		}
	}
	t.Fatalf("redistest: start redis-server: %v", lastErr)
	return nil
}

// Client returns a client connected to the server, closed when t ends.
func (s *Server) Client(t testing.TB) goredis.UniversalClient {
	t.Helper()
	opts := &goredis.Options{Addr: s.Addr, Password: s.password}
	if s.CAFile != "" {
		opts.TLSConfig = s.TLSConfig()
	}
	c := goredis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Stop stops the server (as a crash would: no shutdown handshake). Clients
// see connection errors until Restart.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.kill()
}

// Restart starts the server again on the same port. The data is gone
// (persistence is off), as after losing a Redis node.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.kill()
	// The old socket may linger briefly; retry the bind for a moment.
	deadline := time.Now().Add(startTimeout)
	for {
		err := s.start()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: restart redis-server on %s: %v", s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// FlushAll removes every key from every database.
func (s *Server) FlushAll(t testing.TB) {
	t.Helper()
	c := s.Client(t)
	if err := c.FlushAll(context.Background()).Err(); err != nil {
		t.Fatalf("redistest: FLUSHALL: %v", err)
	}
}

// StartCluster starts a one-node Redis Cluster owning all 16384 slots, so
// code can be checked against cluster rules (one hash slot per command or
// script) and go-redis's cluster client. Its Addr is a cluster seed address.
// Restart brings the node back without its slots; use it only for
// standalone servers.
func StartCluster(t testing.TB) *Server {
	t.Helper()
	bin := testenv.LookPath(t, "Redis-backed tests", "redis-server")
	s := &Server{bin: bin, dir: t.TempDir()}
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			t.Fatalf("redistest: find a free port: %v", err)
		}
		s.port = port
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.URL = "redis://" + s.Addr + "/0"
		lastErr = s.startWith(
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", s.dir, "--daemonize", "no",
			"--loglevel", "warning",
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(s.dir, "nodes.conf"),
			"--cluster-announce-ip", "127.0.0.1",
		)
		if lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("redistest: start cluster node: %v", lastErr)
	}
	t.Cleanup(func() { s.kill() })

	c := goredis.NewClient(&goredis.Options{Addr: s.Addr})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatalf("redistest: assign cluster slots: %v", err)
	}
	for {
		info, err := c.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return s
		}
		select {
		case <-ctx.Done():
			t.Fatalf("redistest: cluster on %s not ready: %v %s", s.Addr, err, info)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// StartSentinel starts a Redis Sentinel that monitors s as master name and
// returns its address. It stops when t ends.
func (s *Server) StartSentinel(t testing.TB, name string) string {
	t.Helper()
	dir := t.TempDir()
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			t.Fatalf("redistest: find a free port: %v", err)
		}
		// Sentinel rewrites its config file, so it must be a real file.
		conf := filepath.Join(dir, "sentinel.conf")
		body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor %s 127.0.0.1 %d 1\n", port, dir, name, s.port)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatalf("redistest: %v", err)
		}
		sen := &Server{bin: s.bin, dir: dir, port: port, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
		if lastErr = sen.startWith(conf, "--sentinel"); lastErr == nil {
			t.Cleanup(func() { sen.kill() })
			return sen.Addr
		}
	}
	t.Fatalf("redistest: start sentinel: %v", lastErr)
	return ""
}

func (s *Server) start() error {
	if s.CAFile != "" {
		return s.startWith(append(s.tlsArgs(),
			"--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", s.dir, "--daemonize", "no", "--loglevel", "warning")...)
	}
	return s.startWith(
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--daemonize", "no",
		"--loglevel", "warning",
	)
}

func (s *Server) startWith(args ...string) error {
	out := &lockedBuffer{}
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	deadline := time.After(startTimeout)
	probe := func() bool { return answers(s.Addr, cmd.Process.Pid) }
	if s.CAFile != "" {
		probe = func() bool { return s.answersTLS(cmd.Process.Pid) }
	}
	for !probe() {
		select {
		case err := <-exited:
			return fmt.Errorf("redis-server exited (%v): %s", err, out.String())
		case <-deadline:
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis-server on %s did not answer PING within %s: %s", s.Addr, startTimeout, out.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	return nil
}

func (s *Server) kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd, s.exited = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// answers reports whether the redis-server with process id pid answers on
// addr. Checking the pid (INFO server) makes sure a server that lost the
// race for its port is not mistaken for another one already listening there.
// It speaks raw RESP so that probing a server that is still starting does
// not make go-redis log dial errors.
func answers(addr string, pid int) bool {
	conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := conn.Write([]byte("INFO server\r\n")); err != nil {
		return false
	}
	r := bufio.NewReader(conn)
	head, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(head, "$") {
		return false
	}
	n, err := strconv.Atoi(strings.TrimSpace(head[1:]))
	if err != nil || n <= 0 {
		return false
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return false
	}
	return strings.Contains(string(body), "\nprocess_id:"+strconv.Itoa(pid)+"\r\n")
}

// freePort picks a free port below the kernel's ephemeral range (32768
// and up on Linux), so no connection or :0 listener elsewhere takes it
// before redis-server binds it, or between a Stop and a Restart on it.
func freePort() (int, error) {
	for range 1000 {
		port := 10000 + mathrand.IntN(10000)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		l.Close()
		return port, nil
	}
	return 0, errors.New("no free port between 10000 and 20000")
}

// lockedBuffer collects the server's output for error messages.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
