package pprofconv

import (
	"encoding/binary"

	"github.com/google/pprof/profile"

	"github.com/flightrec/flightrec/server/model"
)

// frameTable interns the frames of one pprof profile. Output profiles get
// compact tables of their own, built from it.
type frameTable struct {
	frames []model.Frame
	index  map[model.Frame]int32
	locs   map[*profile.Location][]int32
}

func newFrameTable(p *profile.Profile) frameTable {
	return frameTable{
		index: make(map[model.Frame]int32, len(p.Function)),
		locs:  make(map[*profile.Location][]int32, len(p.Location)),
	}
}

// location returns loc's frames, innermost first.
func (t *frameTable) location(loc *profile.Location) []int32 {
	if ids, ok := t.locs[loc]; ok {
		return ids
	}
	fs := locationFrames(loc)
	ids := make([]int32, len(fs))
	for i, f := range fs {
		ids[i] = t.intern(f)
	}
	t.locs[loc] = ids
	return ids
}

func (t *frameTable) intern(f model.Frame) int32 {
	if id, ok := t.index[f]; ok {
		return id
	}
	id := int32(len(t.frames))
	t.frames = append(t.frames, f)
	t.index[f] = id
	return id
}

// locationFrames expands a location: pprof lists its lines innermost first,
// each inlined into the next, the last being the function the code
// physically belongs to. A location without lines is an unsymbolized
// address, kept object-relative so it can be symbolized later.
func locationFrames(loc *profile.Location) []model.Frame {
	var file, buildID string
	if m := loc.Mapping; m != nil {
		file, buildID = validString(m.File), validString(m.BuildID)
	}
	if len(loc.Line) == 0 {
		return []model.Frame{{Mapping: file, BuildID: buildID, Address: objectAddress(loc)}}
	}
	fs := make([]model.Frame, len(loc.Line))
	for i, ln := range loc.Line {
		fs[i] = model.Frame{
			Function: validString(functionName(ln.Function)),
			File:     validString(ln.Function.Filename),
			Line:     ln.Line,
			Inlined:  i < len(loc.Line)-1,
			Mapping:  file,
			BuildID:  buildID,
		}
	}
	return fs
}

func functionName(f *profile.Function) string {
	if f.Name != "" {
		return f.Name
	}
	return f.SystemName
}

// objectAddress is docs/wire.md's address - memory_start + file_offset: the
// address within the object file, the same in every process mapping it.
func objectAddress(loc *profile.Location) uint64 {
	m := loc.Mapping
	if m == nil || loc.Address < m.Start {
		return loc.Address
	}
	return loc.Address - m.Start + m.Offset
}

// stackTable interns stacks (leaf-first frame ids) of one pprof profile, so
// that the samples of a stack merge and each output profile refers to it by id.
type stackTable struct {
	stacks [][]int32
	index  map[string]int32
	key    []byte
	buf    []int32
}

func (t *stackTable) add(s *profile.Sample, frames *frameTable) int32 {
	t.buf = t.buf[:0]
	for _, loc := range s.Location {
		t.buf = append(t.buf, frames.location(loc)...)
	}
	t.key = t.key[:0]
	for _, f := range t.buf {
		t.key = binary.LittleEndian.AppendUint32(t.key, uint32(f))
	}
	if id, ok := t.index[string(t.key)]; ok {
		return id
	}
	id := int32(len(t.stacks))
	t.stacks = append(t.stacks, append([]int32(nil), t.buf...))
	t.index[string(t.key)] = id
	return id
}
