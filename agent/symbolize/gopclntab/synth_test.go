package gopclntab

import (
	"encoding/binary"
	"reflect"
	"testing"
)

// A writer of small synthetic Go binaries: an ELF file holding only a
// pclntab (and moduledata) laid out as each Go release's linker does. It
// covers the Go 1.16 layout, which no toolchain here can produce, and gives
// the fuzzer small valid inputs to mutate.

type synthRange struct {
	n    uint32 // length in bytes
	line int32
	file int32 // index into synthSpec.files
	inl  int32 // index into the function's inline tree, or -1
	sp   int32
}

type synthInl struct {
	name     string
	parentPc int32
	funcID   uint8
}

type synthFunc struct {
	name   string
	funcID uint8
	ranges []synthRange
	inl    []synthInl
}

type synthSpec struct {
	ver          version
	text         uint64
	files        []string
	funcs        []synthFunc
	textInHeader bool // 1.18+: else text is only in moduledata
}

const (
	synthBase    = 0x400000 // virtual address of file offset 0
	synthPclnOff = 0x200    // file offset of the pclntab
)

func (f *synthFunc) size() uint32 {
	var n uint32
	for _, r := range f.ranges {
		n += r.n
	}
	return n
}

type buf struct{ b []byte }

func (w *buf) u8(v uint8)   { w.b = append(w.b, v) }
func (w *buf) u32(v uint32) { w.b = binary.LittleEndian.AppendUint32(w.b, v) }
func (w *buf) u64(v uint64) { w.b = binary.LittleEndian.AppendUint64(w.b, v) }
func (w *buf) align(n int) {
	for len(w.b)%n != 0 {
		w.b = append(w.b, 0)
	}
}
func (w *buf) str(s string) uint32 {
	off := uint32(len(w.b))
	w.b = append(append(w.b, s...), 0)
	return off
}

// encodePCValue writes a pc-value table for per-range values, merging
// equal neighbours as the linker does (a zero delta ends a table).
func encodePCValue(w *buf, ranges []synthRange, val func(synthRange) int32) uint32 {
	off := uint32(len(w.b))
	prev, first := int32(-1), true
	var pending uint32
	flush := func(v int32) {
		d := v - prev
		w.b = binary.AppendUvarint(w.b, uint64(uint32(d<<1)^uint32(d>>31)))
		w.b = binary.AppendUvarint(w.b, uint64(pending))
		prev, pending, first = v, 0, false
	}
	for i, r := range ranges {
		pending += r.n
		if i+1 < len(ranges) && val(ranges[i+1]) == val(r) {
			continue
		}
		if !first && val(r) == prev {
			panic("unmerged range")
		}
		flush(val(r))
	}
	w.u8(0)
	return off
}

// buildSynth returns an ELF file for spec.
func buildSynth(spec synthSpec) []byte {
	p := &buf{}
	hdrSize := 72
	if spec.ver == ver116 {
		hdrSize = 64
	}
	p.b = make([]byte, hdrSize)

	nameOffs := map[string]uint32{}
	funcnametab := len(p.b)
	for _, f := range spec.funcs {
		for _, n := range append([]string{f.name}, inlNames(f)...) {
			if _, ok := nameOffs[n]; !ok {
				nameOffs[n] = p.str(n) - uint32(funcnametab)
			}
		}
	}
	cutab := len(p.b)
	fileOffs := &buf{}
	for _, name := range spec.files {
		p.u32(fileOffs.str(name))
	}
	filetab := len(p.b)
	p.b = append(p.b, fileOffs.b...)
	pctab := len(p.b)
	p.u8(0) // offset 0 means "no table"
	type tabs struct{ sp, file, line, inl uint32 }
	ft := make([]tabs, len(spec.funcs))
	for i, f := range spec.funcs {
		pc := &buf{b: p.b[pctab:]}
		ft[i].sp = encodePCValue(pc, f.ranges, func(r synthRange) int32 { return r.sp })
		ft[i].file = encodePCValue(pc, f.ranges, func(r synthRange) int32 { return r.file })
		ft[i].line = encodePCValue(pc, f.ranges, func(r synthRange) int32 { return r.line })
		if len(f.inl) > 0 {
			ft[i].inl = encodePCValue(pc, f.ranges, func(r synthRange) int32 { return r.inl })
		}
		p.b = append(p.b[:pctab], pc.b...)
	}
	p.align(8)
	pclntable := len(p.b)
	writeFuncs(p, spec, pclntable, nameOffs, func(i int) [4]uint32 {
		return [4]uint32{ft[i].sp, ft[i].file, ft[i].line, ft[i].inl}
	})

	w := &buf{}
	w.u32(map[version]uint32{ver116: magic116, ver118: magic118, ver120: magic120}[spec.ver])
	w.b = append(w.b, 0, 0, 1, 8)
	w.u64(uint64(len(spec.funcs)))
	w.u64(uint64(len(spec.files)))
	if spec.ver >= ver118 {
		if spec.textInHeader {
			w.u64(spec.text)
		} else {
			w.u64(0)
		}
	}
	for _, off := range []int{funcnametab, cutab, filetab, pctab, pclntable} {
		w.u64(uint64(off))
	}
	copy(p.b, w.b)
	return wrapELF(spec, p.b)
}

