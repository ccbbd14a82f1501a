package loadtest

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bunqtpp/tpp/redis"
)

// AllocatedBytes is what the process has allocated on the heap so far.
func AllocatedBytes() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// HeapSampler records the peak of runtime.MemStats.HeapAlloc.
type HeapSampler struct {
	mu   sync.Mutex
	peak uint64
	done chan struct{}
	wg   sync.WaitGroup
}

// StartHeapSampler samples the heap every interval until Stop.
func StartHeapSampler(every time.Duration) *HeapSampler {
	h := &HeapSampler{done: make(chan struct{})}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			h.sample()
			select {
			case <-h.done:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

func (h *HeapSampler) sample() {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	h.mu.Lock()
	h.peak = max(h.peak, m.HeapAlloc)
	h.mu.Unlock()
}

// Reset forgets the peak so far (the warmup's).
func (h *HeapSampler) Reset() {
	h.mu.Lock()
	h.peak = 0
	h.mu.Unlock()
	h.sample()
}

// Stop ends the sampling and returns the peak.
func (h *HeapSampler) Stop() uint64 {
	close(h.done)
	h.wg.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.peak
}

// CPUMeter reads the process's CPU time plus, with a redis-server on this
// machine, that server's: it serves the system's requests on the same
// cores.
type CPUMeter struct {
	rdb goredis.UniversalClient // nil: the process only
}

// NewCPUMeter counts the CPU of the Redis at redisURL too when it listens
// on loopback (empty: none).
func NewCPUMeter(ctx context.Context, redisURL string) *CPUMeter {
	return &CPUMeter{rdb: localRedis(ctx, redisURL)}
}

// WithRedis tells whether the redis-server's CPU is counted.
func (m *CPUMeter) WithRedis() bool { return m.rdb != nil }

// Close releases the Redis connection.
func (m *CPUMeter) Close() {
	if m.rdb != nil {
		m.rdb.Close()
	}
}

// Now is the CPU time so far; ok is false when the process's is unknown.
func (m *CPUMeter) Now(ctx context.Context) (time.Duration, bool) {
	cpu, ok := ProcessCPU()
	if m.rdb == nil {
		return cpu, ok
	}
	info, err := m.rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return cpu, false
	}
	for _, line := range strings.Split(info, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		if k != "used_cpu_sys" && k != "used_cpu_user" {
			continue
		}
		sec, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return cpu, false
		}
		cpu += time.Duration(sec * float64(time.Second))
	}
	return cpu, ok
}

// Idle returns the CPU seconds per second (Now) while nothing but a heap
// sampler runs, measured for d after settle.
func (m *CPUMeter) Idle(ctx context.Context, settle, d time.Duration) float64 {
	select {
	case <-ctx.Done():
		return 0
	case <-time.After(settle):
	}
	heap := StartHeapSampler(100 * time.Millisecond)
	defer heap.Stop()
	c0, ok := m.Now(ctx)
	t0 := time.Now()
	select {
	case <-ctx.Done():
		return 0
	case <-time.After(d):
	}
	c1, _ := m.Now(ctx)
	if !ok {
		return 0
	}
	return float64(c1-c0) / float64(time.Since(t0))
}

// localRedis returns a client of the Redis at u when it listens on
// loopback (its CPU then competes with this process's), else nil.
func localRedis(ctx context.Context, u string) goredis.UniversalClient {
	if u == "" {
		return nil
	}
	pu, err := url.Parse(u)
	if err != nil {
		return nil
	}
	host := pu.Hostname()
	if ip, err := netip.ParseAddr(host); !(host == "localhost" || err == nil && ip.IsLoopback()) {
		return nil
	}
	rdb, err := redis.NewClient(ctx, redis.Config{URL: u})
	if err != nil {
		return nil
	}
	if _, err := rdb.Info(ctx, "cpu").Result(); err != nil {
		rdb.Close()
		return nil
	}
	return rdb
}

// TailBuffer keeps the last Max bytes written (logs, shown when a run
// fails) and optionally copies everything on to CopyTo.
type TailBuffer struct {
	Max    int
	CopyTo io.Writer

	mu  sync.Mutex
	buf []byte
}

func (t *TailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.CopyTo != nil {
		t.CopyTo.Write(p)
	}
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.Max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *TailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

// PooledTransport is a loopback transport keeping conns idle connections
// per host.
func PooledTransport(conns int) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil // loopback only, never through a proxy from the environment
	t.MaxIdleConns = 2 * conns
	t.MaxIdleConnsPerHost = conns
	return t
}

// Ms formats d in milliseconds with two decimals.
func Ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + "ms"
}

func mib(n uint64) string {
	return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + "MiB"
}
