package elfsym

import (
	"bytes"
	"debug/elf"
	"fmt"
	"math"
	"slices"
	"sort"
)

// Symbols is a sorted index of a file's function symbols. Per symbol it
// keeps 16 bytes; names stay in the file's string table until looked up.
// It is immutable, so safe for concurrent use.
type Symbols struct {
	syms   []sym
	strtab []byte
}

type sym struct {
	addr uint64
	size uint32 // 0 only for a last symbol of unknown extent: it has no end
	name uint32 // offset into strtab
}

// Meta bits kept per symbol while building the index only.
const (
	rankMask    = 3      // 0 global, 1 weak, 2 local or other binding
	metaNoType  = 1 << 2 // STT_NOTYPE: an assembly label, worse than STT_FUNC
	metaGuessed = 1 << 3 // st_size was 0: size is an upper bound, to be cut at the next symbol
)

// rawSym is a decoded Elf32_Sym or Elf64_Sym.
type rawSym struct {
	name  uint32
	info  uint8
	shndx uint16
	value uint64
	size  uint64
}

// Symbols indexes the function symbols of .symtab, or of .dynsym when there
// is no .symtab (stripped files): .symtab normally holds all of .dynsym.
// A file with neither yields an empty index.
func (f *File) Symbols() (*Symbols, error) {
	s, err := f.readSymbols(elf.SHT_SYMTAB, ".symtab")
	if err == nil && s.Len() > 0 {
		return s, nil
	}
	dyn, dynErr := f.readSymbols(elf.SHT_DYNSYM, ".dynsym")
	if dynErr == nil && (dyn.Len() > 0 || err == nil) {
		return dyn, nil
	}
	if err != nil {
		return nil, err
	}
	return nil, dynErr
}

func (f *File) readSymbols(typ elf.SectionType, what string) (*Symbols, error) {
	i := slices.IndexFunc(f.sections, func(s section) bool { return s.typ == typ })
	if i < 0 {
		return &Symbols{}, nil
	}
	tab, strtab, err := f.symbolTable(f.sections[i])
	if err != nil {
		return nil, fmt.Errorf("read section %s: %w", what, err)
	}
	return f.index(tab, strtab), nil
}

// symbolTable returns the bytes of a symbol table and of its string table.
func (f *File) symbolTable(s section) (tab, strtab []byte, err error) {
	esz := f.symSize()
	if s.entsize != 0 && s.entsize != esz {
		return nil, nil, fmt.Errorf("entry size %d, want %d", s.entsize, esz)
	}
	tab, ok := f.dataOf(s)
	if !ok {
		return nil, nil, fmt.Errorf("%d bytes at offset %#x: outside the file", s.size, s.off)
	}
	if uint64(s.link) >= uint64(len(f.sections)) {
		return nil, nil, fmt.Errorf("string table index %d out of range", s.link)
	}
	strtab, ok = f.dataOf(f.sections[s.link])
	if !ok {
		return nil, nil, fmt.Errorf("string table (section %d) outside the file", s.link)
	}
	return tab, strtab, nil
}

func (f *File) symSize() uint64 {
	if f.is64 {
		return 24
	}
	return 16
}

func (f *File) decodeSym(r []byte) rawSym {
	o := f.order
	if f.is64 {
		return rawSym{name: o.Uint32(r), info: r[4], shndx: o.Uint16(r[6:]), value: o.Uint64(r[8:]), size: o.Uint64(r[16:])}
	}
	return rawSym{name: o.Uint32(r), value: uint64(o.Uint32(r[4:])), size: uint64(o.Uint32(r[8:])), info: r[12], shndx: o.Uint16(r[14:])}
}

// index builds the sorted, de-duplicated index. Two passes over the table
// size the slices exactly, so a big .symtab costs 17 bytes per function.
func (f *File) index(tab, strtab []byte) *Symbols {
	esz := int(f.symSize())
	n := 0
	for rec := range slices.Chunk(tab, esz) {
		if len(rec) == esz {
			if _, _, ok := f.keep(f.decodeSym(rec), strtab); ok {
				n++
			}
		}
	}
	b := symBuilder{syms: make([]sym, 0, n), meta: make([]uint8, 0, n), strtab: strtab}
	for rec := range slices.Chunk(tab, esz) {
		// The cap guards against a file rewritten under a shared mapping
		// between the passes.
		if len(rec) != esz || len(b.syms) == n {
			continue
		}
		if s, m, ok := f.keep(f.decodeSym(rec), strtab); ok {
			b.syms = append(b.syms, s)
			b.meta = append(b.meta, m)
		}
	}
	b.sort()
	b.dedup()
	b.fillSizes()
	syms := b.syms
	if cap(syms)-len(syms) > len(syms)/8 {
		syms = slices.Clone(syms) // give back what aliases and labels freed
	}
	return &Symbols{syms: syms, strtab: strtab}
}

