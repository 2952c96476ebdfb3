// Command gosplit is a ground-truth workload for flightrec's tests: it burns
// CPU in named Go functions in proportions fixed by work amounts, so a
// profiler's output can be checked against a known split.
//
// Modes:
//
//	-mode split  (default) main.cpuA/main.cpuB/main.cpuC at -split (60,30,10)
//	-mode extra  like split, but cpuB does -extra percent more work per unit
//	             (default 50), for diff tests: only cpuB's share grows
//	-mode leaf   main.leafCaller calling the frameless leaf main.hotLeaf
//
// It prints "ready <pid>" once burning has begun and runs until killed or
// until -duration elapses. See testdata/workloads/README.md for the ground
// truth each mode should produce.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// unitIters is the number of mix iterations in one work unit. It is sized
// for roughly 20-50 µs per unit on current x86-64 so that a cycle of units
// is much shorter than any sampling period a test uses (2-10 ms), which keeps
// a periodic sampler from aliasing with the cycle.
const unitIters = 8192

// leafIters is the loop length inside hotLeaf: long enough that nearly all
// samples land in the leaf itself rather than in leafCaller's loop.
const leafIters = 64

// stop is polled once per cycle, never inside a burn loop, so the check
// costs nothing measurable and no clock reads end up in the profile.
var stop atomic.Bool

// extraIters is added to cpuB's per-unit iteration count in -mode extra.
var extraIters int

// sink keeps the compiler from discarding the burn results.
var sink uint64

// doneUnits counts finished burner calls; see unitDone.
var doneUnits uint64

// mix is deliberately small so the compiler inlines it into cpuA/cpuB/cpuC;
// the burn loops spend nearly all of their time in its body, so most samples
// carry an inlined main.mix frame under the physical function.
func mix(x, k uint64) uint64 {
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	x *= k
	x ^= x >> 29
	x ^= x << 11
	return x + k
}

// unitDone is called once per burner call. Its real job is to make the
// burners non-leaf functions: the compiler then gives them a frame-pointer
// frame, so frame-pointer unwinding from a sample in cpuA still finds
// burnSplit. The frameless case is tested separately by -mode leaf.
//
//go:noinline
func unitDone(x uint64) uint64 {
	doneUnits++
	return x
}

// cpuA, cpuB and cpuC have identical loop shapes (only the constant
// differs, so no linker could fold them) which makes one unit of work cost
// the same in each: the split is then exactly the ratio of units.

//go:noinline
func cpuA(units int, x uint64) uint64 {
	n := units * unitIters
	for i := 0; i < n; i++ {
		x = mix(x, 0x9E3779B97F4A7C15)
	}
	return unitDone(x)
}

//go:noinline
func cpuB(units int, x uint64) uint64 {
	n := units * (unitIters + extraIters)
	for i := 0; i < n; i++ {
		x = mix(x, 0xBF58476D1CE4E5B9)
	}
	return unitDone(x)
}

//go:noinline
func cpuC(units int, x uint64) uint64 {
	n := units * unitIters
	for i := 0; i < n; i++ {
		x = mix(x, 0x94D049BB133111EB)
	}
	return unitDone(x)
}

