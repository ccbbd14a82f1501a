package postgres

import (
	"context"
	"encoding/base64"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// copyTable is one table CopyFrom copies, in an order that satisfies the
// foreign keys.
type copyTable struct {
	name       string
	pk         []string
	appendOnly bool // rows never change: a re-run skips rows it has
}

var copyTables = []copyTable{
	{name: "clients", pk: []string{"id"}},
	{name: "consents", pk: []string{"id"}},
	{name: "payments", pk: []string{"id"}},
	{name: "payment_status_history", pk: []string{"payment_id", "seq"}, appendOnly: true},
	{name: "idempotency_records", pk: []string{"client_id", "key"}},
	{name: "audit_log", pk: []string{"seq"}, appendOnly: true},
	{name: "webhook_events", pk: []string{"id"}},
	{name: "webhook_deliveries", pk: []string{"event_id"}},
	{name: "registration", pk: []string{"api_base_url"}},
	{name: "consent_closes", pk: []string{"consent_id"}},
}

// sqliteTimeLayout is how package sqlite stores times.
const sqliteTimeLayout = "2006-01-02T15:04:05.000000Z"

// copyBatch is how many rows one transaction copies.
const copyBatch = 500

// sampleRows is how many rows of each table (first and last by key) the
// verification compares value by value.
const sampleRows = 20

// CopyCount is what CopyFrom did with one table.
type CopyCount struct {
	Table  string
	Source int // rows in the SQLite table
	Target int // rows in the PostgreSQL table afterwards
	Copied int // rows written (inserted or brought up to date)
}

// CopyFrom copies every row of a SQLite database of package sqlite (src,
// at the same schema version) into db: times become timestamptz, sealed
// values are stored as they are (the same sealed bytes, no longer base64),
// the rest unchanged. Rows already present are brought up to date, except
// in the append-only tables, so a re-run (say, after more traffic on the
// old store) is safe and converges. It then verifies that every table has
// at least the source's row count and that a sample of rows matches value
// by value. A column of src that db lacks is an error: its migration has
// no PostgreSQL mirror yet.
func CopyFrom(ctx context.Context, src *sqlx.DB, db *DB) ([]CopyCount, error) {
	var out []CopyCount
	for _, t := range copyTables {
		n, err := copyOne(ctx, src, db, t)
		if err != nil {
			return out, fmt.Errorf("postgres: copy %s: %w", t.name, err)
		}
		out = append(out, n)
	}
	// audit_log.seq is an identity: new rows must continue after the copied ones.
	if _, err := db.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('audit_log', 'seq'),
		GREATEST((SELECT COALESCE(MAX(seq), 0) FROM audit_log), 1))`); err != nil {
		return out, fmt.Errorf("postgres: copy: audit sequence: %w", err)
	}
	for i, t := range copyTables {
		if err := verifyTable(ctx, src, db, t, &out[i]); err != nil {
			return out, fmt.Errorf("postgres: verify %s: %w", t.name, err)
		}
	}
	return out, nil
}

// columnTypes returns the PostgreSQL data type of each column of table.
func columnTypes(ctx context.Context, db *DB, table string) (map[string]string, error) {
	var rows []struct {
		Name string `db:"column_name"`
		Type string `db:"data_type"`
	}
	if err := db.SelectContext(ctx, &rows, `SELECT column_name, data_type FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = ?`, table); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		out[r.Name] = r.Type
	}
	return out, nil
}

// convert turns a SQLite value of column col into what the PostgreSQL
// column of type typ takes.
func convert(col, typ string, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	if b, ok := v.([]byte); ok && typ != "bytea" {
		v = string(b)
	}
	switch typ {
	case "timestamp with time zone":
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("column %s: time is %T", col, v)
		}
		if s == "" {
			// SQLite's '' sorts before every time (payments.next_check_at:
			// due at once); PostgreSQL's equivalent is -infinity.
			return "-infinity", nil
		}
		t, err := time.Parse(sqliteTimeLayout, s)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", col, err)
		}
		return t, nil
	case "bytea":
		if s, ok := v.(string); ok {
			if !strings.HasSuffix(col, "_sealed") {
				return []byte(s), nil
			}
			if s == "" {
				return nil, nil
			}
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, fmt.Errorf("column %s: sealed value is not base64", col)
			}
			return b, nil
		}
	}
	return v, nil
}

// sourceRows reads rows of t from src with keys after `after` (nil: from
// the start), in key order.
func sourceRows(ctx context.Context, src *sqlx.DB, t copyTable, where string, args []any, order string, limit int) ([]map[string]any, error) {
	q := `SELECT * FROM ` + t.name
	if where != "" {
		q += ` WHERE ` + where
	}
	q += ` ORDER BY ` + order + fmt.Sprintf(` LIMIT %d`, limit)
	rows, err := src.QueryxContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []map[string]any
	for rows.Next() {
		m := map[string]any{}
		if err := rows.MapScan(m); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

func copyOne(ctx context.Context, src *sqlx.DB, db *DB, t copyTable) (CopyCount, error) {
	n := CopyCount{Table: t.name}
	types, err := columnTypes(ctx, db, t.name)
	if err != nil {
		return n, err
	}
	keyTuple := "(" + strings.Join(t.pk, ", ") + ")"
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(t.pk)), ", ")
	var after []any
	for {
		where := ""
		if after != nil {
			where = keyTuple + " > (" + marks + ")"
		}
		rows, err := sourceRows(ctx, src, t, where, after, strings.Join(t.pk, ", "), copyBatch)
		if err != nil {
			return n, err
		}
		if len(rows) == 0 {
			break
		}
		if err := db.Tx(ctx, func(tx *Tx) error { return upsertRows(ctx, tx, t, types, rows) }); err != nil {
			return n, err
		}
		n.Copied += len(rows)
		last := rows[len(rows)-1]
		after = after[:0]
		for _, k := range t.pk {
			after = append(after, last[k])
		}
	}
	return n, nil
}

func upsertRows(ctx context.Context, tx *Tx, t copyTable, types map[string]string, rows []map[string]any) error {
	for _, row := range rows {
		cols := make([]string, 0, len(row))
		for c := range row {
			if _, ok := types[c]; !ok {
				return fmt.Errorf("column %s is not in PostgreSQL: its migration needs a mirror in postgres/migrations", c)
			}
			cols = append(cols, c)
		}
		args := make([]any, len(cols))
		var set []string
		for i, c := range cols {
			v, err := convert(c, types[c], row[c])
			if err != nil {
				return err
			}
			args[i] = v
			set = append(set, c+" = excluded."+c)
		}
		conflict := " ON CONFLICT (" + strings.Join(t.pk, ", ") + ") DO "
		if t.appendOnly {
			conflict += "NOTHING"
		} else {
			conflict += "UPDATE SET " + strings.Join(set, ", ")
		}
		q := `INSERT INTO ` + t.name + ` (` + strings.Join(cols, ", ") + `) VALUES (` +
			strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + `)` + conflict
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return err
		}
	}
	return nil
}

// verifyTable checks the target has every source row (by count) and that
// the first and last rows by key match value by value.
func verifyTable(ctx context.Context, src *sqlx.DB, db *DB, t copyTable, n *CopyCount) error {
	if err := src.GetContext(ctx, &n.Source, `SELECT COUNT(*) FROM `+t.name); err != nil {
		return err
	}
	if err := db.GetContext(ctx, &n.Target, `SELECT COUNT(*) FROM `+t.name); err != nil {
		return err
	}
	if n.Target < n.Source {
		return fmt.Errorf("%d rows in SQLite, %d in PostgreSQL", n.Source, n.Target)
	}
	types, err := columnTypes(ctx, db, t.name)
	if err != nil {
		return err
	}
	asc := strings.Join(t.pk, ", ")
	desc := strings.Join(t.pk, " DESC, ") + " DESC"
	var sample []map[string]any
	for _, order := range []string{asc, desc} {
		rows, err := sourceRows(ctx, src, t, "", nil, order, sampleRows/2)
		if err != nil {
			return err
		}
		sample = append(sample, rows...)
	}
	for _, row := range sample {
		if err := verifyRow(ctx, db, t, types, row); err != nil {
			return err
		}
	}
	return nil
}

func verifyRow(ctx context.Context, db *DB, t copyTable, types map[string]string, row map[string]any) error {
	var conds []string
	var args []any
	for _, k := range t.pk {
		conds = append(conds, k+" = ?")
		args = append(args, row[k])
	}
	got := map[string]any{}
	r := db.QueryRowxContext(ctx, `SELECT * FROM `+t.name+` WHERE `+strings.Join(conds, " AND "), args...)
	if err := r.MapScan(got); err != nil {
		return fmt.Errorf("row %v: %w", args, err)
	}
	for c, v := range row {
		want, err := convert(c, types[c], v)
		if err != nil {
			return err
		}
		if !sameValue(want, got[c]) {
			return fmt.Errorf("row %v column %s differs", args, c)
		}
	}
	return nil
}

// sameValue compares a converted SQLite value with what PostgreSQL returned.
func sameValue(want, got any) bool {
	switch w := want.(type) {
	case time.Time:
		g, ok := got.(time.Time)
		return ok && g.Equal(w)
	case []byte:
		g, ok := got.([]byte)
		return ok && string(g) == string(w)
	case string:
		switch g := got.(type) {
		case string:
			return g == w || jsonEqual(w, g)
		case []byte:
			return string(g) == w
		}
		return false
	case int64:
		switch g := got.(type) {
		case int64:
			return g == w
		case int32:
			return int64(g) == w
		}
		return false
	}
	return reflect.DeepEqual(want, got)
}

// jsonEqual tolerates jsonb's normalised spacing: ["a","b"] is ["a", "b"].
func jsonEqual(a, b string) bool {
	strip := func(s string) string { return strings.NewReplacer(" ", "", "\n", "").Replace(s) }
	return strings.HasPrefix(strings.TrimSpace(a), "[") && strip(a) == strip(b)
}
