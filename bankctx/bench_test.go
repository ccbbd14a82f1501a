package bankctx_test

import (
	"context"
	"testing"
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
