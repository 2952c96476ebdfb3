// Package aggregate sums CPU samples and off-CPU time per process and stack over
// a reporting interval and turns an interval into a labelled, symbolized pprof.
package aggregate

import (
	"hash/maphash"
	"slices"
	"time"
)

// Stack is one distinct (process, stack, state) seen in an interval: CPU
// samples (State "") or off-CPU time (State names why the thread waited).
type Stack struct {
	PID    uint32
	User   []uint64 // innermost first, leaf fix-up applied
	Kernel []uint64 // innermost first
	State  string   // "" for CPU samples; sleep, blocked, preempted, other
	// Unknown marks off-CPU time whose blocking stack was not known (the
	// stack record was lost or evicted): it has no frames and is shown
	// under UnknownStackFunction rather than dropped.
	Unknown bool
	Count   uint64 // CPU samples
	OffCPU  int64  // off-CPU nanoseconds
}

// Interval is what Aggregator.Take hands to the profile builder.
type Interval struct {
	Start, End time.Time
	Stacks     []*Stack
	Samples    uint64 // CPU samples
	OffCPU     int64  // off-CPU nanoseconds
	Waits      uint64 // off-CPU intervals
}

// Empty reports whether the interval has nothing to report.
func (iv *Interval) Empty() bool { return iv.Samples == 0 && iv.Waits == 0 }

// Aggregator interns stacks so an interval costs memory per distinct stack,
// not per sample. It is not safe for concurrent use.
type Aggregator struct {
	seed    maphash.Seed
	byHash  map[uint64][]*Stack
	stacks  []*Stack
	samples uint64
	offCPU  int64
	waits   uint64
	start   time.Time
}

// New starts the first interval at start.
func New(start time.Time) *Aggregator {
	return &Aggregator{seed: maphash.MakeSeed(), byHash: map[uint64][]*Stack{}, start: start}
}

// Add counts one CPU sample. user and kernel are copied only when the
// stack is new.
func (a *Aggregator) Add(pid uint32, user, kernel []uint64) {
	a.stack(key{pid: pid}, user, kernel).Count++
	a.samples++
}

// AddOffCPU adds d nanoseconds a thread of pid spent off the CPU in state
// with the given blocking stack; user and kernel are copied when new.
func (a *Aggregator) AddOffCPU(pid uint32, state string, user, kernel []uint64, d int64) {
	a.stack(key{pid: pid, state: state}, user, kernel).OffCPU += d
	a.offCPU += d
	a.waits++
}

// AddUnknownOffCPU is AddOffCPU for an interval whose stack is not known.
func (a *Aggregator) AddUnknownOffCPU(pid uint32, state string, d int64) {
	a.stack(key{pid: pid, state: state, unknown: true}, nil, nil).OffCPU += d
	a.offCPU += d
	a.waits++
}

// key is what tells two stacks apart besides their frames.
type key struct {
	pid     uint32
	state   string
	unknown bool
}

func (k key) matches(s *Stack) bool {
	return s.PID == k.pid && s.State == k.state && s.Unknown == k.unknown
}

// stack returns the interned stack, creating it with zero values.
func (a *Aggregator) stack(k key, user, kernel []uint64) *Stack {
	h := a.hash(k, user, kernel)
	for _, s := range a.byHash[h] {
		if k.matches(s) && slices.Equal(s.User, user) && slices.Equal(s.Kernel, kernel) {
			return s
		}
	}
	frames := make([]uint64, 0, len(user)+len(kernel))
	frames = append(append(frames, user...), kernel...)
	s := &Stack{PID: k.pid, State: k.state, Unknown: k.unknown, User: frames[:len(user):len(user)], Kernel: frames[len(user):]}
	a.byHash[h] = append(a.byHash[h], s)
	a.stacks = append(a.stacks, s)
	return s
}

func (a *Aggregator) hash(k key, user, kernel []uint64) uint64 {
	var h maphash.Hash
	h.SetSeed(a.seed)
	var b [8]byte
	put := func(v uint64) {
		for i := range b {
			b[i] = byte(v >> (8 * i))
		}
		h.Write(b[:])
	}
	h.WriteString(k.state)
	put(uint64(k.pid)<<32 | uint64(len(user)))
	for _, f := range user {
		put(f)
	}
	for _, f := range kernel {
		put(f)
	}
	return h.Sum64()
}

// Take ends the current interval at end, returns it, and starts the next.
func (a *Aggregator) Take(end time.Time) *Interval {
	iv := &Interval{Start: a.start, End: end, Stacks: a.stacks, Samples: a.samples, OffCPU: a.offCPU, Waits: a.waits}
	a.byHash = make(map[uint64][]*Stack, len(a.byHash))
	a.stacks = nil
	a.samples, a.offCPU, a.waits = 0, 0, 0
	a.start = end
	return iv
}
