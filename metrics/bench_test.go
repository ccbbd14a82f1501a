package metrics_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/bunqtpp/tpp/metrics"
)

func BenchmarkObserveBankCall(b *testing.B) {
	m := metrics.New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveBankCall(http.MethodGet, "/user/1234/monetary-account/5678/payment", 200, 30*time.Millisecond)
		}
	})
}

func BenchmarkObserveHTTP(b *testing.B) {
	m := metrics.New()
	obs := m.APIObserver()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			obs("/v1/consents/:id", 200, 5*time.Millisecond)
		}
	})
}

func BenchmarkScrape(b *testing.B) {
	m := metrics.New()
	for i := range 50 {
		m.ObserveBankCall(http.MethodGet, "/user/1/x"+string(rune('a'+i%26))+"/2", 200, time.Millisecond)
	}
	h := m.Handler()
	b.ReportAllocs()
	for b.Loop() {
		w := discardWriter{h: http.Header{}}
		h.ServeHTTP(&w, &http.Request{Method: http.MethodGet, Header: http.Header{}})
	}
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}
