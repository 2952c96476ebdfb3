package main

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// adaptMemoryLimit holds the soft memory limit at base while the live heap
// is small, and raises it with the live heap beyond that: a limit at or
// under the live heap has the collector run back to back (up to half the
// CPU, the runtime's cap) and reclaim nothing. A node with many processes
// and large binaries to symbolize can need more live heap than base. It
// returns when ctx is done.
//
// The live heap is only measured anew by a collection, so the limit is
// revisited after each one rather than on a timer: between collections an
// idle agent has nothing to wake up for (a ticker cost two thread wake-ups
// a second, most of the agent's cost on a quiet node).
func adaptMemoryLimit(ctx context.Context, base int64) {
	collected := make(chan struct{}, 1)
	afterEachGC(ctx, collected)
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	limit := base
	for {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return // not this runtime's metric: keep base
		}
		if want := memoryLimitFor(base, int64(sample[0].Value.Uint64())); want != limit {
			limit = want
			debug.SetMemoryLimit(limit)
		}
		select {
		case <-ctx.Done():
			return
		case <-collected:
		}
	}
}

// gcSentinel is garbage by design: its cleanup runs after the collection
// that finds it. It holds a pointer so that it is not a tiny allocation,
// whose cleanup could wait for its neighbours in the same block.
type gcSentinel struct{ _ *byte }

// afterEachGC signals c (without blocking) after every garbage collection
// until ctx is done.
func afterEachGC(ctx context.Context, c chan<- struct{}) {
	runtime.AddCleanup(&gcSentinel{}, func(struct{}) {
		if ctx.Err() != nil {
			return
		}
		select {
		case c <- struct{}{}:
		default: // a signal is pending: one read of the heap serves both
		}
		afterEachGC(ctx, c)
	}, struct{}{})
}

// memoryLimitFor is base, or what GOGC=100 lets the heap reach (twice the
// live heap) plus what the runtime holds besides the heap (stacks,
// metadata) when that is more: past base, the limit never makes the
// collector run more often than it would without one.
func memoryLimitFor(base, live int64) int64 {
	const runtimeOverhead = 4 << 20
	return max(base, 2*live+runtimeOverhead)
}
