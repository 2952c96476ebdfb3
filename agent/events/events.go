// Package events drains the ring buffer that flightrec's BPF programs share
// and decodes its records into batches of typed events for the agent.
package events

import (
	"encoding/binary"
	"fmt"
)

// Kind tells what a record holds; it mirrors enum record_kind in
// bpf/include/flightrec.h.
type Kind uint16

// Record kinds.
const (
	KindCPUSample Kind = 1
)

// Record layout offsets, mirrored from bpf/include/flightrec.h. A test checks
// them against the struct bpf2go generated from the compiled object.
const (
	headerSize = 24

	sampleCommOff    = 24
	sampleUserSPOff  = 40
	sampleSPWordsOff = 48
	sampleUserLenOff = 64
	sampleKernLenOff = 66
	sampleFramesOff  = 72

	commLen = 16
)

// Sample is one on-CPU stack sample.
//
// User and Kernel alias the Batch's frame storage: they are valid until the
// batch is reused, so consumers that keep them must copy.
type Sample struct {
	Time    uint64 // CLOCK_BOOTTIME nanoseconds; see Clock to convert
	PID     uint32 // process (thread group) id
	TID     uint32
	CPU     uint16
	Comm    [commLen]byte
	UserSP  uint64
	SPWords [2]uint64 // the words at [UserSP] and [UserSP+8]
	User    []uint64  // innermost first
	Kernel  []uint64  // innermost first
}

// CommString returns the thread's command name.
func (s *Sample) CommString() string {
	for i, c := range s.Comm {
		if c == 0 {
			return string(s.Comm[:i])
		}
	}
	return string(s.Comm[:])
}

// Batch holds the records of one drain, in ring order (which is per-CPU time
// order, not global time order).
type Batch struct {
	Samples []Sample
	Stacks  []Stack
	OffCPU  []OffCPU
	Events  []ProcEvent
	frames  arena
}

// Reset empties the batch, keeping its storage.
func (b *Batch) Reset() {
	b.Samples = b.Samples[:0]
	b.Stacks = b.Stacks[:0]
	b.OffCPU = b.OffCPU[:0]
	b.Events = b.Events[:0]
	b.frames.reset()
}

// Len is the number of records in the batch.
func (b *Batch) Len() int { return len(b.Samples) + len(b.Stacks) + len(b.OffCPU) + len(b.Events) }

// Decode appends the record in raw to the batch.
func (b *Batch) Decode(raw []byte) error {
	if len(raw) < headerSize {
		return fmt.Errorf("record of %d bytes is shorter than its header", len(raw))
	}
	kind := Kind(binary.LittleEndian.Uint16(raw[16:]))
	switch kind {
	case KindCPUSample:
		return b.decodeSample(raw)
	case KindStack:
		return b.decodeStack(raw)
	case KindOffCPU:
		return b.decodeOffCPU(raw)
	case KindExec, KindExit, KindSignal, KindOOMKill:
		return b.decodeEvent(kind, raw)
	default:
		return fmt.Errorf("unknown record kind %d", kind)
	}
}

func (b *Batch) decodeSample(raw []byte) error {
	if len(raw) < sampleFramesOff {
		return fmt.Errorf("cpu sample of %d bytes is truncated", len(raw))
	}
	le := binary.LittleEndian
	nu := int(le.Uint16(raw[sampleUserLenOff:]))
	nk := int(le.Uint16(raw[sampleKernLenOff:]))
	if want := sampleFramesOff + 8*(nu+nk); len(raw) < want {
		return fmt.Errorf("cpu sample with %d+%d frames needs %d bytes, has %d", nu, nk, want, len(raw))
	}
	s := Sample{
		Time:    le.Uint64(raw[0:]),
		PID:     le.Uint32(raw[8:]),
		TID:     le.Uint32(raw[12:]),
		CPU:     le.Uint16(raw[18:]),
		UserSP:  le.Uint64(raw[sampleUserSPOff:]),
		SPWords: [2]uint64{le.Uint64(raw[sampleSPWordsOff:]), le.Uint64(raw[sampleSPWordsOff+8:])},
	}
	copy(s.Comm[:], raw[sampleCommOff:sampleCommOff+commLen])
	frames := b.frames.alloc(nu + nk)
	for i := range frames {
		frames[i] = le.Uint64(raw[sampleFramesOff+8*i:])
	}
	s.User = frames[:nu:nu]
	s.Kernel = frames[nu:]
	b.Samples = append(b.Samples, s)
	return nil
}

// arena hands out frame slices from fixed-size chunks that never move, so a
// slice handed out stays valid until reset, and steady-state drains allocate
// nothing.
type arena struct {
	chunks [][]uint64
	cur    int // index of the chunk being filled
	used   int // frames used in chunks[cur]
}

const arenaChunk = 16 << 10 // frames per chunk: 128 KiB, ~80 deep stacks

func (a *arena) reset() { a.cur, a.used = 0, 0 }

func (a *arena) alloc(n int) []uint64 {
	if n > arenaChunk {
		return make([]uint64, n) // cannot happen with the BPF limits; stay correct anyway
	}
	if len(a.chunks) == 0 || a.used+n > arenaChunk {
		if len(a.chunks) > 0 {
			a.cur++
		}
		if a.cur == len(a.chunks) {
			a.chunks = append(a.chunks, make([]uint64, arenaChunk))
		}
		a.used = 0
	}
	s := a.chunks[a.cur][a.used : a.used+n : a.used+n]
	a.used += n
	return s
}
