package redistest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bunqtpp/tpp/internal/testenv"
)

// StartTLS starts a redis-server that speaks only TLS, with a certificate
// for 127.0.0.1 from a CA generated for the test (CAFile), and requires
// password when it is not empty. URL is then rediss://[:password@]host:port/0.
// Client returns a client that trusts the CA. Stop and Restart work as for
// Start.
func StartTLS(t testing.TB, password string) *Server {
	t.Helper()
	bin := testenv.LookPath(t, "Redis-backed tests", "redis-server")
	s := &Server{bin: bin, dir: t.TempDir(), password: password}
	if err := s.writeCerts(); err != nil {
		t.Fatalf("redistest: make TLS certificates: %v", err)
	}
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			t.Fatalf("redistest: find a free port: %v", err)
		}
		s.port = port
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		u := url.URL{Scheme: "rediss", Host: s.Addr, Path: "/0"}
		if password != "" {
			u.User = url.UserPassword("", password)
		}
		s.URL = u.String()
		if lastErr = s.start(); lastErr == nil {
			t.Cleanup(func() { s.kill() })
			return s
		}
	}
	t.Fatalf("redistest: start redis-server with TLS: %v", lastErr)
	return nil
}

// TLSConfig trusts the server's test CA.
func (s *Server) TLSConfig() *tls.Config {
	pool := x509.NewCertPool()
	if b, err := os.ReadFile(s.CAFile); err == nil {
		pool.AppendCertsFromPEM(b)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

func (s *Server) tlsArgs() []string {
	args := []string{
		"--port", "0", "--tls-port", strconv.Itoa(s.port),
		"--tls-cert-file", filepath.Join(s.dir, "server.pem"),
		"--tls-key-file", filepath.Join(s.dir, "server-key.pem"),
		"--tls-ca-cert-file", s.CAFile,
		"--tls-auth-clients", "no",
	}
	if s.password != "" {
		args = append(args, "--requirepass", s.password)
	}
	return args
}

// answersTLS is answers for a TLS server: INFO server over TLS names pid.
func (s *Server) answersTLS(pid int) bool {
	c := goredis.NewClient(&goredis.Options{
		Addr: s.Addr, Password: s.password, TLSConfig: s.TLSConfig(),
		MaxRetries: -1, DialTimeout: 200 * time.Millisecond, ReadTimeout: 500 * time.Millisecond,
	})
	defer c.Close()
	info, err := c.Info(context.Background(), "server").Result()
	return err == nil && strings.Contains(info, "\nprocess_id:"+strconv.Itoa(pid)+"\r\n")
}

// writeCerts makes a CA and a server certificate for 127.0.0.1 in s.dir.
func (s *Server) writeCerts() error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "redistest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	s.CAFile = filepath.Join(s.dir, "ca.pem")
	for name, block := range map[string]*pem.Block{
		"ca.pem":         {Type: "CERTIFICATE", Bytes: caDER},
		"server.pem":     {Type: "CERTIFICATE", Bytes: leafDER},
		"server-key.pem": {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(s.dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}