// keep decides whether a symbol names code, and how good a name it is.
// It reads no more of the name than its first two bytes: a large table's
// names are read in full only when sorting aliases and when looked up.
func (f *File) keep(r rawSym, strtab []byte) (sym, uint8, bool) {
	name := prefix2(strtab, uint64(r.name))
	if len(name) == 0 || r.shndx == uint16(elf.SHN_UNDEF) || r.value == 0 {
		return sym{}, 0, false
	}
	var meta uint8
	switch elf.ST_TYPE(r.info) {
	case elf.STT_FUNC, elf.STT_GNU_IFUNC:
	case elf.STT_NOTYPE:
		// Hand-written assembly often leaves functions untyped; keep those
		// in executable sections, except ARM mapping symbols and local labels.
		if !f.isExec(r.shndx) || name[0] == '$' || bytes.HasPrefix(name, []byte(".L")) {
			return sym{}, 0, false
		}
		meta |= metaNoType
	default:
		return sym{}, 0, false
	}
	switch elf.ST_BIND(r.info) {
	case elf.STB_GLOBAL:
	case elf.STB_WEAK:
		meta |= 1
	default:
		meta |= 2
	}
	addr := r.value
	if f.machine == elf.EM_ARM {
		addr &^= 1 // the Thumb bit is not part of the address
	}
	size := r.size
	if size == 0 {
		meta |= metaGuessed
		size = f.sectionEnd(r.shndx, addr)
	}
	return sym{addr: addr, size: uint32(min(size, math.MaxUint32)), name: r.name}, meta, true
}

func (f *File) isExec(shndx uint16) bool {
	return int(shndx) < len(f.sections) && f.sections[shndx].flags&elf.SHF_EXECINSTR != 0
}

// sectionEnd bounds a size-less symbol by the end of its section; 0 if unknown.
func (f *File) sectionEnd(shndx uint16, addr uint64) uint64 {
	if int(shndx) >= len(f.sections) || shndx >= uint16(elf.SHN_LORESERVE) {
		return 0
	}
	s := f.sections[shndx]
	if addr < s.addr || addr-s.addr >= s.size {
		return 0
	}
	return s.size - (addr - s.addr)
}

// Len reports how many distinct function addresses the index holds.
func (s *Symbols) Len() int { return len(s.syms) }

// Lookup returns the demangled name and start address of the function
// containing vaddr, an ELF virtual address (see File.FileOffsetToVaddr).
// Addresses past a symbol's st_size, in padding or PLT stubs, are not found.
func (s *Symbols) Lookup(vaddr uint64) (name string, start uint64, ok bool) {
	j, ok := s.find(vaddr)
	if !ok {
		return "", 0, false
	}
	return s.name(s.syms[j]), s.syms[j].addr, true
}

// Start is Lookup without the name, which costs a demangling: the start
// address of the function containing vaddr.
func (s *Symbols) Start(vaddr uint64) (start uint64, ok bool) {
	j, ok := s.find(vaddr)
	if !ok {
		return 0, false
	}
	return s.syms[j].addr, true
}

func (s *Symbols) find(vaddr uint64) (int, bool) {
	i := sort.Search(len(s.syms), func(i int) bool { return s.syms[i].addr > vaddr }) - 1
	// A few steps back find a function enclosing a smaller symbol that
	// vaddr is already past (nested local entry points).
	for j := i; j >= 0 && j > i-4; j-- {
		sy := s.syms[j]
		if vaddr-sy.addr < uint64(sy.size) || (sy.size == 0 && j == i) {
			return j, true
		}
	}
	return 0, false
}

// name reads a symbol's name from the string table and demangles it. A
// symbol version (memcpy@@GLIBC_2.14 in some .symtab) is dropped.
func (s *Symbols) name(sy sym) string {
	raw := cstring(s.strtab, uint64(sy.name))
	if i := bytes.IndexByte(raw, '@'); i > 0 {
		raw = raw[:i]
	}
	return Demangle(string(raw))
}
