//go:build !unix

package loadtest

import "time"

// ProcessCPU reports no CPU time on platforms without getrusage.
func ProcessCPU() (time.Duration, bool) { return 0, false }
