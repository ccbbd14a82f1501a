// Package testenv decides what a test does when something it needs from
// outside the repository is missing (redis-server, chromium, newman, bunq's
// published API files): in the fast inner loop (plain 'go test') it skips
// with a clear message; under the full test command (CI=true or
// TPP_TEST_ALL=1) it fails, because nothing may skip there. It also gates
// the heavy whole-system tests, which run only under the full command.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Strict reports whether missing dependencies must fail tests.
func Strict() bool {
	return os.Getenv("CI") == "true" || os.Getenv("TPP_TEST_ALL") == "1"
}

// LookPath returns the path of the first of names found in PATH. When none
// is found it skips t, or fails it in strict mode.
func LookPath(t testing.TB, why string, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	Missing(t, "%s not found in PATH (%s); run scripts/test-all to install it", names[0], why)
	return ""
}

// Missing skips t with the message, or fails it in strict mode.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if Strict() {
		t.Fatalf("required test dependency missing: "+format, args...)
	}
	record(t, format, args...)
	t.Skipf("skipping: "+format, args...)
}

// Heavy marks t as a whole-system test (real processes, many seconds): it
// runs under the full test command (scripts/test-all, CI=true or
// TPP_TEST_ALL=1) and is skipped in the fast inner loop, plain 'go test'.
// -short skips it always.
func Heavy(t testing.TB) {
	t.Helper()
	if testing.Short() || !Strict() {
		record(t, "whole-system test; runs under scripts/test-all or TPP_TEST_ALL=1")
		t.Skip("skipping whole-system test in the fast loop; run it with TPP_TEST_ALL=1 go test (scripts/test-all does)")
	}
}

// BunqSpecEnv names the setting for the directory holding bunq's published
// API files: openapi.json and postman/ (bunq's OpenAPI document and Postman
// collection). They are not part of this repository.
const BunqSpecEnv = "TPP_BUNQ_SPEC_DIR"

// BunqSpecFile returns the path of name inside the bunq spec directory
// ($TPP_BUNQ_SPEC_DIR, default ../shared/bunq beside the repository). When
// the file is missing it skips t with where to put it, or fails in strict
// mode.
func BunqSpecFile(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv(BunqSpecEnv)
	if dir == "" {
		dir = filepath.Join(RepoRoot(), "..", "shared", "bunq")
	}
	path := filepath.Join(dir, filepath.FromSlash(name))
	if _, err := os.Stat(path); err != nil {
		abs, _ := filepath.Abs(path)
		Missing(t, "bunq's %s not found at %s; set %s to the folder with bunq's openapi.json and postman/ (default ../shared/bunq beside the repository)", name, abs, BunqSpecEnv)
	}
	return path
}

// RepoRoot walks up from the working directory to the folder with go.mod
// (the working directory itself when there is none).
func RepoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return "."
	}
	for d := dir; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		parent := filepath.Dir(d)
		if parent == d {
			return dir
		}
		d = parent
	}
}