func inlNames(f synthFunc) []string {
	var out []string
	for _, c := range f.inl {
		out = append(out, c.name)
	}
	return out
}

// writeFuncs appends the functab, the _func records and the inline trees.
func writeFuncs(p *buf, spec synthSpec, pclntable int, nameOffs map[string]uint32, tabs func(int) [4]uint32) {
	field := func(v uint64) {
		if spec.ver == ver116 {
			p.u64(v)
		} else {
			p.u32(uint32(v))
		}
	}
	ftab := len(p.b)
	for i := range spec.funcs {
		field(spec.entry(i))
		field(0) // patched below
	}
	field(spec.entry(len(spec.funcs)))
	var treeFixups []int // where to write each function's inline tree location
	for i, f := range spec.funcs {
		p.align(8)
		off := uint64(len(p.b) - pclntable)
		if spec.ver == ver116 {
			binary.LittleEndian.PutUint64(p.b[ftab+16*i+8:], off)
		} else {
			binary.LittleEndian.PutUint32(p.b[ftab+8*i+4:], uint32(off))
		}
		treeFixups = append(treeFixups, writeFunc(p, spec, i, nameOffs[f.name], tabs(i)))
	}
	writeInlTrees(p, spec, nameOffs, treeFixups)
}

// entry returns function i's functab entry: an offset from text, or an
// address in Go 1.16.
func (spec *synthSpec) entry(i int) uint64 {
	pc := spec.text
	for _, f := range spec.funcs[:i] {
		pc += uint64(f.size())
	}
	if spec.ver == ver116 {
		return pc
	}
	return pc - spec.text
}

// writeFunc appends function i's _func and returns where its inline tree
// funcdata goes, or -1.
func writeFunc(p *buf, spec synthSpec, i int, nameOff uint32, t [4]uint32) int {
	f := spec.funcs[i]
	if spec.ver == ver116 {
		p.u64(spec.entry(i))
	} else {
		p.u32(uint32(spec.entry(i)))
	}
	for _, v := range []uint32{nameOff, 0, 0, t[0], t[1], t[2]} { // name, args, deferreturn, pcsp, pcfile, pcln
		p.u32(v)
	}
	// With an odd npcdata, 1.16's pointer-sized funcdata need padding.
	npcdata, nfuncdata := uint32(3), uint8(0)
	if len(f.inl) > 0 {
		npcdata, nfuncdata = 4, 4
	}
	p.u32(npcdata)
	p.u32(0) // cuOffset
	if spec.ver == ver120 {
		p.u32(1) // startLine
	}
	p.b = append(p.b, f.funcID, 0, 0, nfuncdata)
	for _, v := range []uint32{0, 0, t[3], 0}[:npcdata] { // pcdata[2] is the inline index
		p.u32(v)
	}
	if nfuncdata == 0 {
		return -1
	}
	if spec.ver == ver116 {
		p.align(8)
		p.b = append(p.b, make([]byte, 3*8)...)
		p.u64(0)
		return len(p.b) - 8
	}
	for range 3 {
		p.u32(^uint32(0))
	}
	p.u32(0)
	return len(p.b) - 4
}

// writeInlTrees appends the inline trees after the functions (where Go
// 1.26 puts go:func.*) and points each function's funcdata at its tree.
func writeInlTrees(p *buf, spec synthSpec, nameOffs map[string]uint32, fixups []int) {
	p.align(8)
	gofunc := len(p.b)
	for i, f := range spec.funcs {
		if fixups[i] < 0 {
			continue
		}
		p.align(4)
		if spec.ver == ver116 {
			binary.LittleEndian.PutUint64(p.b[fixups[i]:], synthBase+synthPclnOff+uint64(len(p.b)))
		} else {
			binary.LittleEndian.PutUint32(p.b[fixups[i]:], uint32(len(p.b)-gofunc))
		}
		for _, c := range f.inl {
			if spec.ver == ver120 {
				p.b = append(p.b, c.funcID, 0, 0, 0)
				p.u32(nameOffs[c.name])
				p.u32(uint32(c.parentPc))
				p.u32(1)
				continue
			}
			p.b = append(p.b, 0xff, 0xff, c.funcID, 0) // parent, funcID
			p.u32(0)                                   // file
			p.u32(0)                                   // line
			p.u32(nameOffs[c.name])
			p.u32(uint32(c.parentPc))
		}
	}
	// Leave the location of go:func.* for wrapELF.
	p.u64(uint64(gofunc))
}

