package bankctx_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/psd2"
	"github.com/bunqtpp/tpp/redis"
)

// BenchmarkContextMemoryUsage prints the figure "Redis bytes per user
// context": MEMORY USAGE (key, value and Redis' own overhead) of a
// consent's sealed context, made from a real OAuth token by the emulator,
// with its session. The stored sealed length is reported beside it.
func BenchmarkContextMemoryUsage(b *testing.B) {
	w := newWorld(b)
	r := w.replica(b)
	ctx := context.Background()
	if _, _, err := r.p.Create(ctx, w.consent.ID, w.token); err != nil {
		b.Fatal(err)
	}
	key := "b:ctx:" + w.consent.ID
	var usage int64
	for b.Loop() {
		var err error
		if usage, err = w.rdb.MemoryUsage(ctx, key).Result(); err != nil {
			b.Fatal(err)
		}
	}
	sealed, err := w.rdb.StrLen(ctx, key).Result()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(usage), "redis-bytes/context")
	b.ReportMetric(float64(sealed), "sealed-bytes/context")
}

// BenchmarkRSSActiveConsents prints the figure "RSS with 10,000 active
// consents" for the part of the TPP that grows with them: 10,000 consents
// with a sealed context each in a real Redis, and this process's provider
// reading every one of them (open, parse, keep in its parsed-context cache)
// and listing each one's accounts at the emulator. VmRSS is read from
// /proc/self/status after a GC. The emulator runs in this process too, so
// the figure is an upper bound for the provider's share. The contexts are
// copies of one real context (10,000 real ones would need 10,000 RSA keys);
// each is parsed on its own, so each holds its own keys in memory.
func BenchmarkRSSActiveConsents(b *testing.B) {
	const n = 10_000
	w := newWorld(b)
	// The copies share one installation: bunq's per-installation limit
	// (3 GETs per 3 s) would pace the reads to one a second.
	w.budget = unlimited{}
	r := w.replica(b)
	ctx := context.Background()
	if _, _, err := r.p.Create(ctx, w.consent.ID, w.token); err != nil {
		b.Fatal(err)
	}
	store, err := redis.NewContextStore(w.rdb, redis.NewKeys("b:"), w.keyring, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	blob, err := store.Get(ctx, w.consent.ID)
	if err != nil {
		b.Fatal(err)
	}
	consents := make([]*tpp.Consent, n)
	for i := range consents {
		c := *w.consent
		c.ID = fmt.Sprintf("%s-%05d", w.consent.ID, i)
		if err := store.Put(ctx, c.ID, blob); err != nil {
			b.Fatal(err)
		}
		consents[i] = &c
	}
	before := vmRSS(b)
	for b.Loop() {
		for _, c := range consents {
			bc, err := r.p.Get(ctx, c)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := r.client.ListMonetaryAccounts(ctx, bc, psd2.Page{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(vmRSS(b))/(1<<20), "rss-MB")
	b.ReportMetric(float64(before)/(1<<20), "rss-before-reads-MB")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-inuse-MB")
}

// vmRSS reads the resident set size of this process (Linux).
func vmRSS(b *testing.B) int64 {
	b.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skipf("no /proc/self/status: %v", err)
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmRSS line")
	return 0
}

// unlimited admits every call at once.
type unlimited struct{}

func (unlimited) Wait(ctx context.Context, _ string, _ int, _ time.Duration) error { return ctx.Err() }
