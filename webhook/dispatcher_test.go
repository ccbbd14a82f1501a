package webhook_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bunqtpp/tpp/webhook"
)

const testPayload = `{"type":"payment.updated","timestamp":"2026-11-22T10:00:00Z","data":{"payment_id":"pay_1","status":"executed"}}`

func noJitter(d time.Duration) time.Duration { return d }

// setup returns a clock, a store with client "cli_1" signing with a fresh
// secret, and the secret.
func setup(t *testing.T) (*fakeClock, *memStore, string) {
	t.Helper()
	clock := newFakeClock()
	st := newMemStore(clock)
	secret, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	st.secrets["cli_1"] = []string{secret}
	return clock, st, secret
}

func newDispatcher(t *testing.T, st webhook.Store, opts webhook.Options) *webhook.Dispatcher {
	t.Helper()
	if opts.PollInterval == 0 {
		opts.PollInterval = 10 * time.Millisecond
	}
	if opts.Jitter == nil {
		opts.Jitter = noJitter
	}
	d, err := webhook.NewDispatcher(st, opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDeliverySendsSignedStandardWebhook(t *testing.T) {
	t.Parallel()
	clock, st, secret := setup(t)
	rc := newReceiver(t, nil)
	st.add("evt_1", "cli_1", rc.URL+"/hooks?x=1", testPayload)
	var res results
	d := newDispatcher(t, st, webhook.Options{Clock: clock, OnResult: res.hook})
	runDispatcher(t, d)
	d.Notify()

	waitFor(t, "delivery", func() bool { return st.item("evt_1").delivered })
	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if string(r.Body) != testPayload {
		t.Errorf("body = %s, want the stored payload byte for byte", r.Body)
	}
	for h, want := range map[string]string{
		"Content-Type":          "application/json",
		"User-Agent":            "bunq-tpp-webhooks/1",
		webhook.HeaderID:        "evt_1",
		webhook.HeaderTimestamp: "1795341600", // the fake clock's time
	} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if err := webhook.Verify(secret, r.Header, r.Body, clock.Now(), 0); err != nil {
		t.Errorf("receiver cannot verify the delivery: %v", err)
	}
	if got := res.get(); !slices.Equal(got, []bool{true}) {
		t.Errorf("OnResult oks = %v, want [true]", got)
	}
}

func TestFailsTwiceThenSucceeds(t *testing.T) {
	t.Parallel()
	clock, st, secret := setup(t)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n <= 2 {
			http.Error(w, "not yet", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	st.add("evt_1", "cli_1", rc.URL, testPayload)
	var res results
	d := newDispatcher(t, st, webhook.Options{
		Clock: clock, OnResult: res.hook,
		Backoff: []time.Duration{5 * time.Second, 30 * time.Second, time.Minute},
	})
	runDispatcher(t, d)
	start := clock.Now()

	d.Notify()
	waitFor(t, "first failure recorded", func() bool { return len(st.item("evt_1").failures) == 1 })
	f := st.item("evt_1").failures[0]
	if want := start.Add(5 * time.Second); !f.NextAttempt.Equal(want) {
		t.Fatalf("after attempt 1 next = %v, want %v", f.NextAttempt, want)
	}
	if !strings.Contains(f.Error, "500") {
		t.Errorf("last error = %q, want the status", f.Error)
	}

	// Not due yet: polling must not send it early.
	time.Sleep(50 * time.Millisecond)
	if rc.count() != 1 {
		t.Fatalf("sent %d times before the backoff elapsed", rc.count())
	}

	clock.Advance(5 * time.Second)
	d.Notify()
	waitFor(t, "second failure recorded", func() bool { return len(st.item("evt_1").failures) == 2 })
	if got, want := st.item("evt_1").failures[1].NextAttempt, clock.Now().Add(30*time.Second); !got.Equal(want) {
		t.Fatalf("after attempt 2 next = %v, want %v", got, want)
	}

	clock.Advance(30 * time.Second)
	d.Notify()
	waitFor(t, "delivery", func() bool { return st.item("evt_1").delivered })

	it := st.item("evt_1")
	if it.attempts != 3 || rc.count() != 3 {
		t.Fatalf("attempts = %d, requests = %d, want 3 and 3", it.attempts, rc.count())
	}
	ts := []time.Time{start, start.Add(5 * time.Second), start.Add(35 * time.Second)}
	for i, r := range rc.requests() {
		if r.Header.Get(webhook.HeaderID) != "evt_1" {
			t.Errorf("attempt %d webhook-id = %q; must stay the event id", i+1, r.Header.Get(webhook.HeaderID))
		}
		// Each attempt is signed afresh with its own timestamp.
		if err := webhook.Verify(secret, r.Header, r.Body, ts[i], time.Second); err != nil {
			t.Errorf("attempt %d does not verify at %v: %v", i+1, ts[i], err)
		}
	}
	if got := res.get(); !slices.Equal(got, []bool{false, false, true}) {
		t.Errorf("OnResult oks = %v", got)
	}
	// Delivered once: no more requests after success.
	clock.Advance(time.Hour)
	d.Notify()
	time.Sleep(50 * time.Millisecond)
	if rc.count() != 3 {
		t.Errorf("requests after delivery = %d, want 3", rc.count())
	}
}

func TestHangingReceiverTimesOutAndIsRetried(t *testing.T) {
	t.Parallel()
	clock, st, _ := setup(t)
	release := make(chan struct{})
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			select { // hang until the client gives up
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	t.Cleanup(func() { close(release) })
	st.add("evt_1", "cli_1", rc.URL, testPayload)
	d := newDispatcher(t, st, webhook.Options{Clock: clock, Timeout: 500 * time.Millisecond, Backoff: []time.Duration{time.Minute}})
	runDispatcher(t, d)
	d.Notify()

	waitFor(t, "timeout recorded", func() bool { return len(st.item("evt_1").failures) == 1 })
	f := st.item("evt_1").failures[0]
	if !strings.Contains(f.Error, "timeout") {
		t.Errorf("last error = %q, want a timeout", f.Error)
	}
	if !f.NextAttempt.Equal(clock.Now().Add(time.Minute)) {
		t.Errorf("next attempt = %v, want now + 1 min", f.NextAttempt)
	}
	clock.Advance(time.Minute)
	d.Notify()
	waitFor(t, "delivery after timeout", func() bool { return st.item("evt_1").delivered })
	if a := st.item("evt_1").attempts; a != 2 {
		t.Errorf("attempts = %d, want 2", a)
	}
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	clock, st, _ := setup(t)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	st.add("evt_1", "cli_1", rc.URL, testPayload)
	d := newDispatcher(t, st, webhook.Options{Clock: clock, Backoff: []time.Duration{time.Second}, MaxAttempts: 3})
	runDispatcher(t, d)
	for i := 1; i <= 3; i++ {
		d.Notify()
		waitFor(t, "failure", func() bool { return len(st.item("evt_1").failures) == i })
		clock.Advance(time.Second) // capped: every retry waits the last entry
	}
	it := st.item("evt_1")
	if !it.abandoned {
		t.Fatal("delivery not abandoned after MaxAttempts")
	}
	if !it.failures[1].NextAttempt.Equal(it.failures[1].At.Add(time.Second)) {
		t.Errorf("attempt 2 backoff = %v, want the capped 1 s", it.failures[1].NextAttempt.Sub(it.failures[1].At))
	}
	if !it.failures[2].NextAttempt.IsZero() {
		t.Errorf("last failure schedules %v; want zero (give up)", it.failures[2].NextAttempt)
	}
	clock.Advance(time.Hour)
	d.Notify()
	time.Sleep(50 * time.Millisecond)
	if rc.count() != 3 {
		t.Errorf("requests = %d after giving up, want 3", rc.count())
	}
}

func TestRedirectIsAFailureAndNotFollowed(t *testing.T) {
	t.Parallel()
	clock, st, _ := setup(t)
	target := newReceiver(t, nil)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	})
	st.add("evt_1", "cli_1", rc.URL, testPayload)
	d := newDispatcher(t, st, webhook.Options{Clock: clock})
	runDispatcher(t, d)
	d.Notify()
	waitFor(t, "failure", func() bool { return len(st.item("evt_1").failures) == 1 })
	if e := st.item("evt_1").failures[0].Error; !strings.Contains(e, "307") {
		t.Errorf("last error = %q, want HTTP 307", e)
	}
	if target.count() != 0 {
		t.Errorf("redirect target got %d requests; redirects must not be followed", target.count())
	}
}

func TestRetryAfterAndJitterShapeTheSchedule(t *testing.T) {
	t.Parallel()
	clock, st, _ := setup(t)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(webhook.HeaderID) == "evt_slow" {
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusBadGateway)
	})
	st.add("evt_slow", "cli_1", rc.URL, testPayload)
	st.add("evt_jit", "cli_1", rc.URL, testPayload)
	d := newDispatcher(t, st, webhook.Options{
		Clock: clock, Backoff: []time.Duration{5 * time.Second},
		Jitter: func(d time.Duration) time.Duration { return d + 700*time.Millisecond },
	})
	runDispatcher(t, d)
	d.Notify()
	waitFor(t, "both failures", func() bool {
		return len(st.item("evt_slow").failures) == 1 && len(st.item("evt_jit").failures) == 1
	})
	now := clock.Now()
	if got := st.item("evt_slow").failures[0].NextAttempt.Sub(now); got != 120*time.Second {
		t.Errorf("Retry-After 120 gave a wait of %v", got)
	}
	if got := st.item("evt_jit").failures[0].NextAttempt.Sub(now); got != 5*time.Second+700*time.Millisecond {
		t.Errorf("jittered wait = %v, want 5.7s", got)
	}
}

func TestNotifyWakesImmediately(t *testing.T) {
	t.Parallel()
	clock, st, _ := setup(t)
	rc := newReceiver(t, nil)
	d := newDispatcher(t, st, webhook.Options{Clock: clock, PollInterval: time.Hour})
	runDispatcher(t, d)
	waitFor(t, "first (empty) claim", func() bool { return st.claimCount() >= 1 })

	st.add("evt_quiet", "cli_1", rc.URL, testPayload)
	time.Sleep(100 * time.Millisecond)
	if rc.count() != 0 {
		t.Fatal("delivered without Notify while the poll interval is an hour")
	}
	d.Notify()
	// waitFor gives up after seconds; the poll would take an hour.
	waitFor(t, "delivery after Notify", func() bool { return st.item("evt_quiet").delivered })
}

func TestPollingFindsEventsWithoutNotify(t *testing.T) {
	t.Parallel()
	clock, st, _ := setup(t)
	rc := newReceiver(t, nil)
	d := newDispatcher(t, st, webhook.Options{Clock: clock, PollInterval: 20 * time.Millisecond})
	runDispatcher(t, d)
	waitFor(t, "first claim", func() bool { return st.claimCount() >= 1 })
	st.add("evt_1", "cli_1", rc.URL, testPayload)
	waitFor(t, "delivery by polling", func() bool { return st.item("evt_1").delivered })
}

func TestGracefulShutdownLetsInFlightFinish(t *testing.T) {
	t.Parallel()
	clock, st, _ := setup(t)
	entered := make(chan struct{})
	enter := sync.OnceFunc(func() { close(entered) })
	release := make(chan struct{})
	releaseAll := sync.OnceFunc(func() { close(release) })
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		enter()
		<-release
		w.WriteHeader(http.StatusOK)
	})
	t.Cleanup(releaseAll) // before the receiver's Close, which waits for handlers
	st.add("evt_1", "cli_1", rc.URL, testPayload)
	d := newDispatcher(t, st, webhook.Options{Clock: clock, ShutdownGrace: 10 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	d.Notify()
	<-entered
	cancel()
	select {
	case <-done:
		t.Fatal("Run returned while a delivery was in flight")
	case <-time.After(50 * time.Millisecond):
	}
	st.add("evt_2", "cli_1", rc.URL, testPayload)
	d.Notify() // must not claim after shutdown began
	releaseAll()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the in-flight delivery finished")
	}
	if !st.item("evt_1").delivered {
		t.Error("in-flight delivery not recorded as delivered")
	}
	if it := st.item("evt_2"); it.attempts != 0 {
		t.Errorf("evt_2 claimed %d times after shutdown began", it.attempts)
	}
}

