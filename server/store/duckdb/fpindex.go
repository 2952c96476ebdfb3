package duckdb

// fpIndex maps stack fingerprints to stack ids: an open-addressing table
// probed linearly, its keys already well mixed. Interning looks up every
// stack of every profile here; a lookup is one cache line where Go's map,
// at a dictionary of hundreds of thousands of stacks, took two or three
// cache misses, and those misses were the largest cost of interning.
type fpIndex struct {
	slots []fpSlot // len is a power of two; id 0 marks an empty slot
	n     int
}

type fpSlot struct {
	fp uint64
	id uint32
}

func (t *fpIndex) get(fp uint64) (uint32, bool) {
	if len(t.slots) == 0 {
		return 0, false
	}
	mask := uint64(len(t.slots) - 1)
	for i := fp & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.id == 0 {
			return 0, false
		}
		if s.fp == fp {
			return s.id, true
		}
	}
}

// put maps fp to id (not 0), replacing what fp mapped to.
func (t *fpIndex) put(fp uint64, id uint32) {
	if 10*(t.n+1) > 7*len(t.slots) {
		t.grow()
	}
	mask := uint64(len(t.slots) - 1)
	for i := fp & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.id == 0 {
			*s = fpSlot{fp, id}
			t.n++
			return
		}
		if s.fp == fp {
			s.id = id
			return
		}
	}
}

func (t *fpIndex) grow() {
	old := t.slots
	t.slots, t.n = make([]fpSlot, max(1024, 2*len(old))), 0
	for _, s := range old {
		if s.id != 0 {
			t.put(s.fp, s.id)
		}
	}
}
