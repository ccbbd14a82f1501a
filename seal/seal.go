// Package seal encrypts secrets at rest with AES-256-GCM.
//
// A Keyring holds one or more 32-byte master keys, each with a short id. It
// seals with the current key and opens with whichever key the sealed value
// names, so a master key can be rotated without re-encrypting everything at
// once. Every value is sealed with associated data that binds it to its owner
// (for example "consent:42"): a sealed value copied to another owner's slot
// fails to open.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ErrOpen is returned when a sealed value cannot be opened: it was tampered
// with, sealed for another owner, or sealed under a key this keyring lacks.
var ErrOpen = errors.New("seal: cannot open sealed value")

// version is the first byte of every sealed value, so the format can evolve.
const version = 1

// Keyring seals and opens values. It is safe for concurrent use.
type Keyring struct {
	current string
	aeads   map[string]cipher.AEAD
	derive  []byte // HMAC key for DeriveKey, itself derived from the current key
}

// Key is one master key with its id.
type Key struct {
	ID  string // 1 to 16 characters, [A-Za-z0-9_-]
	Key []byte // exactly 32 bytes
}

// NewKeyring returns a keyring that seals with keys[0] and opens with any of keys.
func NewKeyring(keys ...Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("seal: at least one master key is required")
	}
	k := &Keyring{current: keys[0].ID, aeads: make(map[string]cipher.AEAD, len(keys))}
	for _, key := range keys {
		if err := ValidKeyID(key.ID); err != nil {
			return nil, err
		}
		if len(key.Key) != 32 {
			return nil, fmt.Errorf("seal: master key %q must be 32 bytes, got %d", key.ID, len(key.Key))
		}
		if _, dup := k.aeads[key.ID]; dup {
			return nil, fmt.Errorf("seal: master key id %q appears twice", key.ID)
		}
		block, err := aes.NewCipher(key.Key)
		if err != nil {
			return nil, fmt.Errorf("seal: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("seal: %w", err)
		}
		k.aeads[key.ID] = aead
	}
	m := hmac.New(sha256.New, keys[0].Key)
	m.Write([]byte("seal/derive"))
	k.derive = m.Sum(nil)
	return k, nil
}

// ParseKeys parses master keys from configuration: a comma-separated list of
// "id:key" items, where key is 64 hex characters or standard base64 of 32
// bytes. The first item is the current key; the others can still open old values.
func ParseKeys(s string) ([]Key, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("seal: no master key is set; generate one with 'openssl rand -hex 32' and set it as \"k1:<hex>\"")
	}
	var keys []Key
	seen := map[string]bool{}
	for _, item := range strings.Split(s, ",") {
		id, enc, ok := strings.Cut(strings.TrimSpace(item), ":")
		if !ok {
			return nil, errors.New("seal: master key must look like \"k1:<64 hex characters>\" (an id, a colon, the key)")
		}
		if err := ValidKeyID(id); err != nil {
			return nil, err
		}
		if seen[id] {
			return nil, fmt.Errorf("seal: master key id %q appears twice", id)
		}
		seen[id] = true
		raw, err := hex.DecodeString(enc)
		if err != nil || len(raw) != 32 {
			raw, err = base64.StdEncoding.DecodeString(enc)
		}
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("seal: master key %q must be 32 bytes as 64 hex characters or base64; generate one with 'openssl rand -hex 32'", id)
		}
		keys = append(keys, Key{ID: id, Key: raw})
	}
	return keys, nil
}

// ValidKeyID checks a key id: 1 to 16 of [A-Za-z0-9_-].
func ValidKeyID(id string) error {
	if id == "" || len(id) > 16 {
		return fmt.Errorf("seal: key id %q must be 1 to 16 characters", id)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("seal: key id %q may hold only letters, digits, '_' and '-'", id)
		}
	}
	return nil
}

