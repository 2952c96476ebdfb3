package symbolize

import (
	"github.com/flightrec/flightrec/agent/procinfo"
)

// Space is one process's address space as the symbolizer sees it: its
// executable mappings and the objects behind them.
type Space struct {
	s    *Symbolizer
	proc *procinfo.Process
	objs []*Object // parallel to proc.Mappings; nil where nothing could be opened
}

// Process is the snapshot the space was built from.
func (sp *Space) Process() *procinfo.Process { return sp.proc }

// Contains reports whether addr lies in a known executable mapping; a miss
// means the process mapped new code (dlopen, exec) since the snapshot.
func (sp *Space) Contains(addr uint64) bool {
	_, ok := sp.proc.Find(addr)
	return ok
}

// MainBuildID is the build ID of the process's executable.
func (sp *Space) MainBuildID() string {
	for i, m := range sp.proc.Mappings {
		if m.Path == sp.proc.Exe && sp.objs[i] != nil {
			return sp.objs[i].BuildID
		}
	}
	return ""
}

// locate finds addr's mapping, object and ELF virtual address.
func (sp *Space) locate(addr uint64) (*procinfo.Mapping, *Object, uint64, bool) {
	i, ok := sp.proc.Index(addr)
	if !ok {
		return nil, nil, 0, false
	}
	m, o := &sp.proc.Mappings[i], sp.objs[i]
	if o == nil {
		return m, nil, 0, true
	}
	vaddr, ok := o.elf.FileOffsetToVaddr(addr - m.Start + m.Offset)
	if !ok {
		return m, nil, 0, true
	}
	return m, o, vaddr, true
}

// Resolve symbolizes addr. call says addr is a return address, which
// belongs to the call instruction just before it.
func (sp *Space) Resolve(addr uint64, call bool) Location {
	m, o, vaddr, ok := sp.locate(addr)
	if !ok {
		sp.s.m.frames.WithLabelValues("user", "no_mapping").Inc()
		return Location{}
	}
	loc := Location{Mapping: &Mapping{Start: m.Start, Limit: m.End, Offset: m.Offset, File: m.Path}}
	if o == nil {
		sp.s.m.frames.WithLabelValues("user", "no_object").Inc()
		return loc
	}
	loc.Mapping.BuildID = o.BuildID
	loc.Mapping.Symbolized = true
	if call {
		vaddr--
	}
	loc.Frames = o.Frames(sp.proc.Root(), vaddr)
	if len(loc.Frames) == 0 {
		sp.s.m.frames.WithLabelValues("user", "no_symbol").Inc()
	} else {
		sp.s.m.frames.WithLabelValues("user", "ok").Inc()
	}
	return loc
}

// ReturnSlot tells the leaf fix-up where the return address of the
// function at addr sits, if its frame is not set up there.
func (sp *Space) ReturnSlot(addr uint64) (uint64, bool) {
	_, o, vaddr, ok := sp.locate(addr)
	if !ok || o == nil {
		return 0, false
	}
	return o.ReturnSlot(sp.proc.Root(), vaddr)
}

// Release lets go of the space's objects; the space must not be used after.
func (sp *Space) Release() {
	for i, o := range sp.objs {
		if o != nil {
			sp.s.release(o)
			sp.objs[i] = nil
		}
	}
}
