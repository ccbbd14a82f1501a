package stacktest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFrozenClockMovesOnlyWhenAdvanced(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c := NewClock(start)
	time.Sleep(2 * time.Millisecond)
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("frozen clock moved by itself: %s, want %s", got, start)
	}
	c.Advance(90 * time.Minute)
	if got, want := c.Now(), start.Add(90*time.Minute); !got.Equal(want) {
		t.Fatalf("after Advance: %s, want %s", got, want)
	}
}

func TestRunningClockIsWallTimePlusAdvances(t *testing.T) {
	c := RunningClock()
	before := time.Now()
	c.Advance(48 * time.Hour)
	got := c.Now()
	after := time.Now()
	if got.Location() != time.UTC {
		t.Errorf("running clock is in %s, want UTC", got.Location())
	}
	if got.Before(before.Add(48*time.Hour)) || got.After(after.Add(48*time.Hour)) {
		t.Fatalf("running clock %s is not wall time + 48h (%s … %s)", got, before.Add(48*time.Hour), after.Add(48*time.Hour))
	}
	first := c.Now()
	time.Sleep(2 * time.Millisecond)
	if !c.Now().After(first) {
		t.Fatal("running clock stands still")
	}
}

func TestLogBufferTakesConcurrentWrites(t *testing.T) {
	var b LogBuffer
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() { fmt.Fprintf(&b, "line %02d\n", i) })
	}
	wg.Wait()
	got := b.String()
	for i := range 20 {
		if !strings.Contains(got, fmt.Sprintf("line %02d\n", i)) {
			t.Errorf("write %d is missing or torn:\n%s", i, got)
		}
	}
	if len(got) != 20*len("line 00\n") {
		t.Errorf("buffer holds %d bytes, want %d", len(got), 20*len("line 00\n"))
	}
}

func TestUnlimitedWaitsForNothing(t *testing.T) {
	if err := (Unlimited{}).Wait(context.Background(), "GET /user", 3, 3*time.Second); err != nil {
		t.Fatalf("Wait = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := (Unlimited{}).Wait(ctx, "GET /user", 3, 3*time.Second); err != context.Canceled {
		t.Fatalf("Wait on an ended context = %v, want context.Canceled", err)
	}
}