func TestShutdownGraceAbortsAndLeaseBringsItBack(t *testing.T) {
	t.Parallel()
	clock, st, secret := setup(t)
	var hang atomic.Bool
	hang.Store(true)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if hang.Load() {
			<-r.Context().Done()
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	st.add("evt_1", "cli_1", rc.URL, testPayload)
	lease := 2 * time.Minute
	d := newDispatcher(t, st, webhook.Options{Clock: clock, Timeout: time.Minute, Lease: lease, ShutdownGrace: 100 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	d.Notify()
	waitFor(t, "request in flight", func() bool { return rc.count() == 1 })
	start := time.Now()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the grace period")
	}
	if el := time.Since(start); el < 100*time.Millisecond || el > 5*time.Second {
		t.Errorf("shutdown took %v with a 100ms grace", el)
	}
	it := st.item("evt_1")
	if it.delivered || it.abandoned || len(it.failures) != 0 {
		t.Fatalf("aborted attempt was recorded: %+v", it)
	}

	// A new worker (a restart, or another replica) picks it up once the
	// lease has expired, and not before.
	hang.Store(false)
	d2 := newDispatcher(t, st, webhook.Options{Clock: clock, Lease: lease})
	runDispatcher(t, d2)
	d2.Notify()
	time.Sleep(50 * time.Millisecond)
	if rc.count() != 1 {
		t.Fatal("re-sent while the old lease was still valid")
	}
	clock.Advance(lease)
	d2.Notify()
	waitFor(t, "re-delivery after lease expiry", func() bool { return st.item("evt_1").delivered })
	r := rc.requests()[1]
	if r.Header.Get(webhook.HeaderID) != "evt_1" {
		t.Error("re-delivery changed the webhook-id; receivers could not deduplicate")
	}
	if err := webhook.Verify(secret, r.Header, r.Body, clock.Now(), 0); err != nil {
		t.Error(err)
	}
}

func TestTwoDispatchersShareOneStore(t *testing.T) {
	t.Parallel()
	clock, st, _ := setup(t)
	seen := make(map[string]int)
	var mu sync.Mutex
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Header.Get(webhook.HeaderID)]++
		mu.Unlock()
		time.Sleep(time.Millisecond) // keep some attempts overlapping
		w.WriteHeader(http.StatusOK)
	})
	const n = 60
	for i := range n {
		st.add("evt_"+string(rune('a'+i/26))+string(rune('a'+i%26)), "cli_1", rc.URL, testPayload)
	}
	a := newDispatcher(t, st, webhook.Options{Clock: clock, Concurrency: 3})
	b := newDispatcher(t, st, webhook.Options{Clock: clock, Concurrency: 3})
	runDispatcher(t, a)
	runDispatcher(t, b)
	a.Notify()
	b.Notify()
	waitFor(t, "all delivered", func() bool { return rc.count() >= n })
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if rc.count() != n || len(seen) != n {
		t.Fatalf("requests = %d for %d distinct ids, want %d each once", rc.count(), len(seen), n)
	}
}

