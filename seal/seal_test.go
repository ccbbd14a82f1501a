package seal_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/bunqtpp/tpp/seal"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func ring(t *testing.T, keys ...seal.Key) *seal.Keyring {
	t.Helper()
	k, err := seal.NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	k := ring(t, seal.Key{ID: "k1", Key: key(1)})
	for _, pt := range [][]byte{nil, []byte("x"), []byte("bunq oauth access token"), bytes.Repeat([]byte{0xff}, 1<<16)} {
		ct, err := k.Seal(pt, []byte("consent:42"))
		if err != nil {
			t.Fatal(err)
		}
		if len(pt) > 4 && bytes.Contains(ct, pt) {
			t.Error("sealed value contains the plaintext")
		}
		got, err := k.Open(ct, []byte("consent:42"))
		if err != nil || !bytes.Equal(got, pt) {
			t.Errorf("Open(Seal(%d bytes)) = %d bytes, %v", len(pt), len(got), err)
		}
		if id, err := seal.KeyID(ct); err != nil || id != "k1" {
			t.Errorf("KeyID = %q, %v", id, err)
		}
	}

	s, err := k.SealString("secret-token", "user:7")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := base64.StdEncoding.DecodeString(s); err != nil {
		t.Errorf("SealString is not standard base64: %v", err)
	}
	if strings.Contains(s, "secret-token") {
		t.Error("sealed string contains the plaintext")
	}
	if got, err := k.OpenString(s, "user:7"); err != nil || got != "secret-token" {
		t.Errorf("OpenString = %q, %v", got, err)
	}

	// The nonce is random: sealing twice gives different values.
	a, _ := k.Seal([]byte("same"), nil)
	b, _ := k.Seal([]byte("same"), nil)
	if bytes.Equal(a, b) {
		t.Error("two seals of the same plaintext are equal")
	}

	// A new keyring from the same configuration opens old values (a restart).
	keys, err := seal.ParseKeys("k1:" + hex.EncodeToString(key(1)))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ring(t, keys...).OpenString(s, "user:7"); err != nil || got != "secret-token" {
		t.Errorf("reopened after restart: %q, %v", got, err)
	}
}

