package sandbox_test

import (
	"testing"
	"time"

	"github.com/bunqtpp/tpp/internal/banktest"
)

// BenchmarkSignedListAccounts measures a signed list-monetary-account call
// against the in-process emulator over real HTTP, including the server's
// response signature and the client's verification of it.
func BenchmarkSignedListAccounts(b *testing.B) {
	env := banktest.Start(b)
	u := seeded(b, env, 0)
	c := newClient(b, env)
	c.context(u.APIKey)
	path := userPath(c.userID, "/monetary-account")
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		r := c.call("GET", path, nil, c.sessToken, "auto") // verifies X-Bunq-Server-Signature
		if r.status != 200 {
			b.Fatalf("status %d", r.status)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}
