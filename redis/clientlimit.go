package redis

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseClientLimit parses the settings --client-rate-limit (rate:
// "<n>/s", "<n>/m", "<n>/h" or "off") and --client-rate-burst (burst:
// empty for twice n); on is false when the limit is off.
func ParseClientLimit(rate, burst string) (l ClientLimit, on bool, err error) {
	if rate == "off" {
		return l, false, nil
	}
	n, unit, ok := strings.Cut(rate, "/")
	periods := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}
	r, rerr := strconv.Atoi(n)
	if !ok || rerr != nil || r < 1 || periods[unit] == 0 {
		return l, false, fmt.Errorf("setting --client-rate-limit ($TPP_CLIENT_RATE_LIMIT) = %q: use <n>/s, <n>/m or <n>/h with n >= 1 (e.g. 50/s), or off", rate)
	}
	l = ClientLimit{Rate: r, Period: periods[unit], Burst: 2 * r}
	if burst != "" {
		b, err := strconv.Atoi(burst)
		if err != nil || b < 1 {
			return l, false, fmt.Errorf("setting --client-rate-burst ($TPP_CLIENT_RATE_BURST) = %q: use a whole number >= 1, or leave it empty", burst)
		}
		l.Burst = b
	}
	return l, true, nil
}
