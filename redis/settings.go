package redis

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Settings are the operator's Redis settings, as 'tpp serve' takes them:
// one of URL, Sentinel (master@host:port,host:port) or Cluster
// (host:port,host:port), the password of the latter two, and a PEM file of
// CAs to trust for TLS. Errors name the setting.
type Settings struct {
	URL, Sentinel, Cluster, Password, CAFile string
}

// Config is the client configuration the settings describe; ok is false
// when none is set (the caller may start an embedded Redis).
func (s Settings) Config() (c Config, ok bool, err error) {
	c = Config{URL: s.URL}
	if s.Sentinel != "" {
		master, addrs, ok := strings.Cut(s.Sentinel, "@")
		if !ok || master == "" || addrs == "" {
			return c, false, errors.New("setting --redis-sentinel ($TPP_REDIS_SENTINEL) must look like master@host:port,host:port")
		}
		c = Config{SentinelMaster: master, SentinelAddrs: splitList(addrs), Password: s.Password, SentinelPassword: s.Password}
	}
	if s.Cluster != "" {
		c = Config{ClusterAddrs: splitList(s.Cluster), Password: s.Password}
	}
	if c.URL == "" && c.SentinelMaster == "" && len(c.ClusterAddrs) == 0 {
		return c, false, nil
	}
	if s.CAFile != "" {
		if c.TLS, err = trustCAs(s.CAFile); err != nil {
			return c, false, err
		}
	}
	return c, true, nil
}

// Setting names the setting that chose the Redis, for errors.
func (s Settings) Setting() string {
	switch {
	case s.Sentinel != "":
		return "setting --redis-sentinel ($TPP_REDIS_SENTINEL)"
	case s.Cluster != "":
		return "setting --redis-cluster ($TPP_REDIS_CLUSTER)"
	}
	return "setting --redis-url ($TPP_REDIS_URL)"
}

// trustCAs trusts the CA certificates in the PEM file path.
func trustCAs(path string) (*tls.Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("setting --redis-ca ($TPP_REDIS_CA): %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("setting --redis-ca ($TPP_REDIS_CA) = %q holds no PEM certificate", path)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
