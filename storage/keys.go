package storage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/bunqtpp/tpp/postgres"
	"github.com/bunqtpp/tpp/seal"
	"github.com/bunqtpp/tpp/sqlite"
)

// OpenKeyring parses the master keys of --master-key / TPP_MASTER_KEY. The
// error names the setting but never echoes its value.
func OpenKeyring(masterKey string) (*seal.Keyring, error) {
	keys, err := seal.ParseKeys(masterKey)
	if err != nil {
		return nil, fmt.Errorf("setting --master-key ($TPP_MASTER_KEY): %w", err)
	}
	kr, err := seal.NewKeyring(keys...)
	if err != nil {
		return nil, fmt.Errorf("setting --master-key ($TPP_MASTER_KEY): %w", err)
	}
	return kr, nil
}

// OpenKeyringFor parses --master-key for a command on the database at
// dbPath, pointing at the demo's key file when the setting is empty.
func OpenKeyringFor(masterKey, dbPath string) (*seal.Keyring, error) {
	kr, err := OpenKeyring(masterKey)
	if err != nil {
		return nil, fmt.Errorf("%w%s", err, demoKeyHint(masterKey, dbPath))
	}
	return kr, nil
}

// demoKeyHint says where the demo keeps its development master key when
// one lies beside the database, for commands run without --master-key.
func demoKeyHint(masterKey, dbPath string) string {
	if strings.TrimSpace(masterKey) != "" {
		return ""
	}
	p := filepath.Join(filepath.Dir(dbPath), "master.key")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return fmt.Sprintf("; the demo keeps its development key in %s: add --master-key \"$(cat %s)\"", p, p)
}

// Rekey re-seals the store's secrets under kr's current key.
func (s *Stores) Rekey(ctx context.Context, kr *seal.Keyring, dryRun bool) ([]sqlite.RekeyCount, error) {
	if s.pg != nil {
		counts, err := postgres.Rekey(ctx, s.pg, kr, dryRun)
		out := make([]sqlite.RekeyCount, len(counts))
		for i, c := range counts {
			out[i] = sqlite.RekeyCount(c)
		}
		return out, err
	}
	return sqlite.Rekey(ctx, s.sqlite, kr, dryRun)
}

// CheckKeyOpensSecrets refuses a keyring that does not open the secrets
// already sealed in the database at dbPath: a client created under the
// wrong key would have a webhook secret the service cannot read.
func (s *Stores) CheckKeyOpensSecrets(ctx context.Context, kr *seal.Keyring, dbPath string) error {
	counts, err := s.Rekey(ctx, kr, true)
	if err != nil {
		return err
	}
	unreadable, ids := 0, map[string]bool{}
	for _, c := range counts {
		unreadable += c.Unreadable
		for id := range c.ByKey {
			ids[id] = true
		}
	}
	if unreadable == 0 {
		return nil
	}
	var list []string
	for id := range ids {
		list = append(list, id)
	}
	sort.Strings(list)
	return fmt.Errorf("setting --master-key ($TPP_MASTER_KEY) does not open %d secret(s) already in %s (sealed under key id(s) %s): use the master key the service uses%s",
		unreadable, dbPath, strings.Join(list, ", "), demoKeyHint("", dbPath))
}
