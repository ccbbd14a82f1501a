package redis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bunqtpp/tpp"
)

// DefaultStateTTL is how long an OAuth state stays valid.
const DefaultStateTTL = 10 * time.Minute

// ErrStateExists is returned by StateStore.Put when the state is already
// stored: states are random, so this means reuse or a broken generator.
var ErrStateExists = errors.New("redis: oauth state already exists")

// State is what the OAuth flow remembers between redirect and callback.
type State struct {
	ConsentID string `json:"consent_id"`
	// BrowserHash is the hash of the browser-binding cookie; the oauth
	// package compares it in constant time.
	BrowserHash string    `json:"browser_hash"`
	CreatedAt   time.Time `json:"created_at"`
}

// StateStore keeps OAuth states single-use and short-lived. Keys hold the
// SHA-256 of the state, so reading Redis does not reveal live states.
type StateStore struct {
	rdb   goredis.UniversalClient
	keys  Keys
	ttl   time.Duration
	clock tpp.Clock
}

// NewStateStore returns a store whose states expire after ttl
// (DefaultStateTTL if 0). clock stamps CreatedAt (tpp.SystemClock if nil).
func NewStateStore(rdb goredis.UniversalClient, keys Keys, ttl time.Duration, clock tpp.Clock) *StateStore {
	if ttl <= 0 {
		ttl = DefaultStateTTL
	}
	if clock == nil {
		clock = tpp.SystemClock{}
	}
	return &StateStore{rdb: rdb, keys: keys, ttl: ttl, clock: clock}
}

// TTL returns how long a state lives.
func (s *StateStore) TTL() time.Duration { return s.ttl }

func (s *StateStore) key(state string) string {
	sum := sha256.Sum256([]byte(state))
	return s.keys.Key("oauth", "state", hex.EncodeToString(sum[:]))
}

// Put stores st under state for the store's TTL. A zero CreatedAt is set
// from the clock.
func (s *StateStore) Put(ctx context.Context, state string, st State) error {
	if state == "" {
		return errors.New("redis: oauth state: empty state")
	}
	if st.CreatedAt.IsZero() {
		st.CreatedAt = s.clock.Now().UTC()
	}
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("redis: oauth state: %w", err)
	}
	ok, err := s.rdb.SetNX(ctx, s.key(state), b, s.ttl).Result()
	if err != nil {
		return fmt.Errorf("redis: store oauth state: %w", err)
	}
	if !ok {
		return ErrStateExists
	}
	return nil
}

// Take returns and deletes the payload of state in one step (GETDEL), so a
// state can be used once: a second Take, or a Take after expiry, gets
// ErrNotFound.
func (s *StateStore) Take(ctx context.Context, state string) (State, error) {
	if state == "" {
		return State{}, ErrNotFound
	}
	b, err := s.rdb.GetDel(ctx, s.key(state)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return State{}, ErrNotFound
	}
	if err != nil {
		return State{}, fmt.Errorf("redis: take oauth state: %w", err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return State{}, fmt.Errorf("redis: decode oauth state: %w", err)
	}
	return st, nil
}
