package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// The database URL selects the store: --db-url (or TPP_DB_URL), or a
// postgres:// URL in --db; a plain path stays SQLite. A password in either
// is masked when the configuration is printed.
func TestConfigSelectsTheStore(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		args       []string
		env        map[string]string
		kind, want string
	}{
		{"default", nil, nil, "sqlite", "data/tpp.db"},
		{"path", []string{"--db", "/var/lib/tpp/tpp.db"}, nil, "sqlite", "/var/lib/tpp/tpp.db"},
		{"url in --db", []string{"--db", "postgres://tpp:pw@db:5432/tpp"}, nil, "postgres", "postgres://tpp:pw@db:5432/tpp"},
		{"TPP_DB_URL wins over the path", nil, map[string]string{"TPP_DB_URL": "postgresql://db/tpp", "TPP_DB_PATH": "x.db"}, "postgres", "postgresql://db/tpp"},
	}
	for _, tc := range cases {
		cfg, err := parseTestConfig(t, tc.env, tc.args...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if kind, target := cfg.database(); kind != tc.kind || target != tc.want {
			t.Errorf("%s: database() = %s %s, want %s %s", tc.name, kind, target, tc.kind, tc.want)
		}
	}
	cfg, err := parseTestConfig(t, nil, "--db-url", "postgres://tpp:s3cret-pw@db/tpp", "--db-max-conns", "7",
		"--db-max-idle-conns", "9", "--db-conn-lifetime", "5m")
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.pool(); p.MaxOpen != 7 || p.MaxIdle != 7 || p.MaxLifetime != 5*time.Minute {
		t.Errorf("pool = %+v, want 7 open, idle capped at 7, 5m", p)
	}
	var out bytes.Buffer
	cfg.print(&out)
	if strings.Contains(out.String(), "s3cret-pw") || !strings.Contains(out.String(), "postgres://tpp:") {
		t.Errorf("printed configuration:\n%s", out.String())
	}
	for _, bad := range [][]string{{"--db-url", "mysql://db/tpp"}, {"--db-max-conns", "0"}, {"--db-max-conns", "x"}} {
		if _, err := parseTestConfig(t, nil, bad...); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
