package recorder

import (
	"math"
	"math/bits"
	"slices"
	"unsafe"
)

// Records as a chunk stores them: small fixed-size structs in one array per
// kind, so that adding one is an append into existing capacity.
type (
	sampleRec struct {
		timeNS   int64
		pid, tid uint32
		stack    int32 // into chunk.stacks
		cpu      uint16
	}
	offCPURec struct {
		startNS, endNS int64
		hash           uint64 // the stack record the thread left with
		pid, tid       uint32
		state          uint8
	}
	stackRec struct {
		timeNS int64
		hash   uint64 // the name off-CPU intervals and signals use
		pid    uint32
		stack  int32 // into chunk.stacks
	}
	// stackRef is an interned stack: frames[off:off+nUser] are the user
	// frames and the nKernel after them the kernel frames, innermost first.
	stackRef struct {
		hash           uint64 // of (pid, frames): the interning key
		off            uint32
		pid            uint32
		nUser, nKernel uint16
	}
)

// chunk holds the records of one time span (records arriving late join the
// newest chunk, so minNS may precede baseNS). Stacks are interned per chunk,
// so a stack repeated within the span costs one reference per record.
type chunk struct {
	baseNS, minNS, maxNS int64

	samples   []sampleRec
	offCPU    []offCPURec
	stackRecs []stackRec
	events    []Event

	stacks []stackRef
	frames []uint64
	slots  []int32 // open addressing over stacks: index+1, 0 is empty

	capBytes int64 // capacity of the arrays above
	strBytes int64 // event strings
	pins     int   // snapshots reading the arrays: do not reuse them
}

const chunkOverhead = int64(unsafe.Sizeof(chunk{}))

func (c *chunk) bytes() int64 { return chunkOverhead + c.capBytes + c.strBytes }

func (c *chunk) records() int {
	return len(c.samples) + len(c.offCPU) + len(c.stackRecs) + len(c.events)
}

func (c *chunk) start(base int64) {
	c.baseNS, c.minNS, c.maxNS = base, math.MaxInt64, math.MinInt64
}

// reset empties c, keeping its arrays; events are cleared so that their
// strings can be collected.
func (c *chunk) reset() {
	clear(c.events)
	clear(c.slots)
	c.samples, c.offCPU, c.stackRecs, c.events = c.samples[:0], c.offCPU[:0], c.stackRecs[:0], c.events[:0]
	c.stacks, c.frames = c.stacks[:0], c.frames[:0]
	c.strBytes = 0
}

// reserve sizes c's empty arrays for about as many records and stacks as
// prev held (plus an eighth), so that a chunk fills without doubling its
// arrays past need, and a reused chunk gives back what a burst left it.
func (c *chunk) reserve(prev *chunk) {
	acct := &c.capBytes
	c.samples = fit(c.samples, len(prev.samples), acct)
	c.offCPU = fit(c.offCPU, len(prev.offCPU), acct)
	c.stackRecs = fit(c.stackRecs, len(prev.stackRecs), acct)
	c.events = fit(c.events, len(prev.events), acct)
	c.stacks = fit(c.stacks, len(prev.stacks), acct)
	c.frames = fit(c.frames, len(prev.frames), acct)
	slots := 64
	for slots < 2*(cap(c.stacks)+1) {
		slots *= 2
	}
	if slots != len(c.slots) {
		*acct += int64(slots-len(c.slots)) * 4
		c.slots = make([]int32, slots)
	}
}

// fit returns an empty s with room for n and an eighth, reallocating when it
// has too little or more than twice that.
func fit[T any](s []T, n int, acct *int64) []T {
	want := n + n/8
	if cap(s) >= want && cap(s) <= 2*want+minCap {
		return s[:0]
	}
	var zero T
	*acct += int64(want-cap(s)) * int64(unsafe.Sizeof(zero))
	if want == 0 {
		return nil
	}
	return make([]T, 0, want)
}

// intern returns the index of the stack (pid, user, kernel), adding it when
// the chunk has not seen it.
func (c *chunk) intern(pid uint32, user, kernel []uint64) int32 {
	user, kernel = user[:min(len(user), math.MaxUint16)], kernel[:min(len(kernel), math.MaxUint16)]
	if 2*(len(c.stacks)+1) > len(c.slots) {
		c.rehash()
	}
	h := hashStack(pid, user, kernel)
	mask := len(c.slots) - 1
	i := int(h) & mask
	for ; c.slots[i] != 0; i = (i + 1) & mask {
		s := c.slots[i] - 1
		if ref := &c.stacks[s]; ref.hash == h && c.equal(ref, pid, user, kernel) {
			return s
		}
	}
	off := len(c.frames)
	c.frames = grow(c.frames, len(user)+len(kernel), &c.capBytes)
	c.frames = append(append(c.frames, user...), kernel...)
	c.stacks = grow(c.stacks, 1, &c.capBytes)
	c.stacks = append(c.stacks, stackRef{hash: h, off: uint32(off), pid: pid, nUser: uint16(len(user)), nKernel: uint16(len(kernel))})
	c.slots[i] = int32(len(c.stacks))
	return int32(len(c.stacks) - 1)
}

func (c *chunk) equal(ref *stackRef, pid uint32, user, kernel []uint64) bool {
	if ref.pid != pid || int(ref.nUser) != len(user) || int(ref.nKernel) != len(kernel) {
		return false
	}
	u, k := c.stackFrames(ref)
	return slices.Equal(u, user) && slices.Equal(k, kernel)
}

// stackFrames returns the user and kernel frames of an interned stack.
func (c *chunk) stackFrames(ref *stackRef) (user, kernel []uint64) {
	return framesOf(c.frames, ref)
}

func framesOf(frames []uint64, ref *stackRef) (user, kernel []uint64) {
	u := int(ref.off) + int(ref.nUser)
	return frames[ref.off:u:u], frames[u : u+int(ref.nKernel) : u+int(ref.nKernel)]
}

// rehash doubles the slot table, keeping it at most half full so probes
// stay short.
func (c *chunk) rehash() {
	n := max(64, 2*len(c.slots))
	c.capBytes += int64(n-len(c.slots)) * 4
	c.slots = make([]int32, n)
	mask := n - 1
	for s := range c.stacks {
		i := int(c.stacks[s].hash) & mask
		for c.slots[i] != 0 {
			i = (i + 1) & mask
		}
		c.slots[i] = int32(s + 1)
	}
}

// hashStack hashes a stack for interning; equality is checked on a match,
// so it only needs to spread well, not resist attacks. Two lanes of
// multiplications keep the dependency chain, the cost per frame, short.
func hashStack(pid uint32, user, kernel []uint64) uint64 {
	a, b := uint64(pid)<<32|uint64(len(user)), uint64(len(kernel))
	a, b = lanes(a, b, user)
	a, b = lanes(a, b, kernel)
	return mix(a ^ bits.RotateLeft64(b, 31))
}

const k1, k2 = 0x9e3779b97f4a7c15, 0xc2b2ae3d27d4eb4f

func lanes(a, b uint64, s []uint64) (uint64, uint64) {
	i := 0
	for ; i+1 < len(s); i += 2 {
		a, b = (a^s[i])*k1, (b^s[i+1])*k2
	}
	if i < len(s) {
		a = (a ^ s[i]) * k1
	}
	return a, b
}

// mix brings the high bits, where multiplications carry them, down to the
// low bits that index the slots.
func mix(x uint64) uint64 {
	x ^= x >> 32
	x *= k1
	return x ^ x>>29
}