func TestUnreachableReceiverErrorHidesURL(t *testing.T) {
	t.Parallel()
	clock, st, _ := setup(t)
	rc := newReceiver(t, nil)
	url := rc.URL + "/hook?token=s3cr3t-token"
	rc.Close() // connection refused from now on
	st.add("evt_1", "cli_1", url, testPayload)
	d := newDispatcher(t, st, webhook.Options{Clock: clock})
	runDispatcher(t, d)
	d.Notify()
	waitFor(t, "failure", func() bool { return len(st.item("evt_1").failures) == 1 })
	e := st.item("evt_1").failures[0].Error
	if e == "" || strings.Contains(e, "s3cr3t") || strings.Contains(e, "/hook") {
		t.Errorf("last error %q is empty or leaks the URL", e)
	}
}

func TestDenyPrivateNetworks(t *testing.T) {
	t.Parallel()
	clock, st, _ := setup(t)
	rc := newReceiver(t, nil)
	st.add("evt_1", "cli_1", rc.URL, testPayload)
	st.add("evt_2", "cli_1", "http://localhost:"+rc.URL[strings.LastIndex(rc.URL, ":")+1:], testPayload)
	d := newDispatcher(t, st, webhook.Options{Clock: clock, DenyPrivateNetworks: true})
	runDispatcher(t, d)
	d.Notify()
	waitFor(t, "both refused", func() bool {
		return len(st.item("evt_1").failures) == 1 && len(st.item("evt_2").failures) == 1
	})
	if rc.count() != 0 {
		t.Fatalf("loopback receiver got %d requests with DenyPrivateNetworks", rc.count())
	}
	for _, id := range []string{"evt_1", "evt_2"} {
		if e := st.item(id).failures[0].Error; !strings.Contains(e, "not public") {
			t.Errorf("%s error = %q", id, e)
		}
	}
}

