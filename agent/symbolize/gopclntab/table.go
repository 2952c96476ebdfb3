// Package gopclntab reads the function table (pclntab) of Go binaries, stripped
// or not, and resolves PCs to functions, files and lines with inlined calls as frames.
package gopclntab

import (
	"errors"
	"fmt"
	"sync"
)

var (
	// ErrNotGo reports that a file has no Go function table.
	ErrNotGo = errors.New("gopclntab: not a Go binary")
	// ErrUnsupported reports a Go function table in a format this package
	// does not read (Go 1.15 and older).
	ErrUnsupported = errors.New("gopclntab: unsupported pclntab version")
)

// Table is the function table of one Go binary. It references the bytes given
// to Open and decodes functions only when asked; it is safe for concurrent use.
type Table struct {
	data      []byte
	segs      []segment
	hdr       *header
	ft        functab
	pclnAddr  uint64 // virtual address of the function table (hdr.pclntable)
	gofunc    uint64 // base of inline tree offsets (1.18+); 0 if unknown
	hasGofunc bool

	wrapperOnce sync.Once
	wrapperID   uint8 // see wrapperFuncID
}

// Open reads the pclntab of the ELF file data, which must stay valid and
// unchanged for as long as the Table is used (an mmapped file is fine).
// Errors wrap ErrNotGo for non-ELF data or an ELF file without a pclntab,
// and ErrUnsupported for tables written by Go 1.15 and older.
func Open(data []byte) (*Table, error) {
	e, err := parseELF(data)
	if err != nil {
		if errors.Is(err, errNotELF) {
			return nil, fmt.Errorf("%w: %w", ErrNotGo, err)
		}
		return nil, err
	}
	tab, tabAddr, err := locatePclntab(e)
	if err != nil {
		return nil, err
	}
	h, err := parseHeader(tab)
	if err != nil {
		return nil, fmt.Errorf("parse pclntab header at %#x: %w", tabAddr, err)
	}
	t := &Table{data: data, segs: e.segs, hdr: h, pclnAddr: tabAddr + h.offsets[4]}
	textStart, err := t.resolveText(e, tabAddr)
	if err != nil {
		return nil, err
	}
	t.ft = newFunctab(h, textStart)
	if err := t.checkFunctab(); err != nil {
		return nil, err
	}
	return t, nil
}

// resolveText finds the base of function entry offsets and, on the way,
// the base of inline tree offsets; both live in moduledata.
func (t *Table) resolveText(e *elfFile, tabAddr uint64) (uint64, error) {
	if t.hdr.ver < ver118 {
		return 0, nil
	}
	md, mdOK := findModuledata(e, t.hdr, tabAddr)
	if mdOK && md.gofunc != 0 {
		t.gofunc, t.hasGofunc = md.gofunc, true
	} else if v, ok := e.symbol("go:func.*", "go.func.*"); ok {
		t.gofunc, t.hasGofunc = v, true
	}
	switch {
	case t.hdr.textStart != 0:
		return t.hdr.textStart, nil
	case mdOK:
		return md.text, nil
	}
	if v, ok := e.symbol("runtime.text"); ok {
		return v, nil
	}
	if s := e.section(".text"); s != nil {
		// Right for internally linked binaries; with external linking C
		// code may precede runtime.text, but then moduledata is found.
		return s.addr, nil
	}
	return 0, fmt.Errorf("cannot find the start of text for pclntab at %#x", tabAddr)
}

// checkFunctab rejects tables whose bounds are unusable; the rest of the
// entries are checked when a lookup reads them.
func (t *Table) checkFunctab() error {
	first, ok1 := t.ft.entry(0)
	end, ok2 := t.ft.entry(t.ft.nfunc)
	if !ok1 || !ok2 || first >= end {
		return fmt.Errorf("read functab bounds of %d functions: got [%#x, %#x)", t.ft.nfunc, first, end)
	}
	return nil
}

// TextRange returns the addresses covered by the function table.
func (t *Table) TextRange() (start, end uint64) {
	start, _ = t.ft.entry(0)
	end, _ = t.ft.entry(t.ft.nfunc)
	return start, end
}

// NumFuncs returns the number of functions in the table.
func (t *Table) NumFuncs() int { return t.ft.nfunc }

// Format returns the Go releases whose pclntab layout the binary uses.
func (t *Table) Format() string {
	switch t.hdr.ver {
	case ver116:
		return "go1.16-1.17"
	case ver118:
		return "go1.18-1.19"
	}
	return "go1.20+"
}
