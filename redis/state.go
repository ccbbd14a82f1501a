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
	return s.keys.Key("oauth", "state", hashState(state))
}

// MaxStatesPerConsent is how many live states one consent holds at most.
// Each press of Continue makes one; a further one drops the oldest (its
// callback then finds the state gone), so a loop of Continue posts cannot
// fill Redis, while a user with a few tabs open still finishes in the
// newest.
const MaxStatesPerConsent = 5

// trimStatesScript adds a state hash (ARGV[1]) to the consent's list of
// states (KEYS[1]), keeps the list at ARGV[2] entries and returns the state
// hashes it dropped; the caller deletes their keys. One key per script, so
// it runs on Redis Cluster too.
var trimStatesScript = goredis.NewScript(`
redis.call('LPUSH', KEYS[1], ARGV[1])
local dropped = redis.call('LRANGE', KEYS[1], tonumber(ARGV[2]), -1)
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return dropped
`)

// takeStateScript deletes and returns the state (KEYS[1]) only when its
// browser hash is ARGV[1]: {0} unknown, {1} another browser's, {2, payload}.
var takeStateScript = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return {0} end
local st = cjson.decode(v)
if st['browser_hash'] ~= ARGV[1] then return {1} end
redis.call('DEL', KEYS[1])
return {2, v}
`)

func hashState(state string) string {
	sum := sha256.Sum256([]byte(state))
	return hex.EncodeToString(sum[:])
}

func (s *StateStore) consentKey(consentID string) string {
	return s.keys.Key("oauth", "consent-states", consentID)
}

// Put stores st under state for the store's TTL. A zero CreatedAt is set
// from the clock. The consent keeps at most MaxStatesPerConsent live
// states: the oldest beyond that is deleted.
func (s *StateStore) Put(ctx context.Context, state string, st tpp.OAuthState) error {
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
	dropped, err := trimStatesScript.Run(ctx, s.rdb, []string{s.consentKey(st.ConsentID)},
		hashState(state), MaxStatesPerConsent, s.ttl.Milliseconds()).StringSlice()
	if err != nil {
		return fmt.Errorf("redis: count oauth states of consent: %w", err)
	}
	for _, h := range dropped {
		if err := s.rdb.Del(ctx, s.keys.Key("oauth", "state", h)).Err(); err != nil {
			return fmt.Errorf("redis: drop oldest oauth state: %w", err)
		}
	}
	return nil
}

// Take returns and deletes the payload of state in one step, but only for
// the browser whose cookie hashes to browserHash: a state can be used once,
// and only by the browser that started the flow. A second Take, or a Take
// after expiry, gets tpp.ErrNotFound; a Take from another browser gets
// tpp.ErrForeignBrowser and leaves the state for the right one.
func (s *StateStore) Take(ctx context.Context, state, browserHash string) (tpp.OAuthState, error) {
	if state == "" {
		return tpp.OAuthState{}, tpp.ErrNotFound
	}
	if browserHash == "" {
		browserHash = "\x00" // matches no stored hash, not even an empty one
	}
	res, err := takeStateScript.Run(ctx, s.rdb, []string{s.key(state)}, browserHash).Slice()
	if err != nil {
		return tpp.OAuthState{}, fmt.Errorf("redis: take oauth state: %w", err)
	}
	if len(res) == 0 {
		return tpp.OAuthState{}, errors.New("redis: take oauth state: empty answer")
	}
	switch code, _ := res[0].(int64); {
	case code == 0:
		return tpp.OAuthState{}, tpp.ErrNotFound
	case code == 1:
		return tpp.OAuthState{}, tpp.ErrForeignBrowser
	case len(res) < 2:
		return tpp.OAuthState{}, errors.New("redis: take oauth state: answer without payload")
	}
	raw, _ := res[1].(string)
	var st tpp.OAuthState
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		return tpp.OAuthState{}, fmt.Errorf("redis: decode oauth state: %w", err)
	}
	// The consent's list only bounds live states; a stale entry there is
	// harmless (it is the first to be dropped), so this may fail quietly.
	_ = s.rdb.LRem(ctx, s.consentKey(st.ConsentID), 0, hashState(state)).Err()
	return st, nil
}

// Park keeps blob for state while that state lives (for the flow it
// belongs to; see oauth). It reports false when the state is gone.
func (s *StateStore) Park(ctx context.Context, state string, blob []byte) (bool, error) {
	ttl, err := s.rdb.PTTL(ctx, s.key(state)).Result()
	if err != nil {
		return false, fmt.Errorf("redis: park for oauth state: %w", err)
	}
	if ttl <= 0 {
		return false, nil // gone (or, impossibly, without expiry)
	}
	// Should the state be taken meanwhile, the blob is never read and
	// expires with the state's time.
	if err := s.rdb.Set(ctx, s.parkedKey(state), blob, ttl).Err(); err != nil {
		return false, fmt.Errorf("redis: park for oauth state: %w", err)
	}
	return true, nil
}

// TakeParked returns and deletes what was parked for state; tpp.ErrNotFound
// when nothing was.
func (s *StateStore) TakeParked(ctx context.Context, state string) ([]byte, error) {
	b, err := s.rdb.GetDel(ctx, s.parkedKey(state)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, tpp.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("redis: take parked oauth answer: %w", err)
	}
	return b, nil
}

func (s *StateStore) parkedKey(state string) string {
	return s.keys.Key("oauth", "parked", hashState(state))
}
