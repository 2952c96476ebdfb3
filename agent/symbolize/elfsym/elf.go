package elfsym

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// ErrNotELF is returned by Open for data that does not start with an ELF
// header, so callers can quietly skip mapped fonts, caches and the like.
var ErrNotELF = errors.New("not an ELF file")

// maxHeaders bounds the section and program header counts: real executables
// and libraries have a few dozen, and each costs memory even in a bogus file.
const maxHeaders = 1 << 16

// pnXNum in e_phnum says the program header count is in section 0's sh_info.
const pnXNum = 0xffff

// Segment is one PT_LOAD program header: how a range of the file is mapped.
type Segment struct {
	Off    uint64 // p_offset
	Vaddr  uint64 // p_vaddr
	Filesz uint64
	Memsz  uint64
	Flags  elf.ProgFlag
}

// section keeps only what symbolization needs from a section header.
type section struct {
	name    uint32 // offset in .shstrtab
	typ     elf.SectionType
	link    uint32
	info    uint32
	flags   elf.SectionFlag
	addr    uint64
	off     uint64
	size    uint64
	align   uint64
	entsize uint64
}

// note is a PT_NOTE segment's file range.
type note struct {
	off, size, align uint64
}

// File is a parsed ELF file. It references the bytes given to Open.
type File struct {
	data     []byte
	order    binary.ByteOrder
	is64     bool
	typ      elf.Type
	machine  elf.Machine
	loads    []Segment
	notes    []note
	sections []section
	shstrtab []byte
}

// header is the part of the ELF header that locates the other tables.
type header struct {
	phoff, shoff         uint64
	phentsize, phnum     uint64
	shentsize, shnum     uint64
	shstrndx             uint64
	wantPhent, wantShent uint64
}

// Open parses the ELF, program and section headers of data, the whole file.
// data is retained, not copied. It fails on non-ELF or truncated input.
func Open(data []byte) (*File, error) {
	f := &File{data: data}
	h, err := f.parseHeader()
	if err != nil {
		return nil, err
	}
	if err := f.parseProgs(h); err != nil {
		return nil, err
	}
	if err := f.parseSections(h); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *File) parseHeader() (header, error) {
	d := f.data
	if len(d) < elf.EI_NIDENT || !bytes.HasPrefix(d, []byte(elf.ELFMAG)) {
		return header{}, ErrNotELF
	}
	switch elf.Data(d[elf.EI_DATA]) {
	case elf.ELFDATA2LSB:
		f.order = binary.LittleEndian
	case elf.ELFDATA2MSB:
		f.order = binary.BigEndian
	default:
		return header{}, fmt.Errorf("unknown ELF data encoding %d", d[elf.EI_DATA])
	}
	switch elf.Class(d[elf.EI_CLASS]) {
	case elf.ELFCLASS64:
		f.is64 = true
		return f.parseHeader64()
	case elf.ELFCLASS32:
		return f.parseHeader32()
	}
	return header{}, fmt.Errorf("unknown ELF class %d", d[elf.EI_CLASS])
}

func (f *File) parseHeader64() (header, error) {
	const size = 64
	if len(f.data) < size {
		return header{}, fmt.Errorf("ELF header: truncated at %d bytes", len(f.data))
	}
	d, o := f.data, f.order
	f.typ = elf.Type(o.Uint16(d[16:]))
	f.machine = elf.Machine(o.Uint16(d[18:]))
	return header{
		phoff: o.Uint64(d[32:]), shoff: o.Uint64(d[40:]),
		phentsize: uint64(o.Uint16(d[54:])), phnum: uint64(o.Uint16(d[56:])),
		shentsize: uint64(o.Uint16(d[58:])), shnum: uint64(o.Uint16(d[60:])),
		shstrndx:  uint64(o.Uint16(d[62:])),
		wantPhent: 56, wantShent: 64,
	}, nil
}

