package gopclntab

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// A minimal ELF64 little-endian reader. debug/elf copies section data on
// Data() and builds full symbol tables; here we only need a few headers and
// must keep referencing the caller's (usually mmapped) bytes.

const (
	ehdrSize  = 64
	phdrSize  = 56
	shdrSize  = 64
	symSize   = 24
	relaSize  = 24
	ptLoad    = 1
	ptDynamic = 2
	pfW       = 2
	shtSymtab = 2
	shtRela   = 4
	shtNobits = 8
	shfAlloc  = 2

	dtNull    = 0
	dtRela    = 7
	dtRelasz  = 8
	rX8664Rel = 8 // R_X86_64_RELATIVE

	maxSegments = 32
)

var le = binary.LittleEndian

// segment maps a range of virtual addresses to bytes of the file.
type segment struct {
	vaddr, filesz, off uint64
	writable           bool
}

type section struct {
	name            []byte
	typ             uint32
	flags           uint64
	addr, off, size uint64
	link            uint32
}

type elfFile struct {
	data     []byte
	segs     []segment
	sections []section
	dynamic  segment // zero if absent
}

// u16/u32/u64 read at off, reporting false instead of panicking when the
// read would leave b; every offset in a file is untrusted.
func u16(b []byte, off uint64) (uint16, bool) {
	if off > uint64(len(b)) || uint64(len(b))-off < 2 {
		return 0, false
	}
	return le.Uint16(b[off:]), true
}

func u32(b []byte, off uint64) (uint32, bool) {
	if off > uint64(len(b)) || uint64(len(b))-off < 4 {
		return 0, false
	}
	return le.Uint32(b[off:]), true
}

func u64(b []byte, off uint64) (uint64, bool) {
	if off > uint64(len(b)) || uint64(len(b))-off < 8 {
		return 0, false
	}
	return le.Uint64(b[off:]), true
}

// sub returns b[off:off+n] or false if that is out of range.
func sub(b []byte, off, n uint64) ([]byte, bool) {
	if off > uint64(len(b)) || uint64(len(b))-off < n {
		return nil, false
	}
	return b[off : off+n], true
}

var errNotELF = errors.New("not an ELF file")

func parseELF(data []byte) (*elfFile, error) {
	if len(data) < ehdrSize || !bytes.HasPrefix(data, []byte("\x7fELF")) {
		return nil, errNotELF
	}
	if data[4] != 2 || data[5] != 1 {
		return nil, fmt.Errorf("ELF class %d, data encoding %d: only 64-bit little-endian is supported", data[4], data[5])
	}
	e := &elfFile{data: data}
	if err := e.readProgs(); err != nil {
		return nil, fmt.Errorf("read program headers: %w", err)
	}
	if err := e.readSections(); err != nil {
		return nil, fmt.Errorf("read section headers: %w", err)
	}
	if len(e.segs) == 0 {
		e.segsFromSections()
	}
	return e, nil
}

// table returns the location of an array of n entries of size entsize, as
// given by a header; it fails when the array does not fit in the file.
func (e *elfFile) table(off, n, entsize uint64) ([]byte, error) {
	if n > uint64(len(e.data))/entsize {
		return nil, fmt.Errorf("%d entries of %d bytes exceed the file", n, entsize)
	}
	b, ok := sub(e.data, off, n*entsize)
	if !ok {
		return nil, fmt.Errorf("table at %#x with %d entries is out of range", off, n)
	}
	return b, nil
}

func (e *elfFile) readProgs() error {
	phoff := le.Uint64(e.data[32:])
	phentsize, phnum := uint64(le.Uint16(e.data[54:])), uint64(le.Uint16(e.data[56:]))
	if phnum == 0 {
		return nil
	}
	if phentsize < phdrSize {
		return fmt.Errorf("program header size %d", phentsize)
	}
	tab, err := e.table(phoff, phnum, phentsize)
	if err != nil {
		return err
	}
	for i := uint64(0); i < phnum; i++ {
		p := tab[i*phentsize:]
		typ, flags := le.Uint32(p), le.Uint32(p[4:])
		s := segment{off: le.Uint64(p[8:]), vaddr: le.Uint64(p[16:]), filesz: le.Uint64(p[32:]), writable: flags&pfW != 0}
		if _, ok := sub(e.data, s.off, s.filesz); !ok {
			// A segment that extends past a truncated file still
			// maps the part that is present.
			if s.off > uint64(len(e.data)) {
				continue
			}
			s.filesz = uint64(len(e.data)) - s.off
		}
		switch typ {
		case ptLoad:
			// Real files have a handful; a corrupt one with thousands
			// would make every scan below quadratic.
			if len(e.segs) < maxSegments {
				e.segs = append(e.segs, s)
			}
		case ptDynamic:
			e.dynamic = s
		}
	}
	return nil
}

