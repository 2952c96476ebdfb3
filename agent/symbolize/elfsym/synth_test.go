package elfsym

import (
	"debug/elf"
	"encoding/binary"
	"slices"
	"testing"
)

// testSym is a symbol for buildELF.
type testSym struct {
	name        string
	value, size uint64
	typ         elf.SymType
	bind        elf.SymBind
	shndx       uint16
}

const (
	synthText = 0x1000 // vaddr and file offset of .text
	synthSize = 0x400
	textShndx = 1
	dataShndx = 2
)

// buildELF writes a small ELF64 executable with .text, .data, .symtab,
// .strtab and .shstrtab, for tests that need exact control of symbols.
func buildELF(syms []testSym) []byte {
	le := binary.LittleEndian
	out := make([]byte, synthText+synthSize+0x100) // .text, then .data
	copy(out, "\x7fELF\x02\x01\x01")
	le.PutUint16(out[16:], uint16(elf.ET_EXEC))
	le.PutUint16(out[18:], uint16(elf.EM_X86_64))
	le.PutUint64(out[32:], 64) // phoff
	le.PutUint16(out[52:], 64)
	le.PutUint16(out[54:], 56)
	le.PutUint16(out[56:], 1)
	le.PutUint16(out[58:], 64)
	ph := out[64:]
	le.PutUint32(ph, uint32(elf.PT_LOAD))
	le.PutUint32(ph[4:], uint32(elf.PF_R|elf.PF_X))
	le.PutUint64(ph[8:], synthText)
	le.PutUint64(ph[16:], synthText)
	le.PutUint64(ph[32:], synthSize)
	le.PutUint64(ph[40:], synthSize)

	strtab := []byte{0}
	symtab := make([]byte, 24) // the null symbol
	for _, s := range syms {
		rec := make([]byte, 24)
		le.PutUint32(rec, uint32(len(strtab)))
		rec[4] = byte(s.bind)<<4 | byte(s.typ)
		le.PutUint16(rec[6:], s.shndx)
		le.PutUint64(rec[8:], s.value)
		le.PutUint64(rec[16:], s.size)
		symtab = append(symtab, rec...)
		strtab = append(append(strtab, s.name...), 0)
	}
	shstrtab := []byte("\x00.text\x00.data\x00.symtab\x00.strtab\x00.shstrtab\x00")
	symOff := uint64(len(out))
	out = append(append(append(out, symtab...), strtab...), shstrtab...)
	strOff := symOff + uint64(len(symtab))
	shstrOff := strOff + uint64(len(strtab))
	shoff := uint64(len(out))
	le.PutUint64(out[40:], shoff)
	le.PutUint16(out[60:], 6)
	le.PutUint16(out[62:], 5)
	shdr := func(name uint32, typ elf.SectionType, flags elf.SectionFlag, addr, off, size uint64, link uint32, entsize uint64) {
		h := make([]byte, 64)
		le.PutUint32(h, name)
		le.PutUint32(h[4:], uint32(typ))
		le.PutUint64(h[8:], uint64(flags))
		le.PutUint64(h[16:], addr)
		le.PutUint64(h[24:], off)
		le.PutUint64(h[32:], size)
		le.PutUint32(h[40:], link)
		le.PutUint64(h[56:], entsize)
		out = append(out, h...)
	}
	shdr(0, elf.SHT_NULL, 0, 0, 0, 0, 0, 0)
	shdr(1, elf.SHT_PROGBITS, elf.SHF_ALLOC|elf.SHF_EXECINSTR, synthText, synthText, synthSize, 0, 0)
	shdr(7, elf.SHT_PROGBITS, elf.SHF_ALLOC|elf.SHF_WRITE, synthText+synthSize, synthText+synthSize, 0x100, 0, 0)
	shdr(13, elf.SHT_SYMTAB, 0, 0, symOff, uint64(len(symtab)), 4, 24)
	shdr(21, elf.SHT_STRTAB, 0, 0, strOff, uint64(len(strtab)), 0, 0)
	shdr(29, elf.SHT_STRTAB, 0, 0, shstrOff, uint64(len(shstrtab)), 0, 0)
	return out
}

func fn(name string, value, size uint64) testSym {
	return testSym{name: name, value: value, size: size, typ: elf.STT_FUNC, bind: elf.STB_GLOBAL, shndx: textShndx}
}

func with(s testSym, mut func(*testSym)) testSym {
	mut(&s)
	return s
}

