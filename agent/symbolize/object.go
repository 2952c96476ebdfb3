package symbolize

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/flightrec/flightrec/agent/symbolize/elfsym"
	"github.com/flightrec/flightrec/agent/symbolize/gopclntab"
	"github.com/flightrec/flightrec/agent/unwind"
)

// Object is one executable or library, mapped read-only. Its symbol sources
// are parsed on first use: most objects a process maps are never sampled.
type Object struct {
	Path    string // as first seen in a mapping
	BuildID string // GNU build ID, else Go's, else ""

	data  []byte // the whole file, mmapped (or a copy, for the vDSO)
	unmap func() error
	elf   *elfsym.File
	refs  int // guarded by the cache's lock

	load     sync.Once
	pcln     *gopclntab.Table // Go functions, inlined calls included
	symsOnce sync.Once
	syms     *elfsym.Symbols // ELF symbols: own, else from a separate debug file
	debug    *Object

	mu     sync.Mutex
	frames map[uint64][]Frame // memo of resolved addresses, bounded
	slots  map[uint64]slot    // memo of ReturnSlot: asked once per sample
}

type slot struct {
	off uint64
	ok  bool
}

// maxMemo bounds each object's memo of resolved addresses; hot code is a few
// hundred addresses, so this only guards against pathological churn.
const maxMemo = 4096

// openObject maps the file at path read-only.
func openObject(path, display string) (*Object, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", display, err)
	}
	if st.Size() == 0 || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular non-empty file", display)
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_PRIVATE)
	if err != nil {
		return nil, fmt.Errorf("mmap %s: %w", display, err)
	}
	o, err := newObject(display, data, func() error { return unix.Munmap(data) })
	if err != nil {
		unix.Munmap(data)
		return nil, err
	}
	return o, nil
}

func newObject(display string, data []byte, unmap func() error) (*Object, error) {
	ef, err := elfsym.Open(data)
	if err != nil {
		return nil, fmt.Errorf("parse ELF %s: %w", display, err)
	}
	id := ef.BuildID()
	if id == "" {
		id = ef.GoBuildID()
	}
	return &Object{Path: display, BuildID: id, data: data, unmap: unmap, elf: ef}, nil
}

func (o *Object) close() error {
	var errs []error
	if o.debug != nil {
		errs = append(errs, o.debug.close())
	}
	if o.unmap != nil {
		errs = append(errs, o.unmap())
		o.unmap = nil
	}
	return errors.Join(errs...)
}

// sources opens Go's function table once; ELF symbols wait for symbols().
func (o *Object) sources() {
	o.load.Do(func() {
		if o.elf.IsGo() {
			if t, err := gopclntab.Open(o.data); err == nil {
				o.pcln = t
			}
		}
	})
}

// symbols indexes the ELF symbol table on first need: a Go binary only
// needs it for addresses outside Go's table (cgo), and indexing a large
// symbol table touches every page of it. root is the owning process's root
// directory, where a separate debug file would live.
func (o *Object) symbols(root string) *elfsym.Symbols {
	o.symsOnce.Do(func() {
		if o.elf.HasSymbols() {
			o.syms, _ = o.elf.Symbols()
		}
		if o.syms == nil || !o.elf.HasSymtab() {
			o.loadDebugFile(root)
		}
		o.trim() // the index is on the heap; the table's pages can go
	})
	return o.syms
}

// trim drops the mapped file's pages from this process: they stay in the
// page cache, and a later lookup faults in only the pages it reads. Without
// it, indexing a large binary's symbols keeps tens of MiB resident.
func (o *Object) trim() {
	if o.unmap != nil && len(o.data) > 0 {
		_ = unix.Madvise(o.data, unix.MADV_DONTNEED)
	}
	if o.debug != nil {
		o.debug.trim()
	}
}

// loadDebugFile looks for a separate debug file (by build ID, then by
// .gnu_debuglink) and takes its symbols: distributions strip .symtab from
// their binaries and ship it in -dbg/-dbgsym packages under /usr/lib/debug.
func (o *Object) loadDebugFile(root string) {
	link, _, _ := o.elf.DebugLink()
	for _, cand := range elfsym.DebugFileCandidates(root, o.Path, o.elf.BuildID(), link) {
		d, err := openObject(cand, cand)
		if err != nil {
			continue
		}
		if o.elf.BuildID() != "" && d.elf.BuildID() != "" && d.elf.BuildID() != o.elf.BuildID() {
			d.close()
			continue
		}
		syms, err := d.elf.Symbols()
		if err != nil || syms.Len() == 0 {
			d.close()
			continue
		}
		o.debug, o.syms = d, syms
		return
	}
}

// Frames resolves an ELF virtual address, innermost frame first. The
// result is shared: callers must not modify it.
func (o *Object) Frames(root string, vaddr uint64) []Frame {
	o.mu.Lock()
	f, ok := o.frames[vaddr]
	o.mu.Unlock()
	if ok {
		return f
	}
	o.sources()
	f = o.resolve(root, vaddr)
	o.mu.Lock()
	if o.frames == nil || len(o.frames) >= maxMemo {
		o.frames = make(map[uint64][]Frame)
	}
	o.frames[vaddr] = f
	o.mu.Unlock()
	return f
}

func (o *Object) resolve(root string, vaddr uint64) []Frame {
	if o.pcln != nil {
		if gf := o.pcln.Frames(vaddr, nil); len(gf) > 0 {
			out := make([]Frame, len(gf))
			for i, g := range gf {
				out[i] = Frame{Function: g.Function, File: g.File, Line: int64(g.Line)}
			}
			return out
		}
	}
	if syms := o.symbols(root); syms != nil {
		if name, _, ok := syms.Lookup(vaddr); ok {
			return []Frame{{Function: name}}
		}
	}
	return nil
}

// ReturnSlot reports where the return address is relative to SP when the
// function at vaddr had not (or no longer) set up its frame there.
func (o *Object) ReturnSlot(root string, vaddr uint64) (uint64, bool) {
	o.mu.Lock()
	r, ok := o.slots[vaddr]
	o.mu.Unlock()
	if ok {
		return r.off, r.ok
	}
	r.off, r.ok = o.returnSlot(root, vaddr)
	o.mu.Lock()
	if o.slots == nil || len(o.slots) >= maxMemo {
		o.slots = make(map[uint64]slot)
	}
	o.slots[vaddr] = r
	o.mu.Unlock()
	return r.off, r.ok
}

func (o *Object) returnSlot(root string, vaddr uint64) (uint64, bool) {
	o.sources()
	if o.pcln != nil {
		if delta, ok := o.pcln.SPDelta(vaddr); ok {
			// Go pushes BP first: at delta 0 nothing is pushed; at 8 BP is
			// pushed but may not be set yet (FixLeaf checks the chain).
			if delta == 0 || delta == 8 {
				return uint64(delta), true
			}
			return 0, false
		}
	}
	syms := o.symbols(root)
	if syms == nil {
		return 0, false
	}
	start, ok := syms.Start(vaddr)
	if !ok || vaddr < start || vaddr-start > 64 {
		// Prologues and one-instruction epilogues sit within the first
		// bytes or at a ret; further in, only a ret can be recognized.
		code := o.elf.Code(vaddr, 2)
		if len(code) > 0 && (code[0] == 0xc3 || (len(code) > 1 && code[0] == 0xf3 && code[1] == 0xc3)) {
			return 0, true
		}
		return 0, false
	}
	code := o.elf.Code(start, int(vaddr-start)+4)
	return unwind.ReturnSlotX86(code, vaddr-start)
}
