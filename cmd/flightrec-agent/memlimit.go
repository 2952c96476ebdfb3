package main

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// adaptMemoryLimit holds the soft memory limit at base while the live heap
// is small, and raises it with the live heap beyond that: a limit at or
// under the live heap has the collector run back to back (up to half the
// CPU, the runtime's cap) and reclaim nothing. A node with many processes
// and large binaries to symbolize can need more live heap than base. It
// returns when ctx is done.
func adaptMemoryLimit(ctx context.Context, base int64, every time.Duration) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	t := time.NewTicker(every)
	defer t.Stop()
	limit := base
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return // not this runtime's metric: keep base
		}
		if want := memoryLimitFor(base, int64(sample[0].Value.Uint64())); want != limit {
			limit = want
			debug.SetMemoryLimit(limit)
		}
	}
}

// memoryLimitFor is base, or what GOGC=100 lets the heap reach (twice the
// live heap) plus what the runtime holds besides the heap (stacks,
// metadata) when that is more: past base, the limit never makes the
// collector run more often than it would without one.
func memoryLimitFor(base, live int64) int64 {
	const runtimeOverhead = 4 << 20
	return max(base, 2*live+runtimeOverhead)
}
