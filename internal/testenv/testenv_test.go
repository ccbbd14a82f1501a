package testenv

import (
	"strings"
	"testing"
)

func TestSummaryNamesEachReasonOnce(t *testing.T) {
	if got := Summary("./x"); got != "" {
		t.Fatalf("summary before any skip = %q, want empty", got)
	}
	t.Run("a", func(t *testing.T) {
		t.Setenv("CI", "")
		t.Setenv("TPP_TEST_ALL", "")
		Missing(t, "redis-server not found")
	})
	t.Run("b", func(t *testing.T) {
		t.Setenv("CI", "")
		t.Setenv("TPP_TEST_ALL", "")
		Missing(t, "redis-server not found")
	})
	t.Run("c", func(t *testing.T) { t.Setenv("CI", ""); t.Setenv("TPP_TEST_ALL", ""); Heavy(t) })
	got := Summary("./x")
	for _, want := range []string{"SKIP ./x: 3 tests skipped", "redis-server not found (TestSummaryNamesEachReasonOnce/a and 1 more)", "whole-system test"} {
		if !strings.Contains(got, want) {
			t.Errorf("summary %q lacks %q", got, want)
		}
	}
	if strings.Count(got, "redis-server not found") != 1 {
		t.Errorf("summary %q repeats a reason", got)
	}
}

func TestBunqSpecFileSaysWhereToPutTheFiles(t *testing.T) {
	t.Setenv("CI", "")
	t.Setenv("TPP_TEST_ALL", "")
	t.Setenv(BunqSpecEnv, t.TempDir())
	var msg string
	t.Run("missing", func(t *testing.T) {
		defer func() { msg = strings.Join(skipReasonsFor(t.Name()), " ") }()
		BunqSpecFile(t, "openapi.json")
		t.Error("BunqSpecFile returned for a missing file")
	})
	if !strings.Contains(msg, BunqSpecEnv) || !strings.Contains(msg, "openapi.json") {
		t.Errorf("skip reason %q does not say where to put the file", msg)
	}
}

func skipReasonsFor(test string) []string {
	skips.Lock()
	defer skips.Unlock()
	var out []string
	for r, tests := range skips.byReason {
		for _, n := range tests {
			if n == test {
				out = append(out, r)
			}
		}
	}
	return out
}
