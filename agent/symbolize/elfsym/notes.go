package elfsym

import (
	"debug/elf"
	"encoding/hex"
)

const (
	ntGNUBuildID = 3 // NT_GNU_BUILD_ID
	ntGoBuildID  = 4 // the Go linker's note type for its build ID
	maxBuildID   = 64
)

// BuildID returns the hex GNU build ID (.note.gnu.build-id), or "" if the
// file has none. It looks at PT_NOTE segments first, which survive sstrip.
func (f *File) BuildID() string {
	desc := f.findNote("GNU", ntGNUBuildID)
	if len(desc) == 0 || len(desc) > maxBuildID {
		return ""
	}
	return hex.EncodeToString(desc)
}

// GoBuildID returns the Go toolchain's build ID (.note.go.buildid), or "".
func (f *File) GoBuildID() string {
	desc := f.findNote("Go", ntGoBuildID)
	if len(desc) > 4*maxBuildID {
		return ""
	}
	return string(desc)
}

// DebugLink returns the file name and CRC-32 from .gnu_debuglink, which
// names the separate debug file of a stripped binary.
func (f *File) DebugLink() (name string, crc uint32, ok bool) {
	b, _, found := f.Section(".gnu_debuglink")
	if !found {
		return "", 0, false
	}
	n := cstring(b, 0)
	crcOff := (uint64(len(n)) + 1 + 3) &^ 3
	c, found := sub(b, crcOff, 4)
	if len(n) == 0 || !found {
		return "", 0, false
	}
	return string(n), f.order.Uint32(c), true
}

// findNote returns the descriptor of the first note with the given owner
// name and type, searching PT_NOTE segments and then SHT_NOTE sections.
func (f *File) findNote(owner string, typ uint32) []byte {
	for _, n := range f.notes {
		if b, ok := sub(f.data, n.off, n.size); ok {
			if desc := f.noteIn(b, n.align, owner, typ); desc != nil {
				return desc
			}
		}
	}
	for _, s := range f.sections {
		if s.typ != elf.SHT_NOTE {
			continue
		}
		if b, ok := f.dataOf(s); ok {
			if desc := f.noteIn(b, s.align, owner, typ); desc != nil {
				return desc
			}
		}
	}
	return nil
}

// noteIn walks the note entries of b. Entries are 4-byte aligned except in
// notes whose segment or section is 8-byte aligned (.note.gnu.property).
func (f *File) noteIn(b []byte, align uint64, owner string, typ uint32) []byte {
	if align != 8 {
		align = 4
	}
	pad := func(n uint64) uint64 { return (n + align - 1) &^ (align - 1) }
	for len(b) >= 12 {
		namesz, descsz := uint64(f.order.Uint32(b)), uint64(f.order.Uint32(b[4:]))
		t := f.order.Uint32(b[8:])
		name, ok := sub(b, 12, namesz)
		if !ok {
			return nil
		}
		descOff := 12 + pad(namesz)
		desc, ok := sub(b, descOff, descsz)
		if !ok {
			return nil
		}
		if t == typ && string(trimNUL(name)) == owner {
			return desc
		}
		next := descOff + pad(descsz)
		if next > uint64(len(b)) {
			return nil
		}
		b = b[next:]
	}
	return nil
}

func trimNUL(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}

// FileOffsetToVaddr converts a file offset, as derived from /proc/PID/maps
// (addr - start + pgoff), into the virtual address that symbols use.
func (f *File) FileOffsetToVaddr(off uint64) (uint64, bool) {
	for _, s := range f.loads {
		if off >= s.Off && off-s.Off < s.Filesz {
			return s.Vaddr + (off - s.Off), true
		}
	}
	// The kernel maps whole pages, so a mapping may start a little before
	// the segment's p_offset (linkers such as lld pack segments tightly).
	const page = 4096
	for _, s := range f.loads {
		if start := s.Off &^ (page - 1); off >= start && off < s.Off && s.Vaddr >= s.Off-off {
			return s.Vaddr - (s.Off - off), true
		}
	}
	return 0, false
}

// Code returns up to n bytes of the loaded image at vaddr, for prologue
// analysis; nil when vaddr has no bytes in this file (out of range, .bss,
// or the code stripped into another file). The bytes alias Open's data.
func (f *File) Code(vaddr uint64, n int) []byte {
	if n <= 0 {
		return nil
	}
	off, avail, ok := f.vaddrToOffset(vaddr)
	if !ok {
		return nil
	}
	b, _ := sub(f.data, off, min(uint64(n), avail))
	return b
}

// vaddrToOffset finds the file offset of vaddr and how many bytes follow it.
// Section headers are preferred when present: separate debug files keep the
// program headers but replace the code with SHT_NOBITS sections.
func (f *File) vaddrToOffset(vaddr uint64) (off, avail uint64, ok bool) {
	if len(f.sections) > 0 {
		for _, s := range f.sections {
			// .tbss overlaps the sections after it: it is a template, not memory.
			if s.flags&elf.SHF_ALLOC == 0 || s.flags&elf.SHF_TLS != 0 || vaddr < s.addr || vaddr-s.addr >= s.size {
				continue
			}
			if _, ok := f.dataOf(s); !ok {
				return 0, 0, false
			}
			return s.off + (vaddr - s.addr), s.size - (vaddr - s.addr), true
		}
		return 0, 0, false
	}
	for _, s := range f.loads {
		if vaddr >= s.Vaddr && vaddr-s.Vaddr < s.Filesz {
			return s.Off + (vaddr - s.Vaddr), s.Filesz - (vaddr - s.Vaddr), true
		}
	}
	return 0, 0, false
}
