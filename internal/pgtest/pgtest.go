// Package pgtest gives each test its own PostgreSQL schema in the database
// named by TPP_TEST_POSTGRES_URL, so tests against one server run in
// parallel. Without the variable a test skips (fails under CI=true or
// TPP_TEST_ALL=1, see internal/testenv); scripts/test-all always sets it.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"net/url"
	"os"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver

	"github.com/bunqtpp/tpp/internal/testenv"
)

// EnvURL names the variable holding the test server's URL.
const EnvURL = "TPP_TEST_POSTGRES_URL"

// URL creates a fresh schema for t and returns a database URL whose
// search_path is that schema; the schema is dropped when t ends.
func URL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		testenv.Missing(t, "%s is not set (scripts/test-all sets it)", EnvURL)
	}
	schema := "t_" + rand.Text()[:16] // base32: letters and digits only
	schema = strings.ToLower(schema)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		admin.Close()
		t.Fatalf("pgtest: create schema at %s: %v", EnvURL, err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		if _, err := admin.ExecContext(context.WithoutCancel(ctx), `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("pgtest: drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("pgtest: %s: %v", EnvURL, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Require skips t (or fails it in strict mode) when no test server is set,
// so a suite skips once instead of case by case.
func Require(t testing.TB) {
	t.Helper()
	if os.Getenv(EnvURL) == "" {
		testenv.Missing(t, "%s is not set (scripts/test-all sets it)", EnvURL)
	}
}