func TestWrongAssociatedData(t *testing.T) {
	t.Parallel()
	k := ring(t, seal.Key{ID: "k1", Key: key(1)})
	ct, err := k.Seal([]byte("token"), []byte("consent:42"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ad := range []string{"consent:43", "consent:4", "consent:42 ", "", "CONSENT:42"} {
		if _, err := k.Open(ct, []byte(ad)); !errors.Is(err, seal.ErrOpen) {
			t.Errorf("Open with ad %q: err = %v, want ErrOpen", ad, err)
		}
	}
	s, _ := k.SealString("token", "a")
	if _, err := k.OpenString(s, "b"); !errors.Is(err, seal.ErrOpen) {
		t.Errorf("OpenString with other ad: %v", err)
	}
}

func TestTampering(t *testing.T) {
	t.Parallel()
	k := ring(t, seal.Key{ID: "k1", Key: key(1)}, seal.Key{ID: "k2", Key: key(2)})
	ct, err := k.Seal([]byte("a token of some length"), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range ct {
		for _, flip := range []byte{0x01, 0x80, 0xff} {
			bad := bytes.Clone(ct)
			bad[i] ^= flip
			if got, err := k.Open(bad, []byte("ad")); !errors.Is(err, seal.ErrOpen) {
				t.Fatalf("byte %d ^ %#x: Open = %q, %v; want ErrOpen", i, flip, got, err)
			}
		}
	}
	for n := 0; n < len(ct); n++ {
		if _, err := k.Open(ct[:n], []byte("ad")); !errors.Is(err, seal.ErrOpen) {
			t.Fatalf("truncated to %d bytes: err = %v", n, err)
		}
	}
	if _, err := k.Open(append(bytes.Clone(ct), 0), []byte("ad")); !errors.Is(err, seal.ErrOpen) {
		t.Errorf("extended by a byte: err = %v", err)
	}
	// Swapping the key id in the header to another key of the ring fails:
	// the id is bound into the associated data.
	swapped := bytes.Clone(ct)
	copy(swapped[2:4], "k2")
	if _, err := k.Open(swapped, []byte("ad")); !errors.Is(err, seal.ErrOpen) {
		t.Errorf("swapped key id: err = %v", err)
	}
	if _, err := k.OpenString("not base64!", "ad"); !errors.Is(err, seal.ErrOpen) {
		t.Errorf("OpenString of bad base64: %v", err)
	}
	for _, v := range [][]byte{nil, {}, {1}, {2, 2, 'k', '1'}, {1, 200, 'k'}} {
		if _, err := seal.KeyID(v); !errors.Is(err, seal.ErrOpen) {
			t.Errorf("KeyID(%v): err = %v", v, err)
		}
	}
}

func TestRotation(t *testing.T) {
	t.Parallel()
	old := ring(t, seal.Key{ID: "k1", Key: key(1)})
	sealedOld, err := old.Seal([]byte("old secret"), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}

	rotated := ring(t, seal.Key{ID: "k2", Key: key(2)}, seal.Key{ID: "k1", Key: key(1)})
	if rotated.CurrentKeyID() != "k2" {
		t.Errorf("CurrentKeyID = %q", rotated.CurrentKeyID())
	}
	if got, err := rotated.Open(sealedOld, []byte("ad")); err != nil || string(got) != "old secret" {
		t.Errorf("rotated ring opens old value: %q, %v", got, err)
	}
	sealedNew, err := rotated.Seal([]byte("new secret"), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := seal.KeyID(sealedNew); id != "k2" {
		t.Errorf("new value sealed under %q, want k2", id)
	}
	if _, err := old.Open(sealedNew, []byte("ad")); !errors.Is(err, seal.ErrOpen) || !strings.Contains(err.Error(), `unknown key "k2"`) {
		t.Errorf("old ring opening a k2 value: err = %v, want ErrOpen naming k2", err)
	}

	// Once k1 is retired, its values no longer open.
	retired := ring(t, seal.Key{ID: "k2", Key: key(2)})
	if _, err := retired.Open(sealedOld, []byte("ad")); !errors.Is(err, seal.ErrOpen) || !strings.Contains(err.Error(), `"k1"`) {
		t.Errorf("retired k1: err = %v", err)
	}
	// The same id with another key does not open either.
	impostor := ring(t, seal.Key{ID: "k1", Key: key(9)})
	if _, err := impostor.Open(sealedOld, []byte("ad")); !errors.Is(err, seal.ErrOpen) {
		t.Errorf("same id, other key: err = %v", err)
	}
}

func TestParseKeys(t *testing.T) {
	t.Parallel()
	k1, k2 := key(0xa1), key(0xb2)
	keys, err := seal.ParseKeys(" k1:" + hex.EncodeToString(k1) + " , old_2:" + base64.StdEncoding.EncodeToString(k2) + ",K-3:" + strings.ToUpper(hex.EncodeToString(k1)) + " ")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 || keys[0].ID != "k1" || !bytes.Equal(keys[0].Key, k1) ||
		keys[1].ID != "old_2" || !bytes.Equal(keys[1].Key, k2) || keys[2].ID != "K-3" || !bytes.Equal(keys[2].Key, k1) {
		t.Errorf("ParseKeys = %+v", keys)
	}

	hex32 := hex.EncodeToString(k1)
	for _, c := range []struct {
		in, msg string
	}{
		{"", "no master key is set; generate one with 'openssl rand -hex 32'"},
		{"   ", "no master key is set"},
		{hex32, "must look like \"k1:<64 hex characters>\""},
		{"k1:" + hex32 + ",", "must look like"},
		{"k1:", "must be 32 bytes"},
		{"k1:abcd", "must be 32 bytes"},
		{"k1:" + hex32[:62], "must be 32 bytes"},
		{"k1:" + hex32 + "00", "must be 32 bytes"},
		{"k1:" + hex32[:63] + "g", "must be 32 bytes"},
		{"k1:" + base64.StdEncoding.EncodeToString(k1[:31]), "must be 32 bytes"},
		{"k1:" + base64.RawStdEncoding.EncodeToString(k1), "must be 32 bytes"},
		{"k1:" + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)), "must be 32 bytes"},
		{":" + hex32, "must be 1 to 16 characters"},
		{"k 1:" + hex32, "may hold only letters"},
		{"kéy:" + hex32, "may hold only letters"},
		{strings.Repeat("k", 17) + ":" + hex32, "must be 1 to 16 characters"},
	} {
		_, err := seal.ParseKeys(c.in)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("ParseKeys(%q): err = %v, want it to contain %q", c.in, err, c.msg)
		}
		// The key material must never appear in the message.
		if err != nil && strings.Contains(err.Error(), hex32[:16]) {
			t.Errorf("ParseKeys(%q): error leaks the key: %v", c.in, err)
		}
	}

	// A duplicate id is a configuration mistake: refuse it at parse time,
	// and in NewKeyring for keys built in code.
	if _, err := seal.ParseKeys("k1:" + hex32 + ",k1:" + hex32); err == nil || !strings.Contains(err.Error(), "appears twice") {
		t.Errorf("ParseKeys with a duplicate id: %v", err)
	}
	key := seal.Key{ID: "k1", Key: make([]byte, 32)}
	if _, err := seal.NewKeyring(key, key); err == nil || !strings.Contains(err.Error(), "appears twice") {
		t.Errorf("NewKeyring with a duplicate id: %v", err)
	}
}

func TestNewKeyringErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		keys []seal.Key
		msg  string
	}{
		{nil, "at least one master key"},
		{[]seal.Key{{ID: "k1", Key: key(1)[:31]}}, "must be 32 bytes, got 31"},
		{[]seal.Key{{ID: "k1", Key: append(key(1), 1)}}, "must be 32 bytes, got 33"},
		{[]seal.Key{{ID: "", Key: key(1)}}, "1 to 16 characters"},
		{[]seal.Key{{ID: "a/b", Key: key(1)}}, "only letters"},
		{[]seal.Key{{ID: "k1", Key: key(1)}, {ID: "k2", Key: nil}}, `"k2" must be 32 bytes`},
	} {
		if _, err := seal.NewKeyring(c.keys...); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("NewKeyring(%d keys): err = %v, want %q", len(c.keys), err, c.msg)
		}
	}
}

