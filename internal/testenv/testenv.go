// Package testenv decides what a test does when an outside program it needs
// (redis-server, chromium, newman) is missing: in the fast inner loop
// (plain 'go test') it skips with a clear message; under the full test
// command (CI=true or TPP_TEST_ALL=1) it fails, because nothing may skip there.
package testenv

import (
	"os"
	"os/exec"
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
	t.Skipf("skipping: "+format, args...)
}