// DeriveKey returns a 32-byte key for purpose (for example "csrf"), derived
// from the current master key with HMAC-SHA256. Replicas sharing the master
// key derive the same key; rotating the master key changes it.
func (k *Keyring) DeriveKey(purpose string) []byte {
	m := hmac.New(sha256.New, k.derive)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// CurrentKeyID returns the id of the key new values are sealed with.
func (k *Keyring) CurrentKeyID() string { return k.current }

// Seal encrypts plaintext bound to ad. The result is
// version | len(id) | id | nonce | ciphertext+tag.
func (k *Keyring) Seal(plaintext, ad []byte) ([]byte, error) {
	aead := k.aeads[k.current]
	ns := aead.NonceSize()
	out := make([]byte, 0, 2+len(k.current)+ns+len(plaintext)+aead.Overhead())
	out = append(out, version, byte(len(k.current)))
	out = append(out, k.current...)
	nonce := make([]byte, ns)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plaintext, k.fullAD(k.current, ad)), nil
}

// Open decrypts a value made by Seal with the same ad.
func (k *Keyring) Open(sealed, ad []byte) ([]byte, error) {
	if len(sealed) < 2 || sealed[0] != version {
		return nil, ErrOpen
	}
	n := int(sealed[1])
	if len(sealed) < 2+n {
		return nil, ErrOpen
	}
	id := string(sealed[2 : 2+n])
	aead, ok := k.aeads[id]
	if !ok {
		return nil, fmt.Errorf("%w: sealed under unknown key %q", ErrOpen, id)
	}
	rest := sealed[2+n:]
	if len(rest) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrOpen
	}
	nonce, ct := rest[:aead.NonceSize()], rest[aead.NonceSize():]
	pt, err := aead.Open(nil, nonce, ct, k.fullAD(id, ad))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// KeyID returns the id of the key a sealed value was sealed with, so a
// rotation job can find values still under an old key.
func KeyID(sealed []byte) (string, error) {
	if len(sealed) < 2 || sealed[0] != version || len(sealed) < 2+int(sealed[1]) {
		return "", ErrOpen
	}
	return string(sealed[2 : 2+int(sealed[1])]), nil
}

// fullAD binds the key id as well, so the header cannot be swapped.
func (k *Keyring) fullAD(id string, ad []byte) []byte {
	b := make([]byte, 0, len(id)+1+len(ad))
	b = append(b, id...)
	b = append(b, 0)
	return append(b, ad...)
}

// SealString seals s and returns it as standard base64, for text columns.
func (k *Keyring) SealString(s, ad string) (string, error) {
	b, err := k.Seal([]byte(s), []byte(ad))
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// OpenString reverses SealString.
func (k *Keyring) OpenString(s, ad string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", ErrOpen
	}
	pt, err := k.Open(b, []byte(ad))
	if err != nil {
		return "", err
	}
	return string(pt), nil
}

// Reseal opens a value sealed under any key of the ring and seals it again
// under the current key, bound to the same ad. A value already under the
// current key is opened (so damage is found) and returned unchanged, with
// changed false: a rotation job can run any number of times.
func (k *Keyring) Reseal(sealed, ad []byte) (out []byte, changed bool, err error) {
	pt, err := k.Open(sealed, ad)
	if err != nil {
		return nil, false, err
	}
	if id, _ := KeyID(sealed); id == k.current {
		return sealed, false, nil
	}
	out, err = k.Seal(pt, ad)
	if err != nil {
		return nil, false, err
	}
	return out, true, nil
}

// ResealString is Reseal for values made by SealString.
func (k *Keyring) ResealString(s, ad string) (string, bool, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", false, ErrOpen
	}
	out, changed, err := k.Reseal(b, []byte(ad))
	if err != nil {
		return "", false, err
	}
	if !changed {
		return s, false, nil
	}
	return base64.StdEncoding.EncodeToString(out), true, nil
}

// KeyIDString is KeyID for values made by SealString.
func KeyIDString(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", ErrOpen
	}
	return KeyID(b)
}

// MaskKeyIDs shows only the key ids of a master key list, for printing
// the configuration: ids help operators, the keys stay hidden. Anything
// that is not a well-formed id (say, a key written before its id) shows as
// "?".
func MaskKeyIDs(v string) string {
	var ids []string
	for _, item := range strings.Split(v, ",") {
		id, _, ok := strings.Cut(strings.TrimSpace(item), ":")
		if !ok || ValidKeyID(id) != nil { // a key written before its id never passes
			id = "?"
		}
		ids = append(ids, id+":****")
	}
	return strings.Join(ids, ",")
}
