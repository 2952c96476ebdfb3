package recorder

import (
	"os"
	"slices"
	"unsafe"

	"golang.org/x/sys/unix"
)

// arena holds a chunk's arrays in anonymous private mappings instead of
// the Go heap: the ring's bound (64 MiB by default) then needs no room
// under the agent's soft memory limit, and a page counts in RSS only once
// a record is written to it. Every array type stored here is pointer-free,
// so the collector has nothing to scan in it.
//
// A chunk's arrays are carved from one mapping, main, sized when the chunk
// starts; an array that outgrows its share moves to a mapping of its own,
// in extra. A mapping that fails falls back to the heap.
type arena struct {
	main  []byte
	extra [][]byte
	n     int64 // mapped bytes (whole pages) and bytes on the heap
}

// mapPages returns n bytes or more, whole pages, zeroed; nil on failure.
func mapPages(n int) []byte {
	page := os.Getpagesize()
	n = (n + page - 1) &^ (page - 1)
	if n == 0 {
		return nil
	}
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil
	}
	return b
}

// alloc returns an empty slice with room for n elements or more in a
// mapping of its own.
func alloc[T any](a *arena, n int) []T {
	size := int(unsafe.Sizeof(*new(T)))
	if b := mapPages(n * size); b != nil {
		a.extra = append(a.extra, b)
		a.n += int64(len(b))
		return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), len(b)/size)[:0]
	}
	a.n += int64(n * size)
	return make([]T, 0, n)
}

// release unmaps the extra mapping s lives in, if any: s must no longer be
// read (the chunk is not pinned).
func release[T any](a *arena, s []T) {
	if cap(s) == 0 {
		return
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	for i, m := range a.extra {
		if uintptr(unsafe.Pointer(&m[0])) == p {
			_ = unix.Munmap(m)
			a.n -= int64(len(m))
			a.extra = slices.Delete(a.extra, i, i+1)
			return
		}
	}
	if !a.inMain(p) { // on the heap: the collector takes it
		a.n -= int64(cap(s)) * int64(unsafe.Sizeof(*new(T)))
	}
}

func (a *arena) inMain(p uintptr) bool {
	if len(a.main) == 0 {
		return false
	}
	base := uintptr(unsafe.Pointer(&a.main[0]))
	return p >= base && p < base+uintptr(len(a.main))
}

// releaseExtra unmaps every extra mapping and forgets the heap's share:
// only main stays.
func (a *arena) releaseExtra() {
	for _, m := range a.extra {
		_ = unix.Munmap(m)
	}
	a.extra, a.n = a.extra[:0], int64(len(a.main))
}

// setMain replaces main with a mapping of at least n bytes (none for 0).
func (a *arena) setMain(n int) {
	if a.main != nil {
		_ = unix.Munmap(a.main)
		a.n -= int64(len(a.main))
	}
	a.main = mapPages(n)
	a.n += int64(len(a.main))
}

// free unmaps everything; the arena may be used again.
func (a *arena) free() {
	a.releaseExtra()
	a.setMain(0)
}

// carver hands out consecutive, 8-byte aligned pieces of a mapping.
type carver struct {
	buf []byte
	off int
}

// layout adds the bytes n elements of T take, aligned, to *total.
func layout[T any](total *int, n int) {
	*total = (*total+7)&^7 + n*int(unsafe.Sizeof(*new(T)))
}

// carve returns an empty slice with room for exactly n elements.
func carve[T any](c *carver, n int) []T {
	if n == 0 {
		return nil
	}
	c.off = (c.off + 7) &^ 7
	size := int(unsafe.Sizeof(*new(T)))
	p := unsafe.Pointer(&c.buf[c.off])
	c.off += n * size
	return unsafe.Slice((*T)(p), n)[:0]
}
