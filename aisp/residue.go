package aisp

import (
	"context"

	"github.com/bunqtpp/tpp/redis"
)

// Residue deletes what the AISP keeps of a consent in Redis, its cached
// answers and its unattended-access window, when the consent's bank
// context goes (bankctx.Residue).
type Residue struct {
	Cache  *redis.Cache
	Access *redis.AccessWindow
}

// PurgeCached deletes the consent's cached answers.
func (r Residue) PurgeCached(ctx context.Context, consentID string) error {
	return r.Cache.PurgeGroup(ctx, CacheGroup(consentID))
}

// PurgeAccess resets the consent's unattended-access window.
func (r Residue) PurgeAccess(ctx context.Context, consentID string) error {
	return r.Access.Reset(ctx, consentID)
}