var synthSyms = []testSym{
	fn("first", 0x1010, 0x10),
	// Aliases: the global, typed name with fewest underscores wins.
	with(fn("_int_alias", 0x1040, 0x20), func(s *testSym) { s.bind = elf.STB_LOCAL }),
	fn("__libc_malloc", 0x1040, 0x20),
	fn("malloc", 0x1040, 0x20),
	with(fn("weak_one", 0x1080, 0x10), func(s *testSym) { s.bind = elf.STB_WEAK }),
	fn("strong_one", 0x1080, 0x10),
	with(fn("label_first", 0x10a0, 0), func(s *testSym) { s.typ = elf.STT_NOTYPE }),
	fn("typed_second", 0x10a0, 0x10),
	// An untyped label inside a sized function must not hide it.
	fn("outer", 0x1100, 0x40),
	with(fn("inner_label", 0x1120, 0), func(s *testSym) { s.typ = elf.STT_NOTYPE }),
	// Untyped, size-less assembly function: extends to the next symbol.
	with(fn("asm_fn", 0x1180, 0), func(s *testSym) { s.typ = elf.STT_NOTYPE }),
	fn("after_asm", 0x11a0, 0x10),
	// Sized function followed by padding.
	fn("sized", 0x1200, 0x10),
	// A size-less preferred alias takes its local alias's size.
	fn("g_nosize", 0x1280, 0),
	with(fn("l_sized", 0x1280, 8), func(s *testSym) { s.bind = elf.STB_LOCAL }),
	// Nested function symbols: the outer one covers past the inner one.
	fn("nest_outer", 0x1300, 0x80),
	with(fn("nest_inner", 0x1320, 0x10), func(s *testSym) { s.bind = elf.STB_LOCAL }),
	fn("memcpy@@GLIBC_2.14", 0x1390, 0x10),
	fn("_ZN2ns5Class6methodEi", 0x13a0, 0x10),
	// Size-less last function: ends with its section.
	fn("tail", 0x13f0, 0),
	// Ignored: undefined, data, ARM mapping symbol, untyped data label, no name.
	with(fn("undefined", 0x1500, 0), func(s *testSym) { s.shndx = 0 }),
	with(fn("object", 0x1220, 8), func(s *testSym) { s.typ = elf.STT_OBJECT }),
	with(fn("$x", 0x1230, 0), func(s *testSym) { s.typ = elf.STT_NOTYPE }),
	with(fn("data_label", 0x1410, 0), func(s *testSym) { s.typ = elf.STT_NOTYPE; s.shndx = dataShndx }),
	fn("", 0x1240, 4),
}

func TestSyntheticLookup(t *testing.T) {
	tests := []struct {
		pc    uint64
		name  string
		start uint64
	}{
		{0x1000, "", 0}, // below the first symbol
		{0x1010, "first", 0x1010},
		{0x101f, "first", 0x1010},
		{0x1020, "", 0}, // past first's size
		{0x1050, "malloc", 0x1040},
		{0x1080, "strong_one", 0x1080},
		{0x10a8, "typed_second", 0x10a0},
		{0x1130, "outer", 0x1100},
		{0x119f, "asm_fn", 0x1180},
		{0x11a0, "after_asm", 0x11a0},
		{0x1215, "", 0},
		{0x1224, "", 0}, // data object and nameless symbols are not code
		{0x1287, "g_nosize", 0x1280},
		{0x1288, "", 0},
		{0x1325, "nest_inner", 0x1320},
		{0x1340, "nest_outer", 0x1300},
		{0x1390, "memcpy", 0x1390},
		{0x13a4, "ns::Class::method(int)", 0x13a0},
		{0x13ff, "tail", 0x13f0},
		{0x1400, "", 0},
		{0x1500, "", 0},
		{^uint64(0), "", 0},
	}
	reversed := slices.Clone(synthSyms)
	slices.Reverse(reversed)
	for _, order := range [][]testSym{synthSyms, reversed} {
		f, err := Open(buildELF(order))
		if err != nil {
			t.Fatal(err)
		}
		syms := symbolsOf(t, f)
		if syms.Len() != 14 {
			t.Errorf("Len = %d, want 14", syms.Len())
		}
		for _, tt := range tests {
			name, start, ok := syms.Lookup(tt.pc)
			if name != tt.name || start != tt.start || ok != (tt.name != "") {
				t.Errorf("Lookup(%#x) = %q, %#x, %v; want %q, %#x", tt.pc, name, start, ok, tt.name, tt.start)
			}
		}
	}
}

func TestNoSymbols(t *testing.T) {
	f, err := Open(buildELF(nil))
	if err != nil {
		t.Fatal(err)
	}
	if f.HasSymtab() || f.HasSymbols() {
		t.Errorf("HasSymtab %v, HasSymbols %v for a table of only the null symbol", f.HasSymtab(), f.HasSymbols())
	}
	syms := symbolsOf(t, f)
	if _, _, ok := syms.Lookup(0x1010); ok || syms.Len() != 0 {
		t.Errorf("empty table: Len %d, Lookup ok %v", syms.Len(), ok)
	}
}
