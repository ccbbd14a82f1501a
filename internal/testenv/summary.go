package testenv

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// skips collects what this test binary skipped and why, for Main's summary.
// It is process-wide by nature: one test binary, one summary.
var skips = struct {
	sync.Mutex
	byReason map[string][]string // reason → test names
}{byReason: map[string][]string{}}

func record(t testing.TB, format string, args ...any) {
	reason := fmt.Sprintf(format, args...)
	skips.Lock()
	defer skips.Unlock()
	skips.byReason[reason] = append(skips.byReason[reason], t.Name())
}

// Main runs the package's tests, then prints one line saying what was
// skipped and why, so plain 'go test ./...' tells what it did not cover.
// Use it as the package's TestMain: func TestMain(m *testing.M) { testenv.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	if line := Summary(packageName()); line != "" {
		fmt.Fprintln(summaryOut(), line)
	}
	os.Exit(code)
}

// Summary returns the one-line summary of the skips recorded so far, or ""
// when nothing was skipped.
func Summary(pkg string) string {
	skips.Lock()
	defer skips.Unlock()
	if len(skips.byReason) == 0 {
		return ""
	}
	reasons := make([]string, 0, len(skips.byReason))
	total := 0
	for r, tests := range skips.byReason {
		total += len(tests)
		sort.Strings(tests)
		names := tests[0]
		if len(tests) > 1 {
			names = fmt.Sprintf("%s and %d more", tests[0], len(tests)-1)
		}
		reasons = append(reasons, fmt.Sprintf("%s (%s)", r, names))
	}
	sort.Strings(reasons)
	plural := "s"
	if total == 1 {
		plural = ""
	}
	return fmt.Sprintf("SKIP %s: %d test%s skipped: %s", pkg, total, plural, strings.Join(reasons, "; "))
}

// summaryOut is where the summary line goes. 'go test ./...' shows nothing
// a passing package prints unless -v is set, so without -v the line goes to
// the go command's own standard error (Linux, when go started this binary);
// anywhere else to this binary's standard error.
func summaryOut() io.Writer {
	if testing.Verbose() {
		return os.Stderr
	}
	ppid := os.Getppid()
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", ppid))
	if err != nil || strings.TrimSpace(string(comm)) != "go" {
		return os.Stderr
	}
	target := fmt.Sprintf("/proc/%d/fd/2", ppid)
	// Reopening a regular file gives a new file offset, and the go
	// command's next write would overwrite the line, unless it appends.
	if st, err := os.Stat(target); err != nil || (st.Mode().IsRegular() && !appends(ppid, 2)) {
		return os.Stderr
	}
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return os.Stderr
	}
	return f
}

// appends reports whether process pid opened its file descriptor fd with
// O_APPEND (from /proc/<pid>/fdinfo/<fd>, whose flags are octal).
func appends(pid, fd int) bool {
	info, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%d", pid, fd))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(info), "\n") {
		if v, ok := strings.CutPrefix(line, "flags:"); ok {
			flags, err := strconv.ParseInt(strings.TrimSpace(v), 8, 64)
			return err == nil && flags&int64(os.O_APPEND) != 0
		}
	}
	return false
}

// packageName is the test's directory relative to the repository root, as
// 'go test' names packages on the command line (./psd2).
func packageName() string {
	wd, err := os.Getwd()
	if err != nil {
		return "?"
	}
	rel, err := filepath.Rel(RepoRoot(), wd)
	if err != nil {
		return wd
	}
	return "./" + filepath.ToSlash(rel)
}