// synthModuledata returns the words of a moduledata for the pclntab tab.
func synthModuledata(spec synthSpec, tab []byte, tabAddr, gofunc uint64) []uint64 {
	word := func(i int) uint64 { return binary.LittleEndian.Uint64(tab[8+8*i:]) }
	md := make([]uint64, mdGofunc120+2)
	md[mdPcHeader] = tabAddr
	for i, idx := range []int{mdFuncnametab, mdCutab, mdFiletab, mdPctab, mdPclntable, mdFtab} {
		md[idx] = tabAddr + word(3+min(i, 4)) // header words 3-7 are table offsets
		md[idx+1], md[idx+2] = 1, 1
	}
	md[mdFtab+1] = uint64(len(spec.funcs) + 1)
	md[mdText] = spec.text
	if spec.ver == ver118 {
		md[mdGofunc118] = tabAddr + gofunc
	} else {
		md[mdGofunc120] = tabAddr + gofunc
	}
	return md
}

// wrapELF puts the pclntab (whose last 8 bytes give go:func.*'s offset) in
// an ELF file with one writable segment, plus moduledata for 1.18+.
func wrapELF(spec synthSpec, tab []byte) []byte {
	gofunc := binary.LittleEndian.Uint64(tab[len(tab)-8:])
	tab = tab[:len(tab)-8]
	tabAddr := uint64(synthBase + synthPclnOff)
	out := &buf{b: make([]byte, synthPclnOff)}
	out.b = append(out.b, tab...)
	out.align(32)
	mdOff := len(out.b)
	if spec.ver >= ver118 {
		for _, v := range synthModuledata(spec, tab, tabAddr, gofunc) {
			out.u64(v)
		}
	}
	mdEnd := len(out.b)
	return appendSections(out, spec, mdOff, mdEnd, len(tab))
}

// appendSections appends the section headers of a file laid out by wrapELF
// and fills in its ELF header.
func appendSections(out *buf, spec synthSpec, mdOff, mdEnd, tabLen int) []byte {
	shstr := &buf{b: []byte{0}}
	names := map[string]uint32{}
	for _, n := range []string{".text", ".gopclntab", ".go.module", ".shstrtab"} {
		names[n] = shstr.str(n)
	}
	shstrOff := len(out.b)
	out.b = append(out.b, shstr.b...)
	out.align(8)
	shoff := len(out.b)
	type sh struct {
		name          string
		typ           uint32
		flags         uint64
		addr, off, sz uint64
	}
	secs := []sh{
		{"", 0, 0, 0, 0, 0},
		{".text", shtNobits, shfAlloc | 4, spec.text, 0, 0x10000},
		{".gopclntab", 1, shfAlloc, synthBase + synthPclnOff, synthPclnOff, uint64(tabLen)},
		{".go.module", 1, shfAlloc | 1, synthBase + uint64(mdOff), uint64(mdOff), uint64(mdEnd - mdOff)},
		{".shstrtab", 3, 0, 0, uint64(shstrOff), uint64(len(shstr.b))},
	}
	for _, s := range secs {
		out.u32(names[s.name])
		out.u32(s.typ)
		out.u64(s.flags)
		out.u64(s.addr)
		out.u64(s.off)
		out.u64(s.sz)
		out.u32(0)
		out.u32(0)
		out.u64(1)
		out.u64(0)
	}
	writeEhdr(out.b, uint64(shoff), len(secs), uint64(len(out.b)))
	return out.b
}

