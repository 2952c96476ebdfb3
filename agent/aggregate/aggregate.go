// Package aggregate counts samples per process and stack over a reporting
// interval and turns an interval into a labelled, symbolized pprof profile.
package aggregate

import (
	"hash/maphash"
	"slices"
	"time"
)

// Stack is one distinct (process, stack) seen in an interval.
type Stack struct {
	PID    uint32
	User   []uint64 // innermost first, leaf fix-up applied
	Kernel []uint64 // innermost first
	Count  uint64
}

// Interval is what Aggregator.Take hands to the profile builder.
type Interval struct {
	Start, End time.Time
	Stacks     []*Stack
	Samples    uint64
}

// Aggregator interns stacks so an interval costs memory per distinct stack,
// not per sample. It is not safe for concurrent use.
type Aggregator struct {
	seed    maphash.Seed
	byHash  map[uint64][]*Stack
	stacks  []*Stack
	samples uint64
	start   time.Time
}

// New starts the first interval at start.
func New(start time.Time) *Aggregator {
	return &Aggregator{seed: maphash.MakeSeed(), byHash: map[uint64][]*Stack{}, start: start}
}

// Add counts one sample. user and kernel are copied only when the stack is new.
func (a *Aggregator) Add(pid uint32, user, kernel []uint64) {
	h := a.hash(pid, user, kernel)
	for _, s := range a.byHash[h] {
		if s.PID == pid && slices.Equal(s.User, user) && slices.Equal(s.Kernel, kernel) {
			s.Count++
			a.samples++
			return
		}
	}
	frames := make([]uint64, 0, len(user)+len(kernel))
	frames = append(append(frames, user...), kernel...)
	s := &Stack{PID: pid, User: frames[:len(user):len(user)], Kernel: frames[len(user):], Count: 1}
	a.byHash[h] = append(a.byHash[h], s)
	a.stacks = append(a.stacks, s)
	a.samples++
}

func (a *Aggregator) hash(pid uint32, user, kernel []uint64) uint64 {
	var h maphash.Hash
	h.SetSeed(a.seed)
	var b [8]byte
	put := func(v uint64) {
		for i := range b {
			b[i] = byte(v >> (8 * i))
		}
		h.Write(b[:])
	}
	put(uint64(pid)<<32 | uint64(len(user)))
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
	iv := &Interval{Start: a.start, End: end, Stacks: a.stacks, Samples: a.samples}
	a.byHash = make(map[uint64][]*Stack, len(a.byHash))
	a.stacks = nil
	a.samples = 0
	a.start = end
	return iv
}
