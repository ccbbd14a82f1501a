package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/seal"
)

// AuditSecretsResealed is the audit action of a master-key rotation batch
// (Rekey): which values were re-sealed under which key.
const AuditSecretsResealed = "secrets.resealed"

// sealedColumn is one column of seal.Keyring values (Store.seal) and how
// its associated data is made from the row's primary key.
type sealedColumn struct {
	table, pk, column string
	ad                func(pk string) string
}

// sealedColumns lists every sealed value in the database. A new sealed
// column must be added here, or a master key could be dropped while still
// needed.
var sealedColumns = []sealedColumn{
	{"consents", "id", "access_token_sealed", tpp.AccessTokenAD},
	{"clients", "id", "webhook_secret_sealed", tpp.WebhookSecretAD},
	{"registration", "api_base_url", "context_sealed", contextAD},
	{"registration", "api_base_url", "client_secret_sealed", secretAD},
}

// RekeyCount is what Rekey found and did in one sealed column.
type RekeyCount struct {
	Table, Column string
	// ByKey counts the values by the key id they were sealed with when the
	// run found them (unknown ids included).
	ByKey map[string]int
	// Resealed values moved to the current key (with dryRun: would move).
	Resealed int
	// Current values were under the current key already.
	Current int
	// Unreadable values do not open with the keyring: sealed under a key it
	// lacks, or damaged. They are left as they are.
	Unreadable int
	// Changed values were written by someone else during the run; they
	// were sealed with that writer's current key and are left alone.
	Changed int
}

// Name is "table.column".
func (c RekeyCount) Name() string { return c.Table + "." + c.Column }

// KeyIDs lists ByKey's ids, sorted.
func (c RekeyCount) KeyIDs() []string {
	ids := make([]string, 0, len(c.ByKey))
	for id := range c.ByKey {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// RekeyBatch bounds the rows one write transaction re-seals, so the
// service's writers wait at most a few milliseconds for the lock.
const RekeyBatch = 200

// Rekey re-seals every sealed value in the database (consents' access
// tokens, clients' webhook secrets, the registration's context and OAuth
// client secret) under kr's current key, so the other keys can be dropped.
// It runs in batches, each a transaction with its audit record; a value is
// replaced only if it is still the one read (compare-and-set), so it is
// safe while the service runs. Run again, it finds nothing to do. With
// dryRun it only counts. Values that do not open are counted as Unreadable
// and left alone.
func Rekey(ctx context.Context, db *Store, kr *seal.Keyring, dryRun bool) ([]RekeyCount, error) {
	out := make([]RekeyCount, 0, len(sealedColumns))
	for _, col := range sealedColumns {
		n, err := rekeyColumn(ctx, db, kr, col, dryRun)
		if err != nil {
			return out, err
		}
		out = append(out, n)
	}
	return out, nil
}

type sealedRow struct {
	PK     string    `db:"pk"`
	Sealed sealedCol `db:"sealed"`
}

func rekeyColumn(ctx context.Context, db *Store, kr *seal.Keyring, col sealedColumn, dryRun bool) (RekeyCount, error) {
	n := RekeyCount{Table: col.table, Column: col.column, ByKey: map[string]int{}}
	// Identifiers come from sealedColumns only, never from input.
	sel := fmt.Sprintf(`SELECT %[2]s AS pk, %[3]s AS sealed FROM %[1]s
		WHERE %[2]s > ? AND length(%[3]s) > 0 ORDER BY %[2]s LIMIT ?`, col.table, col.pk, col.column)
	upd := fmt.Sprintf(`UPDATE %[1]s SET %[3]s = ? WHERE %[2]s = ? AND %[3]s = ?`, col.table, col.pk, col.column)
	after := ""
	for {
		var rows []sealedRow
		if err := db.SelectContext(ctx, &rows, sel, after, RekeyBatch); err != nil {
			return n, db.errorf("rekey %s: %w", n.Name(), err)
		}
		if len(rows) == 0 {
			return n, nil
		}
		after = rows[len(rows)-1].PK
		type change struct {
			pk       string
			old, new any
		}
		var changes []change
		for _, r := range rows {
			raw, err := db.dialect.DecodeSealed(r.Sealed.Stored)
			id := "?"
			if err == nil {
				if k, kerr := seal.KeyID(raw); kerr == nil {
					id = k
				}
			}
			n.ByKey[id]++
			var resealed []byte
			changed := false
			if err == nil {
				resealed, changed, err = kr.Reseal(raw, []byte(col.ad(r.PK)))
			}
			switch {
			case errors.Is(err, seal.ErrOpen):
				n.Unreadable++
			case err != nil:
				return n, db.errorf("rekey %s: %w", n.Name(), err)
			case changed:
				changes = append(changes, change{r.PK, db.dialect.EncodeSealed(raw), db.dialect.EncodeSealed(resealed)})
			default:
				n.Current++
			}
		}
		if dryRun || len(changes) == 0 {
			n.Resealed += len(changes)
			continue
		}
		done, lost := 0, 0
		err := db.Tx(ctx, func(tx *Tx) error {
			done, lost = 0, 0
			for _, c := range changes {
				res, err := tx.ExecContext(ctx, upd, c.new, c.pk, c.old)
				if err != nil {
					return db.errorf("rekey %s: %w", n.Name(), err)
				}
				if k, _ := res.RowsAffected(); k == 1 {
					done++
				} else {
					lost++
				}
			}
			if done == 0 {
				return nil
			}
			return insertAudit(ctx, tx, db.Now(), tpp.AuditRecord{
				Actor: tpp.ActorOperator, Action: AuditSecretsResealed,
				Detail: fmt.Sprintf("%s: %d values re-sealed under key %s", n.Name(), done, kr.CurrentKeyID()),
			})
		})
		if err != nil {
			return n, err
		}
		n.Resealed += done
		n.Changed += lost
	}
}

// String summarises counts for logs and errors.
func (c RekeyCount) String() string {
	var keys []string
	for _, id := range c.KeyIDs() {
		keys = append(keys, fmt.Sprintf("%s %d", id, c.ByKey[id]))
	}
	return fmt.Sprintf("%s: %d re-sealed, %d current, %d unreadable, %d changed meanwhile (found under: %s)",
		c.Name(), c.Resealed, c.Current, c.Unreadable, c.Changed, strings.Join(keys, ", "))
}
