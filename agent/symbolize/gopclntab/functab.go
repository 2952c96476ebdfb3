package gopclntab

// functab is the sorted array of (entry, _func offset) pairs at the start of
// the function table, followed by one more entry: the end of the last function.
type functab struct {
	b         []byte
	field     uint64 // 4 (1.18+: offsets from textStart) or 8 (1.16: addresses)
	textStart uint64
	nfunc     int
}

func newFunctab(h *header, textStart uint64) functab {
	return functab{b: h.pclntable, field: h.functabFieldSize(), textStart: textStart, nfunc: int(h.nfunc)}
}

func (f functab) word(i uint64) (uint64, bool) {
	if f.field == 4 {
		v, ok := u32(f.b, i*4)
		return uint64(v), ok
	}
	return u64(f.b, i*8)
}

// entry returns the entry PC of function i; i == nfunc gives the end of text.
func (f functab) entry(i int) (uint64, bool) {
	v, ok := f.word(2 * uint64(i))
	return v + f.textStart, ok
}

// funcOff returns the offset of function i's _func in the function table.
func (f functab) funcOff(i int) (uint64, bool) {
	return f.word(2*uint64(i) + 1)
}

// find returns the index of the function containing pc by binary search,
// the same answer the runtime's bucketed findfunc gives.
func (f functab) find(pc uint64) (int, bool) {
	lo, hi := 0, f.nfunc // invariant: entry(lo) <= pc < entry(hi)
	first, ok1 := f.entry(lo)
	end, ok2 := f.entry(hi)
	if !ok1 || !ok2 || pc < first || pc >= end {
		return 0, false
	}
	for hi-lo > 1 {
		mid := int(uint(lo+hi) >> 1)
		e, ok := f.entry(mid)
		if !ok {
			return 0, false
		}
		if e <= pc {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, true
}