// hotLeaf must stay frameless (no locals, no calls) so that a sample inside
// it sees the caller's frame pointer, not its own: unwinders that only walk
// the frame-pointer chain then lose leafCaller, which is what the leaf test
// is there to catch.
//
//go:noinline
func hotLeaf(x uint64, n int) uint64 {
	for ; n > 0; n-- {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

//go:noinline
func leafCaller(x uint64) uint64 {
	for !stop.Load() {
		x = hotLeaf(x, leafIters)
	}
	return x
}

// xorshift is a cheap PRNG used only to shuffle the order of units inside a
// cycle, so that no fixed phase relation exists between cycle and sampler.
func xorshift(s *uint64) uint64 {
	x := *s
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	*s = x
	return x
}

//go:noinline
func burnSplit(weights [3]int) uint64 {
	var slots []uint8
	for f, w := range weights {
		for j := 0; j < w; j++ {
			slots = append(slots, uint8(f))
		}
	}
	rng := uint64(0x2545F4914F6CDD1D)
	x := uint64(1)
	for !stop.Load() {
		// Fisher-Yates over the slots: every cycle runs the same work in a
		// different order.
		for i := len(slots) - 1; i > 0; i-- {
			j := int(xorshift(&rng) % uint64(i+1))
			slots[i], slots[j] = slots[j], slots[i]
		}
		for _, f := range slots {
			switch f {
			case 0:
				x = cpuA(1, x)
			case 1:
				x = cpuB(1, x)
			default:
				x = cpuC(1, x)
			}
		}
	}
	return x
}

func threadCPU() time.Duration {
	var ts syscall.Timespec
	const clockThreadCPUTimeID = 3
	_, _, errno := syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0)
	if errno != 0 {
		fmt.Fprintln(os.Stderr, "clock_gettime:", errno)
		os.Exit(1)
	}
	return time.Duration(ts.Nano())
}

// calibrate measures each function's CPU cost per unit in isolation,
// interleaving the functions round by round so that frequency drift or a
// noisy neighbour affects all three alike.
func calibrate(rounds int) {
	const unitsPerCall = 16
	fns := []struct {
		name string
		fn   func(int, uint64) uint64
	}{{"main.cpuA", cpuA}, {"main.cpuB", cpuB}, {"main.cpuC", cpuC}}
	total := make([]time.Duration, len(fns))
	x := uint64(1)
	for _, f := range fns { // warm up caches and CPU frequency
		x = f.fn(unitsPerCall, x)
	}
	for r := 0; r < rounds; r++ {
		for i, f := range fns {
			t0 := threadCPU()
			x = f.fn(unitsPerCall, x)
			total[i] += threadCPU() - t0
		}
	}
	sink = x
	for i, f := range fns {
		units := rounds * unitsPerCall
		fmt.Printf("calib %s %.1f %d\n", f.name, float64(total[i].Nanoseconds())/float64(units), units)
	}
}

func parseSplit(s string) ([3]int, error) {
	var w [3]int
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return w, fmt.Errorf("-split wants three comma-separated integers, got %q", s)
	}
	for i, p := range parts {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || v < 0 {
			return w, fmt.Errorf("-split: bad weight %q", p)
		}
		w[i] = v
	}
	g := gcd(gcd(w[0], w[1]), w[2])
	if g == 0 {
		return w, fmt.Errorf("-split: all weights are zero")
	}
	// Reducing by the gcd keeps a cycle as short as possible.
	for i := range w {
		w[i] /= g
	}
	return w, nil
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func main() {
	mode := flag.String("mode", "split", "split, extra or leaf")
	split := flag.String("split", "60,30,10", "relative work of cpuA,cpuB,cpuC")
	extra := flag.Int("extra", -1, "percent of extra work per cpuB unit (split/extra modes; -mode extra defaults to 50)")
	duration := flag.Duration("duration", 0, "stop after this long (0: run until killed)")
	calib := flag.Int("calibrate", 0, "test only: measure CPU per unit over this many rounds, print it and exit")
	flag.Parse()

	switch *mode {
	case "split":
		if *extra < 0 {
			*extra = 0
		}
	case "extra":
		if *extra < 0 {
			*extra = 50
		}
	case "leaf":
	default:
		fmt.Fprintf(os.Stderr, "gosplit: unknown -mode %q\n", *mode)
		os.Exit(2)
	}
	if *extra > 0 {
		extraIters = unitIters * *extra / 100
	}
	weights, err := parseSplit(*split)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gosplit:", err)
		os.Exit(2)
	}

	// One OS thread does all the burning so per-thread profiles and the
	// thread CPU clock both see exactly the workload.
	runtime.LockOSThread()

	if *calib > 0 {
		calibrate(*calib)
		return
	}
	if *duration > 0 {
		time.AfterFunc(*duration, func() { stop.Store(true) })
	}
	fmt.Printf("ready %d\n", os.Getpid())
	if *mode == "leaf" {
		sink = leafCaller(1)
	} else {
		sink = burnSplit(weights)
	}
}
