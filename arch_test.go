package tpp_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPSD2AndSandboxStayApart guards design.md §3: the bunq client and the
// emulated bank are written separately from the reference and never import
// each other, so a misreading in one is caught by the other. The emulator
// does not import the root package either.
func TestPSD2AndSandboxStayApart(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go tool not in PATH")
	}
	const mod = "github.com/bunqtpp/tpp/"
	forbidden := map[string][]string{
		"psd2":    {mod + "sandbox", mod + "internal/banktest"},
		"sandbox": {mod + "psd2"},
	}
	// The emulator also keeps away from the root package: its amounts,
	// IBANs and wire formats are bunq's, written on its own (issue 12).
	rootOut, err := exec.Command("go", "list", "-deps", "./sandbox").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps ./sandbox: %v\n%s", err, rootOut)
	}
	for _, dep := range strings.Fields(string(rootOut)) {
		if dep == strings.TrimSuffix(mod, "/") {
			t.Errorf("sandbox imports the root package %s; it must format amounts, IBANs and wire values itself", dep)
		}
	}
	for pkg, bad := range forbidden {
		out, err := exec.Command("go", "list", "-deps", "./"+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps ./%s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, b := range bad {
				if dep == b || strings.HasPrefix(dep, b+"/") {
					t.Errorf("%s imports %s (directly or not); they must stay independent", pkg, dep)
				}
			}
		}
	}
}
