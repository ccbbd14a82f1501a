package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bunqtpp/tpp"
)

// ContextStore keeps each consent's bunq context (installation, device and
// session state) sealed in Redis under "<prefix>ctx:<consent id>". Only
// ciphertext reaches Redis; the associated data "consent:<id>:context" makes
// a value copied to another consent's key fail to open.
type ContextStore struct {
	rdb    goredis.UniversalClient
	keys   Keys
	sealer Sealer
	ttl    time.Duration
}

// NewContextStore returns a store sealing with sealer. ttl > 0 makes each
// value expire that long after its last Put (bunq sessions expire anyway);
// 0 keeps values until deleted.
func NewContextStore(rdb goredis.UniversalClient, keys Keys, sealer Sealer, ttl time.Duration) (*ContextStore, error) {
	if rdb == nil {
		return nil, errors.New("redis: NewContextStore needs a client")
	}
	if sealer == nil {
		// Contexts hold session tokens and private keys: never store them in clear.
		return nil, errors.New("redis: NewContextStore needs a sealer")
	}
	if ttl < 0 {
		return nil, fmt.Errorf("redis: NewContextStore: negative ttl %s", ttl)
	}
	return &ContextStore{rdb: rdb, keys: keys, sealer: sealer, ttl: ttl}, nil
}

func contextAD(consentID string) []byte { return []byte("consent:" + consentID + ":context") }

// Put seals blob for consentID and stores it, replacing any previous value.
func (s *ContextStore) Put(ctx context.Context, consentID string, blob []byte) error {
	if consentID == "" {
		return errors.New("redis: context store: empty consent id")
	}
	ct, err := s.sealer.Seal(blob, contextAD(consentID))
	if err != nil {
		return fmt.Errorf("redis: seal context for consent %s: %w", consentID, err)
	}
	if err := s.rdb.Set(ctx, s.keys.Key("ctx", consentID), ct, s.ttl).Err(); err != nil {
		return fmt.Errorf("redis: store context for consent %s: %w", consentID, err)
	}
	return nil
}

// Get returns the opened context of consentID, tpp.ErrNotFound when there is
// none, or tpp.ErrUnreadable when the stored value does not open.
func (s *ContextStore) Get(ctx context.Context, consentID string) ([]byte, error) {
	if consentID == "" {
		return nil, errors.New("redis: context store: empty consent id")
	}
	ct, err := s.rdb.Get(ctx, s.keys.Key("ctx", consentID)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, tpp.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("redis: load context for consent %s: %w", consentID, err)
	}
	pt, err := s.sealer.Open(ct, contextAD(consentID))
	if err != nil {
		return nil, fmt.Errorf("%w: context for consent %s: %w", tpp.ErrUnreadable, consentID, err)
	}
	return pt, nil
}

// Delete removes the context of consentID (on revocation or when bunq
// rejects the session). Deleting a missing context is not an error.
func (s *ContextStore) Delete(ctx context.Context, consentID string) error {
	if consentID == "" {
		return errors.New("redis: context store: empty consent id")
	}
	if err := s.rdb.Del(ctx, s.keys.Key("ctx", consentID)).Err(); err != nil {
		return fmt.Errorf("redis: delete context for consent %s: %w", consentID, err)
	}
	return nil
}
