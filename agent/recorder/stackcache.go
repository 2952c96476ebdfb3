package recorder

import (
	"slices"
	"unsafe"
)

// stackKey names a blocking stack: BPF hashes it per process.
type stackKey struct {
	pid  uint32
	hash uint64
}

// cacheEnt is the latest stack record of one key, on an intrusive LRU list.
type cacheEnt struct {
	key        stackKey
	frames     []uint64 // user then kernel, innermost first
	nUser      int
	prev, next int32 // toward the most and the least recently used; -1 ends
}

// stackCache keeps the latest stack record per (pid, hash) outside the
// ring, least recently used evicted first, so that an interval ending long
// after its thread went to sleep still finds the stack it slept with.
// Entries live in one slab, linked by index; evicted ones are chained
// through next on a free list and reused.
type stackCache struct {
	max, bytes int64
	idx        map[stackKey]int32
	ents       []cacheEnt
	head, tail int32 // most and least recently used; -1 when empty
	free       int32 // first free entry; -1 when none
}

const (
	entBytes = int64(unsafe.Sizeof(cacheEnt{}))
	// mapEntryBytes estimates what one key costs in a Go map: key, value
	// and control byte over a load factor of 7/8, rounded up.
	mapEntryBytes = 40
)

func newStackCache(max int64) stackCache {
	return stackCache{max: max, idx: map[stackKey]int32{}, head: -1, tail: -1, free: -1}
}

// put records the latest stack of k and makes it the most recently used.
func (s *stackCache) put(k stackKey, user, kernel []uint64) {
	if i, ok := s.idx[k]; ok {
		e := &s.ents[i]
		if e.nUser != len(user) || !slices.Equal(e.frames[:e.nUser], user) || !slices.Equal(e.frames[e.nUser:], kernel) {
			s.setFrames(e, user, kernel)
		}
		s.unlink(i)
		s.pushFront(i)
		return
	}
	need := mapEntryBytes + 8*int64(len(user)+len(kernel))
	for s.bytes+need > s.max && s.tail >= 0 {
		s.evict(s.tail)
	}
	i := s.alloc()
	e := &s.ents[i]
	e.key = k
	s.setFrames(e, user, kernel)
	s.idx[k] = i
	s.bytes += mapEntryBytes
	s.pushFront(i)
	for s.bytes > s.max && s.tail >= 0 {
		s.evict(s.tail)
	}
}

// touch marks k as used: an interval still refers to it.
func (s *stackCache) touch(k stackKey) {
	if i, ok := s.idx[k]; ok && i != s.head {
		s.unlink(i)
		s.pushFront(i)
	}
}

// get returns a copy of k's frames.
func (s *stackCache) get(k stackKey) (user, kernel []uint64, ok bool) {
	i, ok := s.idx[k]
	if !ok {
		return nil, nil, false
	}
	e := &s.ents[i]
	f := slices.Clone(e.frames)
	return f[:e.nUser:e.nUser], f[e.nUser:], true
}

func (s *stackCache) setFrames(e *cacheEnt, user, kernel []uint64) {
	n := len(user) + len(kernel)
	if cap(e.frames) < n {
		s.bytes += int64(n-cap(e.frames)) * 8
		e.frames = make([]uint64, 0, n)
	}
	e.frames = append(append(e.frames[:0], user...), kernel...)
	e.nUser = len(user)
}

func (s *stackCache) alloc() int32 {
	if i := s.free; i >= 0 {
		s.free = s.ents[i].next
		return i
	}
	s.ents = growHeap(s.ents, &s.bytes)
	s.ents = append(s.ents, cacheEnt{})
	return int32(len(s.ents) - 1)
}

func (s *stackCache) evict(i int32) {
	e := &s.ents[i]
	s.unlink(i)
	delete(s.idx, e.key)
	s.bytes -= mapEntryBytes + int64(cap(e.frames))*8
	*e = cacheEnt{next: s.free}
	s.free = i
}

func (s *stackCache) unlink(i int32) {
	e := &s.ents[i]
	if e.prev >= 0 {
		s.ents[e.prev].next = e.next
	} else {
		s.head = e.next
	}
	if e.next >= 0 {
		s.ents[e.next].prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = -1, -1
}

func (s *stackCache) pushFront(i int32) {
	e := &s.ents[i]
	e.prev, e.next = -1, s.head
	if s.head >= 0 {
		s.ents[s.head].prev = i
	}
	s.head = i
	if s.tail < 0 {
		s.tail = i
	}
}

// growHeap makes room for one more entry, doubling the capacity and adding
// the new capacity's bytes to *acct. Entries hold slices, so they stay on
// the heap, unlike a chunk's records.
func growHeap[T any](s []T, acct *int64) []T {
	if len(s) < cap(s) {
		return s
	}
	c := max(2*cap(s), minCap)
	ns := make([]T, len(s), c)
	copy(ns, s)
	var zero T
	*acct += int64(c-cap(s)) * int64(unsafe.Sizeof(zero))
	return ns
}