// TestConcurrentUse runs under -race: a Keyring is shared by all requests.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	k := ring(t, seal.Key{ID: "k1", Key: key(1)}, seal.Key{ID: "k0", Key: key(0)})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				ad := []byte{byte(g), byte(i)}
				ct, err := k.Seal(ad, ad)
				if err != nil {
					errs <- err
					return
				}
				pt, err := k.Open(ct, ad)
				if err != nil || !bytes.Equal(pt, ad) {
					errs <- errors.Join(err, errors.New("round trip mismatch"))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestDeriveKey(t *testing.T) {
	t.Parallel()
	a, _ := seal.NewKeyring(seal.Key{ID: "k1", Key: bytesOf(1)})
	b, _ := seal.NewKeyring(seal.Key{ID: "k1", Key: bytesOf(1)}, seal.Key{ID: "k0", Key: bytesOf(2)})
	c, _ := seal.NewKeyring(seal.Key{ID: "k2", Key: bytesOf(2)})
	if !bytes.Equal(a.DeriveKey("csrf"), b.DeriveKey("csrf")) {
		t.Error("replicas with the same current key derive different keys")
	}
	if bytes.Equal(a.DeriveKey("csrf"), a.DeriveKey("other")) {
		t.Error("different purposes derive the same key")
	}
	if bytes.Equal(a.DeriveKey("csrf"), c.DeriveKey("csrf")) {
		t.Error("different master keys derive the same key")
	}
	if len(a.DeriveKey("csrf")) != 32 {
		t.Error("derived key is not 32 bytes")
	}
}

func bytesOf(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func TestReseal(t *testing.T) {
	t.Parallel()
	k1 := ring(t, seal.Key{ID: "k1", Key: key(1)})
	old, err := k1.SealString("access token", "consent:42:access_token")
	if err != nil {
		t.Fatal(err)
	}
	if id, err := seal.KeyIDString(old); err != nil || id != "k1" {
		t.Fatalf("KeyIDString = %q, %v", id, err)
	}

	rotated := ring(t, seal.Key{ID: "k2", Key: key(2)}, seal.Key{ID: "k1", Key: key(1)})
	resealed, changed, err := rotated.ResealString(old, "consent:42:access_token")
	if err != nil || !changed || resealed == old {
		t.Fatalf("ResealString = %q, %v, %v", resealed, changed, err)
	}
	if id, _ := seal.KeyIDString(resealed); id != "k2" {
		t.Errorf("re-sealed under %q, want k2", id)
	}
	// Only k2 is needed from now on, and the binding to the owner stays.
	k2 := ring(t, seal.Key{ID: "k2", Key: key(2)})
	if pt, err := k2.OpenString(resealed, "consent:42:access_token"); err != nil || pt != "access token" {
		t.Errorf("k2 alone opens the re-sealed value: %q, %v", pt, err)
	}
	if _, err := k2.OpenString(resealed, "consent:43:access_token"); !errors.Is(err, seal.ErrOpen) {
		t.Errorf("re-sealed value opened for another owner: %v", err)
	}

	// Again: nothing to do, the value comes back as it was.
	again, changed, err := rotated.ResealString(resealed, "consent:42:access_token")
	if err != nil || changed || again != resealed {
		t.Errorf("second ResealString = changed %v, same %v, %v", changed, again == resealed, err)
	}

	// Values that do not open are reported, never re-sealed: a wrong
	// owner, a damaged value, and one under a key the ring lacks.
	for name, tc := range map[string]struct{ v, ad string }{
		"other owner": {old, "consent:43:access_token"},
		"damaged":     {old[:len(old)-4] + "AAAA", "consent:42:access_token"},
		"not base64":  {"%%%", "consent:42:access_token"},
	} {
		if out, changed, err := rotated.ResealString(tc.v, tc.ad); !errors.Is(err, seal.ErrOpen) || changed || out != "" {
			t.Errorf("%s: ResealString = %q, %v, %v", name, out, changed, err)
		}
	}
	if _, _, err := k2.ResealString(old, "consent:42:access_token"); !errors.Is(err, seal.ErrOpen) || !strings.Contains(err.Error(), `"k1"`) {
		t.Errorf("k1 value with k2 alone: err = %v", err)
	}
}
