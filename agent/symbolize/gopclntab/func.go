package gopclntab

// IDs from internal/abi (stable across the supported releases).
const (
	pcdataInlTreeIndex = 2
	funcdataInlTree    = 3
)

// funcInfo is the decoded part of a runtime._func we use.
type funcInfo struct {
	entry, end    uint64
	addr          uint64 // virtual address of the _func, for 1.16 funcdata alignment
	raw           []byte // the _func and its trailing pcdata/funcdata arrays
	size          uint64 // size of the fixed part of _func
	nameOff       uint32
	pcsp, pcfile  uint32
	pcln, npcdata uint32
	cuOffset      uint32
	nfuncdata     uint8
}

// funcSize is the fixed size of runtime._func, before pcdata.
func (t *Table) funcSize() uint64 {
	if t.hdr.ver == ver118 {
		return 40 // no startLine
	}
	return 44 // 1.16: 8-byte entry; 1.20+: 4-byte entryOff and startLine
}

// lookup finds and decodes the function containing pc.
func (t *Table) lookup(pc uint64) (funcInfo, bool) {
	i, ok := t.ft.find(pc)
	if !ok {
		return funcInfo{}, false
	}
	return t.funcAt(i)
}

func (t *Table) funcAt(i int) (funcInfo, bool) {
	entry, ok1 := t.ft.entry(i)
	end, ok2 := t.ft.entry(i + 1)
	off, ok3 := t.ft.funcOff(i)
	if !ok1 || !ok2 || !ok3 || off >= uint64(len(t.hdr.pclntable)) {
		return funcInfo{}, false
	}
	f := funcInfo{entry: entry, end: end, addr: t.pclnAddr + off, raw: t.hdr.pclntable[off:], size: t.funcSize()}
	if uint64(len(f.raw)) < f.size {
		return funcInfo{}, false
	}
	// Fields after the entry are 4 bytes each; the entry is 8 bytes in 1.16.
	b := f.raw[4:]
	if t.hdr.ver == ver116 {
		b = f.raw[8:]
	}
	f.nameOff = le.Uint32(b)
	f.pcsp, f.pcfile, f.pcln = le.Uint32(b[12:]), le.Uint32(b[16:]), le.Uint32(b[20:])
	f.npcdata, f.cuOffset = le.Uint32(b[24:]), le.Uint32(b[28:])
	f.nfuncdata = f.raw[f.size-1]
	// The _func records its own entry; a mismatch means we are not
	// looking at a _func at all.
	if !t.entryMatches(&f) {
		return funcInfo{}, false
	}
	return f, true
}

func (t *Table) entryMatches(f *funcInfo) bool {
	if t.hdr.ver == ver116 {
		return le.Uint64(f.raw) == f.entry
	}
	return uint64(le.Uint32(f.raw))+t.ft.textStart == f.entry
}

// pcdata returns the offset in pctab of pc-value table i, or 0 if absent.
func (f *funcInfo) pcdata(i uint32) uint32 {
	if i >= f.npcdata {
		return 0
	}
	v, _ := u32(f.raw, f.size+4*uint64(i))
	return v
}

// funcdata returns the virtual address of funcdata i.
func (t *Table) funcdata(f *funcInfo, i uint8) (uint64, bool) {
	if i >= f.nfuncdata {
		return 0, false
	}
	p := f.size + 4*uint64(f.npcdata)
	if t.hdr.ver == ver116 {
		// Pointers, aligned in memory as the runtime expects.
		if (f.addr+p)%8 != 0 {
			p += 4
		}
		v, ok := u64(f.raw, p+8*uint64(i))
		return v, ok && v != 0
	}
	off, ok := u32(f.raw, p+4*uint64(i))
	if !ok || off == ^uint32(0) || !t.hasGofunc {
		return 0, false
	}
	return t.gofunc + uint64(off), true
}
