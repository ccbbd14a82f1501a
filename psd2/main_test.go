package psd2_test

import (
	"os"
	"testing"

	"github.com/bunqtpp/tpp/internal/testenv"
)

// TestMain prints one line saying what was skipped and why. Started with
// bankProcessEnv set, the test binary is instead the emulator for
// BenchmarkListAccountsProcess (see serveBankProcess).
func TestMain(m *testing.M) {
	if os.Getenv(bankProcessEnv) != "" {
		os.Exit(serveBankProcess())
	}
	testenv.Main(m)
}
