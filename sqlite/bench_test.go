package sqlite

import (
	"testing"

	"github.com/bunqtpp/tpp/internal/storetest"
)

// BenchmarkStore runs the store benchmarks shared with package postgres
// (internal/storetest), so the figures compare side by side.
func BenchmarkStore(b *testing.B) { storetest.Bench(b, openStores) }

// BenchmarkRekey re-seals 2,000 access tokens per op (internal/storetest).
func BenchmarkRekey(b *testing.B) { storetest.BenchRekey(b, openStores) }