func (e *elfFile) readSections() error {
	shoff := le.Uint64(e.data[40:])
	shentsize, shnum := uint64(le.Uint16(e.data[58:])), uint64(le.Uint16(e.data[60:]))
	shstrndx := uint64(le.Uint16(e.data[62:]))
	if shoff == 0 {
		return nil
	}
	if shentsize < shdrSize {
		return fmt.Errorf("section header size %d", shentsize)
	}
	if shnum == 0 || shstrndx == 0xffff {
		// Extended numbering keeps the real values in section 0.
		s0, err := e.table(shoff, 1, shentsize)
		if err != nil {
			return err
		}
		if shnum == 0 {
			shnum = le.Uint64(s0[32:])
		}
		if shstrndx == 0xffff {
			shstrndx = uint64(le.Uint32(s0[40:]))
		}
	}
	tab, err := e.table(shoff, shnum, shentsize)
	if err != nil {
		return err
	}
	e.sections = make([]section, shnum)
	for i := range e.sections {
		p := tab[uint64(i)*shentsize:]
		e.sections[i] = section{
			typ: le.Uint32(p[4:]), flags: le.Uint64(p[8:]), addr: le.Uint64(p[16:]),
			off: le.Uint64(p[24:]), size: le.Uint64(p[32:]), link: le.Uint32(p[40:]),
		}
	}
	e.nameSections(tab, shentsize, shstrndx)
	return nil
}

// nameSections resolves section names; a bad string table leaves names
// empty rather than failing, since names are only hints for finding data.
func (e *elfFile) nameSections(tab []byte, shentsize, shstrndx uint64) {
	if shstrndx >= uint64(len(e.sections)) {
		return
	}
	strtab, ok := e.sectionData(&e.sections[shstrndx])
	if !ok {
		return
	}
	for i := range e.sections {
		e.sections[i].name = cstring(strtab, uint64(le.Uint32(tab[uint64(i)*shentsize:])))
	}
}

// segsFromSections stands in for missing program headers (e.g. relocatable
// or oddly post-processed files) so that addresses can still be mapped.
func (e *elfFile) segsFromSections() {
	for _, s := range e.sections {
		if s.flags&shfAlloc == 0 || s.typ == shtNobits {
			continue
		}
		if _, ok := sub(e.data, s.off, s.size); ok {
			e.segs = append(e.segs, segment{vaddr: s.addr, filesz: s.size, off: s.off})
		}
	}
}

// cstring returns the NUL-terminated string at off in b, or nil.
func cstring(b []byte, off uint64) []byte {
	if off >= uint64(len(b)) {
		return nil
	}
	b = b[off:]
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return nil
}

func (e *elfFile) sectionData(s *section) ([]byte, bool) {
	if s.typ == shtNobits {
		return nil, false
	}
	return sub(e.data, s.off, s.size)
}

func (e *elfFile) section(name string) *section {
	for i := range e.sections {
		if string(e.sections[i].name) == name {
			return &e.sections[i]
		}
	}
	return nil
}

// symbol returns the value of the first .symtab symbol called name.
func (e *elfFile) symbol(names ...string) (uint64, bool) {
	for i := range e.sections {
		s := &e.sections[i]
		if s.typ != shtSymtab || uint64(s.link) >= uint64(len(e.sections)) {
			continue
		}
		syms, ok1 := e.sectionData(s)
		strs, ok2 := e.sectionData(&e.sections[s.link])
		if !ok1 || !ok2 {
			continue
		}
		for off := uint64(0); off+symSize <= uint64(len(syms)); off += symSize {
			n := cstring(strs, uint64(le.Uint32(syms[off:])))
			for _, want := range names {
				if string(n) == want {
					return le.Uint64(syms[off+8:]), true
				}
			}
		}
	}
	return 0, false
}

// read returns n bytes at virtual address addr, if the file holds them.
func (e *elfFile) read(addr, n uint64) ([]byte, bool) {
	return readSegs(e.data, e.segs, addr, n)
}

func readSegs(data []byte, segs []segment, addr, n uint64) ([]byte, bool) {
	for _, s := range segs {
		if addr >= s.vaddr && addr-s.vaddr < s.filesz && s.filesz-(addr-s.vaddr) >= n {
			return sub(data, s.off+(addr-s.vaddr), n)
		}
	}
	return nil, false
}

// relas returns the dynamic relocation tables. Position-independent
// binaries may leave pointers zero in the file and carry them only as
// relocation addends.
func (e *elfFile) relas() [][]byte {
	var out [][]byte
	for i := range e.sections {
		s := &e.sections[i]
		if s.typ != shtRela || s.flags&shfAlloc == 0 {
			continue
		}
		if b, ok := e.sectionData(s); ok {
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		if b, ok := e.dynRela(); ok {
			out = append(out, b)
		}
	}
	return out
}

// dynRela finds the relocation table through PT_DYNAMIC, for files whose
// section headers were removed.
func (e *elfFile) dynRela() ([]byte, bool) {
	dyn, ok := sub(e.data, e.dynamic.off, e.dynamic.filesz)
	if !ok {
		return nil, false
	}
	var addr, size uint64
	for off := uint64(0); off+16 <= uint64(len(dyn)); off += 16 {
		tag, val := le.Uint64(dyn[off:]), le.Uint64(dyn[off+8:])
		switch tag {
		case dtNull:
			off = uint64(len(dyn))
		case dtRela:
			addr = val
		case dtRelasz:
			size = val
		}
	}
	if addr == 0 {
		return nil, false
	}
	return e.read(addr, size)
}

// ptr reads a pointer at addr, consulting relocs when the file leaves it 0.
func (e *elfFile) ptr(addr uint64, relocs [][]byte) (uint64, bool) {
	b, ok := e.read(addr, 8)
	if !ok {
		return 0, false
	}
	if v := le.Uint64(b); v != 0 {
		return v, true
	}
	for _, r := range relocs {
		for off := 0; off+relaSize <= len(r); off += relaSize {
			if le.Uint64(r[off:]) == addr && uint32(le.Uint64(r[off+8:])) == rX8664Rel {
				return le.Uint64(r[off+16:]), true
			}
		}
	}
	return 0, true
}
