package notify

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ResolveCallbackAuth resolves the settings --bank-callback-auth (mode)
// and --bank-callback-cidrs (cidrList) for the bank environment bankEnv:
// auto is ip with bunq's production range for production, signature for the
// emulated bank (started with callback signing on) and none otherwise (bunq's
// sandbox calls from changing AWS addresses, so a range cannot be named).
func ResolveCallbackAuth(mode, bankEnv, cidrList string) (string, []netip.Prefix, error) {
	given := mode
	if mode == "auto" || mode == "" {
		switch bankEnv {
		case "production":
			mode = AuthIP
		case "emulated":
			mode = AuthSignature
		default:
			mode = AuthNone
		}
	}
	var cidrs []netip.Prefix
	for _, f := range strings.Split(cidrList, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return "", nil, fmt.Errorf("setting --bank-callback-cidrs ($TPP_BANK_CALLBACK_CIDRS): %q is not a CIDR such as 185.40.108.0/22", f)
		}
		cidrs = append(cidrs, p.Masked())
	}
	switch mode {
	case AuthIP:
		if len(cidrs) == 0 && bankEnv == "production" {
			cidrs = []netip.Prefix{BunqProductionRange}
		}
		if len(cidrs) == 0 {
			return "", nil, errors.New("setting --bank-callback-auth ($TPP_BANK_CALLBACK_AUTH) = ip needs --bank-callback-cidrs ($TPP_BANK_CALLBACK_CIDRS) outside production")
		}
	case AuthSignature, AuthNone:
	default:
		return "", nil, fmt.Errorf("setting --bank-callback-auth ($TPP_BANK_CALLBACK_AUTH) = %q: use ip, signature, none or auto", given)
	}
	return mode, cidrs, nil
}
