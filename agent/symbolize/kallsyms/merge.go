package kallsyms

import "slices"

// merge calls emit with the entries of the sorted chunks in address order;
// among equal addresses, earlier chunks (earlier lines) come first. A binary
// heap of chunk heads keeps this O(n log chunks).
func merge(chunks [][]entry, emit func(entry)) {
	h := make([]int, 0, len(chunks)) // indexes of non-empty chunks
	for i, c := range chunks {
		if len(c) > 0 {
			h = append(h, i)
		}
	}
	less := func(a, b int) bool {
		ea, eb := chunks[h[a]][0], chunks[h[b]][0]
		return ea.addr < eb.addr || ea.addr == eb.addr && h[a] < h[b]
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		siftDown(h, i, less)
	}
	for len(h) > 0 {
		top := h[0]
		emit(chunks[top][0])
		chunks[top] = chunks[top][1:]
		if len(chunks[top]) == 0 {
			h[0] = h[len(h)-1]
			h = h[:len(h)-1]
		}
		siftDown(h, 0, less)
	}
}

func siftDown(h []int, i int, less func(a, b int) bool) {
	for {
		m, l, r := i, 2*i+1, 2*i+2
		if l < len(h) && less(l, m) {
			m = l
		}
		if r < len(h) && less(r, m) {
			m = r
		}
		if m == i {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// sink appends merged entries to the table, keeping the best symbol per
// address (text over boundaries, global over local, fewer leading
// underscores, then file order) and only the first of consecutive boundaries.
type sink struct {
	t        *Table
	lastKind uint8
}

func (s *sink) add(e entry) {
	t := s.t
	n := len(t.addrs)
	switch {
	case n > 0 && t.addrs[n-1] == e.addr:
		if s.better(e, t.names[n-1]) {
			s.set(n-1, e)
		}
	case e.kind == kindEnd && (n == 0 || s.lastKind == kindEnd):
		// a boundary after a boundary (or before any text) adds nothing
	default:
		t.addrs, t.names = append(t.addrs, e.addr), append(t.names, 0)
		if t.mods != nil {
			t.mods = append(t.mods, 0)
		}
		s.set(n, e)
	}
}

func (s *sink) set(i int, e entry) {
	s.t.names[i] = e.name
	if s.t.mods != nil {
		s.t.mods[i] = e.mod
	}
	s.lastKind = e.kind
}

func (s *sink) better(e entry, lastName uint32) bool {
	if e.kind != s.lastKind {
		return e.kind < s.lastKind
	}
	if e.kind == kindEnd {
		return false
	}
	return underscores(s.t.name(e.name)) < underscores(s.t.name(lastName))
}

func underscores(b []byte) int {
	n := 0
	for n < len(b) && b[n] == '_' {
		n++
	}
	return n
}

// trim counts the symbols and gives back capacity that duplicates left
// unused, when it is worth a copy.
func (s *sink) trim() {
	t := s.t
	for _, ref := range t.names {
		if ref != noName {
			t.n++
		}
	}
	if cap(t.addrs)-len(t.addrs) > len(t.addrs)/16 {
		t.addrs, t.names = slices.Clone(t.addrs), slices.Clone(t.names)
		if t.mods != nil {
			t.mods = slices.Clone(t.mods)
		}
	}
}