func TestBadURLAndMissingSecretFail(t *testing.T) {
	t.Parallel()
	clock, st, _ := setup(t)
	st.add("evt_url", "cli_1", "ftp://example.com/x", testPayload)
	st.add("evt_none", "cli_1", "", testPayload)
	st.add("evt_sec", "cli_unknown", "http://127.0.0.1:9/x", testPayload)
	d := newDispatcher(t, st, webhook.Options{Clock: clock})
	runDispatcher(t, d)
	d.Notify()
	for id, want := range map[string]string{"evt_url": "http(s)", "evt_none": "no webhook URL", "evt_sec": "signing secret"} {
		waitFor(t, id, func() bool { return len(st.item(id).failures) == 1 })
		if e := st.item(id).failures[0].Error; !strings.Contains(e, want) {
			t.Errorf("%s error = %q, want %q", id, e, want)
		}
	}
}

func TestNewDispatcherValidates(t *testing.T) {
	t.Parallel()
	_, st, _ := setup(t)
	bad := []webhook.Options{
		{Timeout: time.Minute, Lease: time.Minute},
		{Backoff: []time.Duration{}},
		{Backoff: []time.Duration{0}},
		{MaxAttempts: -1},
		{Concurrency: -1},
		{Timeout: -time.Second},
	}
	for i, o := range bad {
		if _, err := webhook.NewDispatcher(st, o); err == nil {
			t.Errorf("options %d accepted: %+v", i, o)
		}
	}
	if _, err := webhook.NewDispatcher(nil, webhook.Options{}); err == nil {
		t.Error("nil store accepted")
	}
	d, err := webhook.NewDispatcher(st, webhook.Options{})
	if err != nil {
		t.Fatalf("zero options: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	waitFor(t, "running", func() bool { return st.claimCount() >= 1 })
	if err := d.Run(ctx); err == nil {
		t.Error("second concurrent Run accepted")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}

func TestDefaultBackoffFollowsRootSchedule(t *testing.T) {
	t.Parallel()
	b := webhook.DefaultBackoff()
	if len(b) < 3 || b[0] != 5*time.Second {
		t.Fatalf("DefaultBackoff = %v", b)
	}
	var total time.Duration
	for i := 1; i < len(b); i++ {
		if b[i] < b[i-1] {
			t.Errorf("schedule shrinks at %d: %v", i, b)
		}
		total += b[i]
	}
	if total < 20*time.Hour || total > 48*time.Hour {
		t.Errorf("schedule spans %v; want about a day", total)
	}
}
