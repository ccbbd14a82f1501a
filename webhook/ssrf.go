package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// ErrPrivateDestination is returned (inside the attempt's error) when
// Options.DenyPrivateNetworks refuses to connect to an address.
var ErrPrivateDestination = errors.New("webhook: destination address is not public")

// blockedPrefixes are ranges netip's predicates do not cover but that are
// never a fintech's public endpoint: shared address space (carrier NAT,
// often cloud-internal), "this network", IETF protocol assignments,
// benchmarking, reserved, and the NAT64 prefix (which can embed any IPv4).
var blockedPrefixes = [...]netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
}

// IsPublicAddr reports whether ip is a globally routable unicast address
// that a webhook may be sent to when private networks are denied: not
// loopback, private (RFC 1918, fc00::/7), link-local (169.254.0.0/16, which
// holds cloud metadata services), multicast, unspecified or reserved.
func IsPublicAddr(ip netip.Addr) bool {
	ip = ip.Unmap() // ::ffff:10.0.0.1 is 10.0.0.1
	if !ip.IsValid() || ip.Zone() != "" {
		return false
	}
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() || ip.IsMulticast() ||
		ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() ||
		!ip.IsGlobalUnicast() {
		return false
	}
	if ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return false
	}
	for _, p := range blockedPrefixes {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// guardedDialer returns a DialContext that refuses non-public addresses.
// The check runs in Control, on the address actually being connected to
// after DNS resolution, so a name that resolves (or re-resolves, DNS
// rebinding) to an internal address is refused too.
func guardedDialer(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	gd := *d
	gd.Control = func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: %s", ErrPrivateDestination, address)
		}
		if !IsPublicAddr(ap.Addr()) {
			return fmt.Errorf("%w: %s", ErrPrivateDestination, ap.Addr())
		}
		return nil
	}
	return gd.DialContext
}
