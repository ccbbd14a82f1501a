package redis_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/redis"
	"github.com/bunqtpp/tpp/seal"
)

// Wiring the stores, here on the embedded Redis that `tpp demo` uses. In
// production, redis.NewClient(ctx, redis.Config{URL: ...}) gives the client.
func Example() {
	ctx := context.Background()
	rdb, closeRedis, err := redis.Embedded(ctx)
	if err != nil {
		panic(err)
	}
	defer closeRedis()
	keyring, err := seal.NewKeyring(seal.Key{ID: "k1", Key: bytes.Repeat([]byte{1}, 32)})
	if err != nil {
		panic(err)
	}
	keys := redis.NewKeys("tpp:")

	contexts, err := redis.NewContextStore(rdb, keys, keyring, 0)
	if err != nil {
		panic(err)
	}
	_ = contexts.Put(ctx, "42", []byte(`{"session_token":"..."}`))
	if _, err := contexts.Get(ctx, "43"); errors.Is(err, tpp.ErrNotFound) {
		fmt.Println("consent 43: no context yet, rebuild it")
	}

	access, err := redis.NewAccessWindow(rdb, keys, 0, 0) // 4 per 24 h
	if err != nil {
		panic(err)
	}
	d, _ := access.Allow(ctx, "42")
	fmt.Printf("unattended read allowed=%v remaining=%d of %d\n", d.Allowed, d.Remaining, d.Limit)

	budget := redis.NewRateBudget(rdb, keys)
	_ = budget.Wait(ctx, "bunq:GET", 3, 3*time.Second)

	cache := redis.NewCache(rdb, keys, redis.CacheOptions{Sealer: keyring})
	v, hit, _ := cache.GetOrLoad(ctx, "accounts:42", 30*time.Second, false, func(context.Context) ([]byte, error) {
		return []byte(`[{"iban":"NL.."}]`), nil
	})
	fmt.Printf("%s hit=%v\n", v, hit)
	// Output:
	// consent 43: no context yet, rebuild it
	// unattended read allowed=true remaining=3 of 4
	// [{"iban":"NL.."}] hit=false
}
