package redis

import (
	"context"
	"testing"
	"time"
)

func BenchmarkContextStoreGet(b *testing.B) {
	ctx := context.Background()
	_, rdb := newRedis(b)
	s, err := NewContextStore(rdb, Keys{}, testKeyring(b), 0)
	if err != nil {
		b.Fatal(err)
	}
	blob := make([]byte, 4096) // about the size of a context with its RSA keys
	if err := s.Put(ctx, "1", blob); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Get(ctx, "1"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRateBudgetWaitUncontended(b *testing.B) {
	ctx := context.Background()
	_, rdb := newRedis(b)
	rb := NewRateBudget(rdb, Keys{})
	b.ReportAllocs()
	for b.Loop() {
		// A limit far above the loop's rate keeps every call admitted at once
		// while still trimming and counting the log.
		if err := rb.Wait(ctx, "bench", 1_000_000, 100*time.Millisecond); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCacheHit(b *testing.B) {
	ctx := context.Background()
	_, rdb := newRedis(b)
	c := NewCache(rdb, Keys{}, CacheOptions{Sealer: testKeyring(b)})
	val := make([]byte, 2048)
	load := func(context.Context) ([]byte, error) { return val, nil }
	if _, _, err := c.GetOrLoad(ctx, "acct", time.Hour, false, load); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, hit, err := c.GetOrLoad(ctx, "acct", time.Hour, false, load); err != nil || !hit {
			b.Fatalf("hit=%v err=%v", hit, err)
		}
	}
}
