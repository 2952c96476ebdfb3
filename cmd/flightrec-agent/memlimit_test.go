package main

import (
	"context"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestMemoryLimitFor(t *testing.T) {
	const base = 40 << 20
	for _, tt := range []struct{ live, want int64 }{
		{0, base},
		{16 << 20, base},       // room enough under base
		{20 << 20, 44 << 20},   // 2 × live + 4 MiB, as GOGC=100 would
		{100 << 20, 204 << 20}, // a node that needs a large heap
	} {
		if got := memoryLimitFor(base, tt.live); got != tt.want {
			t.Errorf("live %d MiB: limit %d MiB, want %d MiB", tt.live>>20, got>>20, tt.want>>20)
		}
	}
}

// TestAdaptMemoryLimit holds a live heap above a small base and checks that
// the runtime's limit rises above it (and comes back when told to stop).
func TestAdaptMemoryLimit(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(old)
	const base = 4 << 20
	debug.SetMemoryLimit(base)
	live := make([][]byte, 16)
	for i := range live {
		live[i] = make([]byte, 1<<20)
	}
	runtime.GC()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { adaptMemoryLimit(ctx, base); close(done) }()
	got := waitForLimitAbove(16<<20, 5*time.Second)
	cancel()
	<-done
	if got <= 16<<20 {
		t.Errorf("limit %d MiB with 16 MiB live on a base of 4 MiB: the collector would run back to back", got>>20)
	}
	runtime.KeepAlive(live)
}

// TestAdaptMemoryLimitFollowsGC grows the live heap after the adapter
// started: the next collection, not a timer, must raise the limit.
func TestAdaptMemoryLimitFollowsGC(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(old)
	const base = 4 << 20
	debug.SetMemoryLimit(base)
	runtime.GC()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { adaptMemoryLimit(ctx, base); close(done) }()
	live := make([][]byte, 16)
	for i := range live {
		live[i] = make([]byte, 1<<20)
	}
	runtime.GC()
	got := waitForLimitAbove(16<<20, 5*time.Second)
	cancel()
	<-done
	if got <= 16<<20 {
		t.Errorf("limit %d MiB after a collection found 16 MiB live on a base of 4 MiB", got>>20)
	}
	runtime.KeepAlive(live)
}

// waitForLimitAbove polls the memory limit until it exceeds min or d
// passes, and returns it.
func waitForLimitAbove(min int64, d time.Duration) int64 {
	deadline := time.Now().Add(d)
	for debug.SetMemoryLimit(-1) <= min && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return debug.SetMemoryLimit(-1)
}
