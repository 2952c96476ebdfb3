package gopclntab

// uvarint reads an unsigned LEB128 value of at most 32 bits, as the runtime
// writes pc-value tables; n is 0 for truncated or overlong input.
func uvarint(p []byte) (v uint32, n int) {
	var shift uint
	for i, b := range p {
		if i == 5 {
			return 0, 0
		}
		v |= uint32(b&0x7f) << shift
		if b&0x80 == 0 {
			return v, i + 1
		}
		shift += 7
	}
	return 0, 0
}

// pcvalue decodes the pc-value table at off in pctab for a function starting
// at entry and returns the value in effect at targetpc, as runtime.pcvalue.
// The table is a sequence of (value delta, pc delta) pairs ending with a
// zero value delta; every step consumes input, so the loop is bounded.
func (t *Table) pcvalue(off uint32, entry, targetpc uint64) (int32, bool) {
	if off == 0 || uint64(off) >= uint64(len(t.hdr.pctab)) {
		return -1, false
	}
	p := t.hdr.pctab[off:]
	pc, val := entry, int32(-1)
	for {
		uv, n := uvarint(p)
		if n == 0 || (uv == 0 && pc != entry) {
			return -1, false
		}
		p = p[n:]
		val += int32(-(uv & 1) ^ (uv >> 1))
		pcdelta, n := uvarint(p)
		if n == 0 {
			return -1, false
		}
		p = p[n:]
		pc += uint64(pcdelta) * t.hdr.quantum
		if targetpc < pc {
			return val, true
		}
	}
}
