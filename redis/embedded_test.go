package redis

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bunqtpp/tpp"
)

// TTLs must run down in the embedded Redis as in a real one: a lock whose
// holder went away frees itself, OAuth states and cache entries expire.
func TestEmbeddedKeysExpire(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, closeFn, err := Embedded(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()

	if err := rdb.Set(ctx, "short", "v", 50*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "a key set with PX 50 expires", func() bool {
		return rdb.Exists(ctx, "short").Val() == 0
	})

	locks := NewLocker(rdb, Keys{})
	if _, err := locks.TryAcquire(ctx, "poll", 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, err := locks.TryAcquire(ctx, "poll", time.Second); !errors.Is(err, tpp.ErrLocked) {
		t.Fatalf("second TryAcquire while held = %v, want tpp.ErrLocked", err)
	}
	eventually(t, 5*time.Second, "an abandoned lock frees itself", func() bool {
		_, err := locks.TryAcquire(ctx, "poll", time.Second)
		return err == nil
	})

	states := NewStateStore(rdb, Keys{}, 50*time.Millisecond, nil)
	if err := states.Put(ctx, "s", tpp.OAuthState{ConsentID: "c1", BrowserHash: "b"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "an OAuth state expires", func() bool {
		return rdb.Exists(ctx, states.key("s")).Val() == 0
	})
	if _, err := states.Take(ctx, "s", "b"); !errors.Is(err, tpp.ErrNotFound) {
		t.Fatalf("Take of an expired state = %v, want tpp.ErrNotFound", err)
	}
}

// Only the TPP's own client gets in: the server listens on no socket, and a
// connection without the generated password is refused.
func TestEmbeddedRefusesUnauthenticated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := StartEmbedded()
	defer e.Close()
	good := e.Client()
	defer good.Close()
	if err := good.Ping(ctx).Err(); err != nil {
		t.Fatalf("the TPP's client: %v", err)
	}
	if a := e.mr.Addr(); a != "" {
		t.Fatalf("embedded Redis listens on %s, want no socket", a)
	}
	for name, pw := range map[string]string{"no password": "", "wrong password": "guess"} {
		c := goredis.NewClient(&goredis.Options{Addr: "embedded", Dialer: e.Dial, Password: pw, MaxRetries: -1})
		err := c.Set(ctx, "k", "v", 0).Err()
		_ = c.Close()
		if err == nil || !(strings.Contains(err.Error(), "NOAUTH") || strings.Contains(err.Error(), "WRONGPASS")) {
			t.Fatalf("%s: SET = %v, want an authentication error", name, err)
		}
	}
	if n := good.Exists(ctx, "k").Val(); n != 0 {
		t.Fatal("an unauthenticated client wrote a key")
	}
	e.Close()
	if _, err := e.Dial(ctx, "", ""); !errors.Is(err, errEmbeddedClosed) {
		t.Fatalf("Dial after Close = %v, want errEmbeddedClosed", err)
	}
}