func (f *File) parseHeader32() (header, error) {
	const size = 52
	if len(f.data) < size {
		return header{}, fmt.Errorf("ELF header: truncated at %d bytes", len(f.data))
	}
	d, o := f.data, f.order
	f.typ = elf.Type(o.Uint16(d[16:]))
	f.machine = elf.Machine(o.Uint16(d[18:]))
	return header{
		phoff: uint64(o.Uint32(d[28:])), shoff: uint64(o.Uint32(d[32:])),
		phentsize: uint64(o.Uint16(d[42:])), phnum: uint64(o.Uint16(d[44:])),
		shentsize: uint64(o.Uint16(d[46:])), shnum: uint64(o.Uint16(d[48:])),
		shstrndx:  uint64(o.Uint16(d[50:])),
		wantPhent: 32, wantShent: 40,
	}, nil
}

// table returns n records of size esz at off, checking they lie in the file.
func (f *File) table(what string, off, n, esz, want uint64) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	if esz != want {
		return nil, fmt.Errorf("%s: entry size %d, want %d", what, esz, want)
	}
	var b []byte
	ok := n <= uint64(len(f.data))/esz // keeps n*esz from overflowing
	if ok {
		b, ok = sub(f.data, off, n*esz)
	}
	if !ok {
		return nil, fmt.Errorf("%s: %d entries at offset %#x: truncated file", what, n, off)
	}
	return b, nil
}

func (f *File) parseProgs(h header) error {
	if h.phnum == pnXNum && h.shoff != 0 {
		// The real count lives in section 0's sh_info.
		s0, err := f.section0(h)
		if err != nil {
			return err
		}
		h.phnum = uint64(s0.info)
	}
	if h.phnum > maxHeaders {
		return fmt.Errorf("program headers: %d entries, at most %d supported", h.phnum, maxHeaders)
	}
	tbl, err := f.table("program headers", h.phoff, h.phnum, h.phentsize, h.wantPhent)
	if err != nil {
		return err
	}
	for rec := range slices.Chunk(tbl, int(h.wantPhent)) {
		p := f.prog(rec)
		switch p.typ {
		case elf.PT_LOAD:
			f.loads = append(f.loads, p.Segment)
		case elf.PT_NOTE:
			f.notes = append(f.notes, note{off: p.Off, size: p.Filesz, align: p.align})
		}
	}
	return nil
}

type prog struct {
	Segment
	typ   elf.ProgType
	align uint64
}

func (f *File) prog(r []byte) prog {
	o := f.order
	if f.is64 {
		return prog{typ: elf.ProgType(o.Uint32(r)), align: o.Uint64(r[48:]), Segment: Segment{
			Flags: elf.ProgFlag(o.Uint32(r[4:])), Off: o.Uint64(r[8:]), Vaddr: o.Uint64(r[16:]),
			Filesz: o.Uint64(r[32:]), Memsz: o.Uint64(r[40:]),
		}}
	}
	return prog{typ: elf.ProgType(o.Uint32(r)), align: uint64(o.Uint32(r[28:])), Segment: Segment{
		Off: uint64(o.Uint32(r[4:])), Vaddr: uint64(o.Uint32(r[8:])),
		Filesz: uint64(o.Uint32(r[16:])), Memsz: uint64(o.Uint32(r[20:])), Flags: elf.ProgFlag(o.Uint32(r[24:])),
	}}
}

func (f *File) shdr(r []byte) section {
	o := f.order
	s := section{name: o.Uint32(r), typ: elf.SectionType(o.Uint32(r[4:]))}
	if f.is64 {
		s.flags = elf.SectionFlag(o.Uint64(r[8:]))
		s.addr, s.off, s.size = o.Uint64(r[16:]), o.Uint64(r[24:]), o.Uint64(r[32:])
		s.link, s.info = o.Uint32(r[40:]), o.Uint32(r[44:])
		s.align, s.entsize = o.Uint64(r[48:]), o.Uint64(r[56:])
		return s
	}
	s.flags = elf.SectionFlag(o.Uint32(r[8:]))
	s.addr, s.off, s.size = uint64(o.Uint32(r[12:])), uint64(o.Uint32(r[16:])), uint64(o.Uint32(r[20:]))
	s.link, s.info = o.Uint32(r[24:]), o.Uint32(r[28:])
	s.align, s.entsize = uint64(o.Uint32(r[32:])), uint64(o.Uint32(r[36:]))
	return s
}