// writeEhdr fills in the ELF header and the one program header, a
// writable PT_LOAD mapping the whole file at synthBase.
func writeEhdr(b []byte, shoff uint64, nsec int, size uint64) {
	le := binary.LittleEndian
	copy(b, "\x7fELF\x02\x01\x01")
	le.PutUint16(b[16:], 2)  // ET_EXEC
	le.PutUint16(b[18:], 62) // EM_X86_64
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[32:], ehdrSize) // phoff
	le.PutUint64(b[40:], shoff)
	le.PutUint16(b[52:], ehdrSize)
	le.PutUint16(b[54:], phdrSize)
	le.PutUint16(b[56:], 1)
	le.PutUint16(b[58:], shdrSize)
	le.PutUint16(b[60:], uint16(nsec))
	le.PutUint16(b[62:], uint16(nsec-1))
	ph := b[ehdrSize:]
	le.PutUint32(ph[0:], ptLoad)
	le.PutUint32(ph[4:], 4|pfW) // R+W
	le.PutUint64(ph[8:], 0)
	le.PutUint64(ph[16:], synthBase)
	le.PutUint64(ph[24:], synthBase)
	le.PutUint64(ph[32:], size)
	le.PutUint64(ph[40:], size)
	le.PutUint64(ph[48:], 0x1000)
}

// synthSample is a small program: f0 plain; f1 with calls inlined two deep
// and a generic one; f2, a wrapper around an inlined call.
func synthSample(ver version, textInHeader bool) synthSpec {
	return synthSpec{
		ver: ver, text: 0x1000000, textInHeader: textInHeader,
		files: []string{"/src/a.go", "/src/b.go", "<autogenerated>"},
		funcs: []synthFunc{
			{name: "main.f0", ranges: []synthRange{{4, 10, 0, -1, 0}, {8, 11, 0, -1, 8}, {4, 12, 0, -1, 0}}},
			{name: "main.f1", ranges: []synthRange{
				{4, 20, 0, -1, 0}, {6, 21, 0, -1, 24}, // call site of inl 0 at offset 4
				{6, 30, 1, 0, 24}, // inside pkg.mid (inl 0), calls inl 1 at offset 10
				{6, 40, 1, 1, 24}, // inside pkg.leaf[int] inlined into pkg.mid
				{2, 22, 0, -1, 24}, {2, 23, 0, -1, 0},
			}, inl: []synthInl{{"pkg.mid", 4, 0}, {"pkg.leaf[go.shape.int]", 10, 0}}},
			{name: "main.(*T).M", funcID: 9, ranges: []synthRange{
				{4, 1, 2, -1, 0}, {4, 50, 0, 0, 8}, {4, 1, 2, -1, 0},
			}, inl: []synthInl{{"main.T.M", 0, 0}}},
		},
	}
}

func TestSynthetic(t *testing.T) {
	const text = 0x1000000
	f1 := uint64(text + 16)
	f2 := f1 + 26
	want := []struct {
		pc     uint64
		frames []string
		sp     int64
	}{
		{text, []string{"main.f0 /src/a.go:10"}, 0},
		{text + 5, []string{"main.f0 /src/a.go:11"}, 8},
		{text + 15, []string{"main.f0 /src/a.go:12"}, 0},
		{f1 + 5, []string{"main.f1 /src/a.go:21"}, 24},
		{f1 + 11, []string{"pkg.mid /src/b.go:30", "main.f1 /src/a.go:21"}, 24},
		{f1 + 16, []string{"pkg.leaf[...] /src/b.go:40", "pkg.mid /src/b.go:30", "main.f1 /src/a.go:21"}, 24},
		{f1 + 23, []string{"main.f1 /src/a.go:22"}, 24},
		{f1 + 25, []string{"main.f1 /src/a.go:23"}, 0},
		// The wrapper is left out when it calls an inlined frame, and
		// kept when the PC is in its own code.
		{f2 + 5, []string{"main.T.M /src/a.go:50"}, 8},
		{f2 + 1, []string{"main.(*T).M <autogenerated>:1"}, 0},
		{f2 + 12, nil, 0},
		{text - 1, nil, 0},
	}
	for _, ver := range []version{ver116, ver118, ver120} {
		for _, inHeader := range []bool{false, true} {
			if ver == ver116 && inHeader {
				continue
			}
			data := buildSynth(synthSample(ver, inHeader))
			for name, d := range map[string][]byte{"": data, "/no-sections": withoutSections(data)} {
				tab, err := Open(d)
				if err != nil {
					t.Fatalf("ver %d%s: Open: %v", ver, name, err)
				}
				for _, w := range want {
					got := frameStrings(tab.Frames(w.pc, nil))
					if len(got) == 0 {
						got = nil
					}
					sp, ok := tab.SPDelta(w.pc)
					if !reflect.DeepEqual(got, w.frames) || sp != w.sp || ok != (w.frames != nil) {
						t.Errorf("ver %d%s (text in header: %v) pc %#x: frames %q, sp %d %v; want %q, %d",
							ver, name, inHeader, w.pc, got, sp, ok, w.frames, w.sp)
					}
				}
			}
		}
	}
}
