package consent_test

import (
	"testing"

	"github.com/bunqtpp/tpp/internal/testenv"
)

// TestMain prints one line saying what was skipped and why.
func TestMain(m *testing.M) { testenv.Main(m) }
