package postgres

import (
	"testing"

	"github.com/bunqtpp/tpp/internal/pgtest"
	"github.com/bunqtpp/tpp/internal/storetest"
)

// BenchmarkStore runs the store benchmarks shared with package sqlite
// (internal/storetest), so the figures compare side by side.
func BenchmarkStore(b *testing.B) {
	pgtest.Require(b)
	storetest.Bench(b, openStores)
}

// BenchmarkRekey re-seals 2,000 access tokens per op (internal/storetest).
func BenchmarkRekey(b *testing.B) {
	pgtest.Require(b)
	storetest.BenchRekey(b, openStores)
}
