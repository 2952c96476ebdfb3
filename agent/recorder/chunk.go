package recorder

import (
	"math"
	"math/bits"
	"os"
	"runtime"
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
	// eventRec is an Event with its strings in chunk.strs.
	eventRec struct {
		timeNS                     int64
		addr, stackHash            uint64
		pid, tid                   uint32
		exitStatus, signal, siCode int32
		kind, comm, filename       strRef
	}
	strRef struct{ off, n uint32 }
)

// chunk holds the records of one time span (records arriving late join the
// newest chunk, so minNS may precede baseNS). Stacks are interned per chunk,
// so a stack repeated within the span costs one reference per record. The
// arrays live in mem, off the Go heap.
type chunk struct {
	baseNS, minNS, maxNS int64

	samples   []sampleRec
	offCPU    []offCPURec
	stackRecs []stackRec
	events    []eventRec
	strs      []byte // the events' strings

	stacks []stackRef
	frames []uint64
	slots  []int32 // open addressing over stacks: index+1, 0 is empty

	mem     *arena
	pins    int  // snapshots reading the arrays: do not reuse or unmap them
	dropped bool // left the ring while pinned: freed at the last unpin
}

const chunkOverhead = int64(unsafe.Sizeof(chunk{}) + unsafe.Sizeof(arena{}))

// newChunk returns a chunk without arrays. Chunks are freed explicitly;
// the cleanup covers a recorder dropped whole (tests).
func newChunk() *chunk {
	c := &chunk{mem: &arena{}}
	runtime.AddCleanup(c, (*arena).free, c.mem)
	return c
}

func (c *chunk) bytes() int64 { return chunkOverhead + c.mem.n }

func (c *chunk) records() int {
	return len(c.samples) + len(c.offCPU) + len(c.stackRecs) + len(c.events)
}

func (c *chunk) start(base int64) {
	c.baseNS, c.minNS, c.maxNS = base, math.MaxInt64, math.MinInt64
}

// reset empties c, keeping only its main mapping for reserve to reuse.
func (c *chunk) reset() {
	c.mem.releaseExtra()
	c.drop()
}

// free unmaps all of c's memory.
func (c *chunk) free() {
	c.mem.free()
	c.drop()
}

func (c *chunk) drop() {
	c.samples, c.offCPU, c.stackRecs, c.events, c.strs = nil, nil, nil, nil, nil
	c.stacks, c.frames, c.slots = nil, nil, nil
}

// reserve lays c's empty arrays out in one mapping, sized for about as
// many records and stacks as prev held (plus an eighth; prev may be nil),
// so that a chunk fills without doubling its arrays past need. A reused
// chunk keeps its mapping unless it is too small or more than twice too big.
func (c *chunk) reserve(prev *chunk) {
	if prev == nil {
		prev = &chunk{}
	}
	want := func(n int) int { return n + n/8 }
	slots := 64
	for slots < 2*(want(len(prev.stacks))+1) {
		slots *= 2
	}
	total := 0
	layout[sampleRec](&total, want(len(prev.samples)))
	layout[offCPURec](&total, want(len(prev.offCPU)))
	layout[stackRec](&total, want(len(prev.stackRecs)))
	layout[eventRec](&total, want(len(prev.events)))
	layout[byte](&total, want(len(prev.strs)))
	layout[stackRef](&total, want(len(prev.stacks)))
	layout[uint64](&total, want(len(prev.frames)))
	layout[int32](&total, slots)
	if m := len(c.mem.main); m < total || m > 2*total+16*os.Getpagesize() {
		c.mem.setMain(total)
	}
	if c.mem.main == nil { // no mapping: the arrays grow on their own
		c.slots = alloc[int32](c.mem, slots)[:slots]
		return
	}
	k := &carver{buf: c.mem.main}
	c.samples = carve[sampleRec](k, want(len(prev.samples)))
	c.offCPU = carve[offCPURec](k, want(len(prev.offCPU)))
	c.stackRecs = carve[stackRec](k, want(len(prev.stackRecs)))
	c.events = carve[eventRec](k, want(len(prev.events)))
	c.strs = carve[byte](k, want(len(prev.strs)))
	c.stacks = carve[stackRef](k, want(len(prev.stacks)))
	c.frames = carve[uint64](k, want(len(prev.frames)))
	c.slots = carve[int32](k, slots)[:slots]
	clear(c.slots) // a reused mapping holds the last chunk's
}

// grow makes room for n more elements in one of c's arrays, doubling its
// capacity in a mapping of its own. The old array is unmapped unless a
// snapshot may be reading it; it then goes with the chunk.
func grow[T any](c *chunk, s []T, n int) []T {
	if len(s)+n <= cap(s) {
		return s
	}
	ns := append(alloc[T](c.mem, max(2*cap(s), len(s)+n, minCap)), s...)
	if c.pins == 0 {
		release(c.mem, s)
	}
	return ns
}

const minCap = 32

// addStr copies an event's string into the chunk.
func (c *chunk) addStr(s string) strRef {
	s = s[:min(len(s), math.MaxUint16)]
	c.strs = grow(c, c.strs, len(s))
	off := len(c.strs)
	c.strs = append(c.strs, s...)
	return strRef{uint32(off), uint32(len(s))}
}

// addEvent stores e, strings included.
func (c *chunk) addEvent(e *Event) {
	c.events = grow(c, c.events, 1)
	rec := eventRec{timeNS: e.TimeNS, addr: e.Addr, stackHash: e.StackHash, pid: e.PID, tid: e.TID,
		exitStatus: e.ExitStatus, signal: e.Signal, siCode: e.SiCode}
	rec.kind, rec.comm, rec.filename = c.addStr(e.Kind), c.addStr(e.Comm), c.addStr(e.Filename)
	c.events = append(c.events, rec)
}

// event rebuilds an Event from its record and the strings it points into.
func event(r *eventRec, strs []byte) Event {
	str := func(s strRef) string { return string(strs[s.off : s.off+s.n]) }
	return Event{TimeNS: r.timeNS, Kind: kindString(strs[r.kind.off : r.kind.off+r.kind.n]),
		PID: r.pid, TID: r.tid, Comm: str(r.comm), ExitStatus: r.exitStatus, Signal: r.signal,
		SiCode: r.siCode, Addr: r.addr, StackHash: r.stackHash, Filename: str(r.filename)}
}

// kindString returns the agent's event kinds without allocating.
func kindString(b []byte) string {
	for _, k := range [...]string{"exec", "exit", "signal", "oom_kill"} {
		if string(b) == k {
			return k
		}
	}
	return string(b)
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
	c.frames = grow(c, c.frames, len(user)+len(kernel))
	c.frames = append(append(c.frames, user...), kernel...)
	c.stacks = grow(c, c.stacks, 1)
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
	old := c.slots                       // snapshots do not read the slots
	c.slots = alloc[int32](c.mem, n)[:n] // zeroed
	release(c.mem, old)
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