// section0 reads the first section header, which holds the real counts of
// files with too many sections or program headers for the ELF header.
func (f *File) section0(h header) (section, error) {
	tbl, err := f.table("section header 0", h.shoff, 1, h.shentsize, h.wantShent)
	if err != nil {
		return section{}, err
	}
	return f.shdr(tbl), nil
}

func (f *File) parseSections(h header) error {
	if h.shoff == 0 {
		return nil // sstrip-ed or otherwise section-less: program headers still work
	}
	if h.shnum == 0 || h.shstrndx == uint64(elf.SHN_XINDEX) {
		s0, err := f.section0(h)
		if err != nil {
			return err
		}
		if h.shnum == 0 {
			h.shnum = s0.size
		}
		if h.shstrndx == uint64(elf.SHN_XINDEX) {
			h.shstrndx = uint64(s0.link)
		}
	}
	if h.shnum > maxHeaders {
		return fmt.Errorf("section headers: %d entries, at most %d supported", h.shnum, maxHeaders)
	}
	tbl, err := f.table("section headers", h.shoff, h.shnum, h.shentsize, h.wantShent)
	if err != nil {
		return err
	}
	if h.shstrndx < h.shnum {
		f.shstrtab, _ = f.dataOf(f.shdr(tbl[h.shstrndx*h.wantShent:]))
	}
	f.sections = make([]section, 0, h.shnum)
	for rec := range slices.Chunk(tbl, int(h.wantShent)) {
		f.sections = append(f.sections, f.shdr(rec))
	}
	return nil
}

// dataOf returns a section's bytes in the file; false for SHT_NOBITS and
// for ranges outside the file.
func (f *File) dataOf(s section) ([]byte, bool) {
	if s.typ == elf.SHT_NOBITS || s.typ == elf.SHT_NULL {
		return nil, false
	}
	return sub(f.data, s.off, s.size)
}

func (f *File) sectionByName(name string) (section, bool) {
	for _, s := range f.sections {
		if string(cstring(f.shstrtab, uint64(s.name))) == name {
			return s, true
		}
	}
	return section{}, false
}

// Section returns the file bytes and load address of the first section
// called name (for example .gopclntab); ok is false if there is none or it
// has no bytes in the file. The bytes alias the data given to Open.
func (f *File) Section(name string) (data []byte, addr uint64, ok bool) {
	s, found := f.sectionByName(name)
	if !found {
		return nil, 0, false
	}
	data, ok = f.dataOf(s)
	return data, s.addr, ok
}

// Machine reports the target architecture, which picks the prologue rules.
func (f *File) Machine() elf.Machine { return f.machine }

// Type reports ET_EXEC, ET_DYN (PIE executables and libraries), and so on.
func (f *File) Type() elf.Type { return f.typ }

// Loads returns a copy of the PT_LOAD segments.
func (f *File) Loads() []Segment { return append([]Segment(nil), f.loads...) }

// HasSymtab reports whether the file has a non-empty .symtab, the full
// symbol table; without it only exported .dynsym names are available and a
// separate debug file is worth looking for.
func (f *File) HasSymtab() bool { return f.hasTable(elf.SHT_SYMTAB) }

// HasSymbols reports whether the file has a non-empty .symtab or .dynsym,
// that is, whether Symbols can find anything at all.
func (f *File) HasSymbols() bool {
	return f.hasTable(elf.SHT_SYMTAB) || f.hasTable(elf.SHT_DYNSYM)
}

// hasTable reports whether a symbol table of typ holds more than the null
// symbol every table starts with.
func (f *File) hasTable(typ elf.SectionType) bool {
	for _, s := range f.sections {
		if s.typ == typ && s.size > f.symSize() {
			return true
		}
	}
	return false
}

// IsGo reports whether the file was built by the Go toolchain, whose
// functions are better symbolized and unwound through .gopclntab.
func (f *File) IsGo() bool {
	for _, name := range []string{".gopclntab", ".note.go.buildid", ".go.buildinfo"} {
		if _, ok := f.sectionByName(name); ok {
			return true
		}
	}
	return f.GoBuildID() != ""
}
