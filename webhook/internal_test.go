package webhook

import (
	"testing"
	"time"
)

func TestDefaultJitterStaysWithinTenPercent(t *testing.T) {
	t.Parallel()
	base := 10 * time.Second
	seen := map[time.Duration]bool{}
	for range 1000 {
		d := defaultJitter(base)
		if d < 9*time.Second || d > 11*time.Second {
			t.Fatalf("jitter(%v) = %v, outside ±10%%", base, d)
		}
		seen[d] = true
	}
	if len(seen) < 100 {
		t.Errorf("jitter produced only %d distinct values in 1000 draws", len(seen))
	}
	if got := defaultJitter(5); got != 5 {
		t.Errorf("jitter of a tiny duration = %v", got)
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	cases := map[string]time.Duration{
		"":                              0,
		"120":                           2 * time.Minute,
		"0":                             0,
		"-5":                            0,
		"junk":                          0,
		"99999999999":                   maxRetryAfter,
		"Sun, 22 Nov 2026 10:05:00 GMT": 5 * time.Minute,
		"Sun, 22 Nov 2026 09:05:00 GMT": 0,
		"Sun, 22 Nov 2030 09:05:00 GMT": maxRetryAfter,
	}
	for in, want := range cases {
		if got := retryAfter(in, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestBackoffIsCapped(t *testing.T) {
	t.Parallel()
	d := &Dispatcher{opts: Options{Backoff: []time.Duration{time.Second, time.Minute}}}
	for attempt, want := range map[int]time.Duration{0: time.Second, 1: time.Second, 2: time.Minute, 3: time.Minute, 50: time.Minute} {
		if got := d.backoff(attempt); got != want {
			t.Errorf("backoff(%d) = %v, want %v", attempt, got, want)
		}
	}
}
