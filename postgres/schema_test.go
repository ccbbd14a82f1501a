package postgres

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bunqtpp/tpp/sqlite"
)

// The PostgreSQL schema mirrors SQLite's table by table and column by
// column: a SQLite migration without its mirror in postgres/migrations
// fails here (and 'tpp migrate' would refuse the column).
func TestSchemaMirrorsSQLite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := openTestDB(t, nil)
	lite, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "tpp.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	var tables []string
	if err := lite.SelectContext(ctx, &tables, `SELECT name FROM sqlite_master WHERE type = 'table'
		AND name NOT LIKE 'sqlite_%' ORDER BY name`); err != nil {
		t.Fatal(err)
	}
	var pgTables []string
	if err := pg.SelectContext(ctx, &pgTables, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() ORDER BY table_name`); err != nil {
		t.Fatal(err)
	}
	slices.Sort(tables) // in Go: the databases' collations differ
	slices.Sort(pgTables)
	if !slices.Equal(tables, pgTables) {
		t.Fatalf("tables: SQLite %v, PostgreSQL %v", tables, pgTables)
	}
	copied := map[string]bool{"schema_migrations": true}
	for _, c := range copyTables {
		copied[c.name] = true
	}
	for _, table := range tables {
		if !copied[table] {
			t.Errorf("table %s is not in copyTables: tpp migrate would leave it behind", table)
		}
		var liteCols, pgCols []string
		if err := lite.SelectContext(ctx, &liteCols, `SELECT name FROM pragma_table_info(?) ORDER BY name`, table); err != nil {
			t.Fatal(err)
		}
		if err := pg.SelectContext(ctx, &pgCols, `SELECT column_name FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = ? ORDER BY column_name`, table); err != nil {
			t.Fatal(err)
		}
		slices.Sort(liteCols)
		slices.Sort(pgCols)
		if !slices.Equal(liteCols, pgCols) {
			t.Errorf("%s columns: SQLite %v, PostgreSQL %v", table, liteCols, pgCols)
		}
	}
}
