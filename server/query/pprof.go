package query

import (
	"encoding/binary"
	"time"

	"github.com/google/pprof/profile"

	"github.com/flightrec/flightrec/server/model"
)

// Pprof converts merged stacks of type typ over [start, end) into a pprof
// profile with one sample type. Frames inlined into their caller share its
// Location as extra Lines (innermost first), so pprof shows them as
// "(inline)"; unsymbolized frames become Locations with an address and
// mapping and no Line, for pprof to symbolize if it has the binary. The
// result is valid per CheckValid and the same for the same input.
func Pprof(set *model.StackSet, typ model.Type, start, end time.Time) *profile.Profile {
	b := newPprofBuilder(set)
	b.p.SampleType = []*profile.ValueType{sampleType(typ)}
	if typ.PeriodType != "" {
		b.p.PeriodType = &profile.ValueType{Type: typ.PeriodType, Unit: typ.PeriodUnit}
	}
	b.p.TimeNanos = start.UnixNano()
	b.p.DurationNanos = end.Sub(start).Nanoseconds()
	for i, st := range set.Stacks {
		b.p.Sample = append(b.p.Sample, &profile.Sample{
			Location: b.locations(st),
			Value:    []int64{set.Values[i]},
		})
	}
	return b.p
}

// sampleType falls back to the type's name and "count" for types stored
// without pprof metadata, since pprof needs both.
func sampleType(typ model.Type) *profile.ValueType {
	vt := &profile.ValueType{Type: typ.SampleType, Unit: typ.SampleUnit}
	if vt.Type == "" {
		vt.Type = typ.Name
	}
	if vt.Unit == "" {
		vt.Unit = "count"
	}
	return vt
}

type funcKey struct{ name, file string }
type mapKey struct{ file, buildID string }

// pprofBuilder interns functions, mappings and locations. Equal frames may
// sit at several indexes of a stack set (merges of sets with their own
// tables), so locations are keyed by frame value, through canon.
type pprofBuilder struct {
	p         *profile.Profile
	frames    []model.Frame
	canon     []uint32 // frame index → index of the first equal frame
	functions map[funcKey]*profile.Function
	mappings  map[mapKey]*profile.Mapping
	locs      map[string]*profile.Location
	key       []byte
}

func newPprofBuilder(set *model.StackSet) *pprofBuilder {
	b := &pprofBuilder{
		p:         &profile.Profile{},
		frames:    set.Frames,
		canon:     make([]uint32, len(set.Frames)),
		functions: map[funcKey]*profile.Function{},
		mappings:  map[mapKey]*profile.Mapping{},
		locs:      map[string]*profile.Location{},
	}
	first := make(map[model.Frame]uint32, len(set.Frames))
	for i, f := range set.Frames {
		c, ok := first[f]
		if !ok {
			c = uint32(i)
			first[f] = c
		}
		b.canon[i] = c
	}
	return b
}

// locations turns a leaf-first stack into pprof locations, leaf first.
func (b *pprofBuilder) locations(stack []int32) []*profile.Location {
	out := make([]*profile.Location, 0, len(stack))
	for i := 0; i < len(stack); {
		j := b.inlineRunEnd(stack, i)
		out = append(out, b.location(stack[i:j+1]))
		i = j + 1
	}
	return out
}

// inlineRunEnd returns the index of the frame that stack[i] and the frames
// after it are inlined into: the first non-inlined frame. An unsymbolized
// frame is a location of its own, and ends a run before it.
func (b *pprofBuilder) inlineRunEnd(stack []int32, i int) int {
	j := i
	for j+1 < len(stack) {
		f, next := b.frames[stack[j]], b.frames[stack[j+1]]
		if !f.Inlined || f.Function == "" || next.Function == "" {
			break
		}
		j++
	}
	return j
}

// location returns the location of a run of frames, innermost first, the
// last being the function the code physically belongs to.
func (b *pprofBuilder) location(run []int32) *profile.Location {
	b.key = b.key[:0]
	for _, f := range run {
		b.key = binary.LittleEndian.AppendUint32(b.key, b.canon[f])
	}
	if loc, ok := b.locs[string(b.key)]; ok {
		return loc
	}
	caller := b.frames[run[len(run)-1]]
	loc := &profile.Location{ID: uint64(len(b.p.Location) + 1), Mapping: b.mapping(caller)}
	if caller.Function == "" {
		loc.Address = caller.Address
	}
	for _, f := range run {
		if fr := b.frames[f]; fr.Function != "" {
			loc.Line = append(loc.Line, profile.Line{Function: b.function(fr), Line: fr.Line})
		}
	}
	if m := loc.Mapping; m != nil && len(loc.Line) == 0 {
		// pprof symbolizes only mappings without functions.
		m.HasFunctions, m.HasFilenames, m.HasLineNumbers = false, false, false
	}
	b.p.Location = append(b.p.Location, loc)
	b.locs[string(b.key)] = loc
	return loc
}

func (b *pprofBuilder) function(f model.Frame) *profile.Function {
	k := funcKey{f.Function, f.File}
	fn, ok := b.functions[k]
	if !ok {
		fn = &profile.Function{ID: uint64(len(b.p.Function) + 1), Name: f.Function, SystemName: f.Function, Filename: f.File}
		b.p.Function = append(b.p.Function, fn)
		b.functions[k] = fn
	}
	return fn
}

// mapping returns f's object's mapping, nil if the object is unknown.
// Addresses are object-relative, so every mapping starts at 0 and spans the
// address space: pprof's convention for "addresses already adjusted", which
// also keeps it from merging mappings it would take for adjacent pieces.
func (b *pprofBuilder) mapping(f model.Frame) *profile.Mapping {
	if f.Mapping == "" && f.BuildID == "" {
		return nil
	}
	k := mapKey{f.Mapping, f.BuildID}
	m, ok := b.mappings[k]
	if !ok {
		m = &profile.Mapping{
			ID: uint64(len(b.p.Mapping) + 1), Limit: ^uint64(0), File: f.Mapping, BuildID: f.BuildID,
			HasFunctions: true, HasFilenames: true, HasLineNumbers: true,
		}
		b.p.Mapping = append(b.p.Mapping, m)
		b.mappings[k] = m
	}
	return m
}
