package gopclntab

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
)

// version is the pclntab layout, named after the first Go release using it.
type version int

const (
	ver116 version = iota + 1 // Go 1.16, 1.17: absolute entry PCs and funcdata pointers
	ver118                    // Go 1.18, 1.19: entry offsets from text, funcdata offsets from go:func.*
	ver120                    // Go 1.20 and later: new _func.startLine, new inlinedCall layout
)

const (
	magic12  = 0xfffffffb
	magic116 = 0xfffffffa
	magic118 = 0xfffffff0
	magic120 = 0xfffffff1
)

// header is the decoded runtime.pcHeader plus the tables it points to, all
// sub-slices of the pclntab bytes.
type header struct {
	ver                                           version
	quantum                                       uint64
	nfunc                                         uint64
	textStart                                     uint64 // 0 when not recorded (Go 1.16/1.17, Go 1.26+)
	offsets                                       [5]uint64
	funcnametab, cutab, filetab, pctab, pclntable []byte
}

func magicVersion(m uint32) (version, error) {
	switch m {
	case magic120:
		return ver120, nil
	case magic118:
		return ver118, nil
	case magic116:
		return ver116, nil
	case magic12:
		return 0, fmt.Errorf("%w: Go 1.2-1.15 pclntab", ErrUnsupported)
	}
	return 0, fmt.Errorf("bad pclntab magic %#x", m)
}

// parseHeader decodes and sanity-checks the header at the start of tab.
func parseHeader(tab []byte) (*header, error) {
	if len(tab) < 16 {
		return nil, fmt.Errorf("pclntab of %d bytes is too short", len(tab))
	}
	ver, err := magicVersion(le.Uint32(tab))
	if err != nil {
		return nil, err
	}
	if tab[4] != 0 || tab[5] != 0 || (tab[6] != 1 && tab[6] != 2 && tab[6] != 4) || tab[7] != 8 {
		return nil, fmt.Errorf("bad pclntab header %x (want 64-bit pointers)", tab[4:8])
	}
	h := &header{ver: ver, quantum: uint64(tab[6])}
	words := 7 // nfunc, nfiles, then five table offsets
	if ver >= ver118 {
		words = 8 // textStart before the offsets
	}
	w := make([]uint64, words)
	for i := range w {
		v, ok := u64(tab, 8+8*uint64(i))
		if !ok {
			return nil, fmt.Errorf("pclntab header truncated at word %d", i)
		}
		w[i] = v
	}
	h.nfunc = w[0]
	if ver >= ver118 {
		h.textStart = w[2]
	}
	copy(h.offsets[:], w[words-5:])
	if err := h.slice(tab, uint64(8+8*words)); err != nil {
		return nil, err
	}
	return h, nil
}

// slice cuts the tables out of tab. Each table ends where the next one in
// memory starts, so that an offset into one cannot read another.
func (h *header) slice(tab []byte, hdrSize uint64) error {
	ends := make([]uint64, 0, 6)
	for i, off := range h.offsets {
		if off < hdrSize || off > uint64(len(tab)) {
			return fmt.Errorf("pclntab table %d at offset %#x is outside [%#x, %#x]", i, off, hdrSize, len(tab))
		}
		ends = append(ends, off)
	}
	ends = append(ends, uint64(len(tab)))
	sort.Slice(ends, func(i, j int) bool { return ends[i] < ends[j] })
	cut := func(off uint64) []byte {
		i := sort.Search(len(ends), func(i int) bool { return ends[i] > off })
		if i == len(ends) {
			return tab[off:off]
		}
		return tab[off:ends[i]]
	}
	h.funcnametab, h.cutab, h.filetab = cut(h.offsets[0]), cut(h.offsets[1]), cut(h.offsets[2])
	h.pctab = cut(h.offsets[3])
	// The function table runs to the end: in recent releases the
	// go:func.* data follows it and we never index past the functions.
	h.pclntable = tab[h.offsets[4]:]
	if h.nfunc == 0 || h.nfunc > uint64(len(h.pclntable))/h.functabFieldSize()/2 {
		return fmt.Errorf("pclntab claims %d functions in %d bytes of function table", h.nfunc, len(h.pclntable))
	}
	return nil
}

func (h *header) functabFieldSize() uint64 {
	if h.ver >= ver118 {
		return 4
	}
	return 8
}

// locatePclntab finds the pclntab and its virtual address: by section name
// when there is one, else by searching loaded segments for a valid header
// (section headers are optional at run time and some tools drop them).
func locatePclntab(e *elfFile) ([]byte, uint64, error) {
	for i := range e.sections {
		s := &e.sections[i]
		if !bytes.HasSuffix(s.name, []byte(".gopclntab")) {
			continue
		}
		b, ok := e.sectionData(s)
		if !ok {
			return nil, 0, fmt.Errorf("section %s at %#x+%#x is outside the file", s.name, s.off, s.size)
		}
		return b, s.addr, nil
	}
	return scanPclntab(e)
}

// maxHeaderCandidates bounds the headers checked when scanning, so a file
// full of magic numbers costs linear time; a real binary rarely has two.
const maxHeaderCandidates = 256

var headerMagics = [...][]byte{
	{0xf1, 0xff, 0xff, 0xff, 0, 0},
	{0xf0, 0xff, 0xff, 0xff, 0, 0},
	{0xfa, 0xff, 0xff, 0xff, 0, 0},
	{0xfb, 0xff, 0xff, 0xff, 0, 0},
}

func scanPclntab(e *elfFile) ([]byte, uint64, error) {
	var firstErr error
	tries := 0
	for _, s := range e.segs {
		seg := e.data[s.off : s.off+s.filesz]
		for _, m := range headerMagics {
			for i := 0; i < len(seg); {
				j := bytes.Index(seg[i:], m)
				if j < 0 {
					break
				}
				at := uint64(i + j)
				i += j + 1
				if (s.vaddr+at)%8 != 0 {
					continue // the linker aligns runtime.pcheader to a pointer
				}
				if tries++; tries > maxHeaderCandidates {
					break
				}
				err := plausible(seg[at:])
				if err == nil {
					return seg[at:], s.vaddr + at, nil
				}
				if firstErr == nil {
					firstErr = err
				}
			}
		}
	}
	if errors.Is(firstErr, ErrUnsupported) {
		return nil, 0, firstErr
	}
	if firstErr != nil {
		return nil, 0, fmt.Errorf("%w: no valid pclntab header found (first candidate: %v)", ErrNotGo, firstErr)
	}
	return nil, 0, fmt.Errorf("%w: no .gopclntab section or header", ErrNotGo)
}

// plausible checks a header found by scanning beyond its magic: random data
// or an unrelated constant must not pass as a function table.
func plausible(tab []byte) error {
	h, err := parseHeader(tab)
	if err != nil {
		return err
	}
	ft := newFunctab(h, 0)
	first, ok1 := ft.entry(0)
	last, ok2 := ft.entry(int(h.nfunc))
	if !ok1 || !ok2 || first >= last {
		return fmt.Errorf("function table is not sorted")
	}
	off, ok := ft.funcOff(0)
	if !ok || off >= uint64(len(h.pclntable)) {
		return fmt.Errorf("first function at %#x is outside the table", off)
	}
	return nil
}
