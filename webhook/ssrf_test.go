package webhook_test

import (
	"net/netip"
	"testing"

	"github.com/bunqtpp/tpp/webhook"
)

func TestIsPublicAddr(t *testing.T) {
	t.Parallel()
	cases := map[string]bool{
		"8.8.8.8":           true,
		"185.40.108.1":      true,
		"2a00:1450:4001::1": true,
		"127.0.0.1":         false,
		"127.8.9.10":        false,
		"::1":               false,
		"10.1.2.3":          false,
		"172.16.0.1":        false,
		"172.31.255.255":    false,
		"192.168.1.1":       false,
		"169.254.169.254":   false, // cloud metadata
		"100.64.0.1":        false, // carrier-grade NAT
		"0.0.0.0":           false,
		"0.1.2.3":           false,
		"255.255.255.255":   false,
		"224.0.0.1":         false,
		"198.18.0.1":        false,
		"240.0.0.1":         false,
		"::":                false,
		"fc00::1":           false,
		"fd12:3456::1":      false,
		"fe80::1":           false,
		"ff02::1":           false,
		"::ffff:10.0.0.1":   false, // IPv4-mapped private
		"::ffff:8.8.8.8":    true,
		"64:ff9b::a00:1":    false, // NAT64 of 10.0.0.1
		"fe80::1%eth0":      false,
		"172.32.0.1":        true, // just outside 172.16.0.0/12
		"100.128.0.1":       true, // just outside 100.64.0.0/10
	}
	for s, want := range cases {
		if got := webhook.IsPublicAddr(netip.MustParseAddr(s)); got != want {
			t.Errorf("IsPublicAddr(%s) = %v, want %v", s, got, want)
		}
	}
	if webhook.IsPublicAddr(netip.Addr{}) {
		t.Error("the zero Addr is public")
	}
}
