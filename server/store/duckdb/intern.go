package duckdb

import (
	"strings"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/model"
)

// ids is a profile mapped to dictionary ids, ready for the writer.
type ids struct {
	typeID int32
	series uint32
	stacks []uint32 // per stack of the profile, its stack id
}

// intern maps p to ids, adding what is new. It runs in the caller's
// goroutine, concurrently with other Appends and with queries: in steady
// state every lookup hits, under the read lock only; misses take the write
// lock once. Strings are copied only into new entries, so p may alias a
// request buffer. r is the batch's scratch state: profiles of a batch
// often share one frame table, whose frames are then looked up once.
func (d *dictionary) intern(r *internRun, p *model.Profile) ids {
	d.mu.RLock()
	out, ok := r.run(d, p, false)
	d.mu.RUnlock()
	if ok {
		return out
	}
	d.mu.Lock()
	out, _ = r.run(d, p, true)
	d.mu.Unlock()
	return out
}

// internRun holds the scratch state of one profile, or of the profiles of
// a batch that share a frame table.
type internRun struct {
	frames []model.Frame // the frame table the state below is of
	locs   []uint32      // per frame, its location id (0: not yet)
	given  []uint64      // the profile's StackSet.FrameFPs, if it has them
	fps    []uint64      // else per frame of the profile, its fingerprint, where hasFP
	hasFP  []bool
	seq    []uint32 // one stack's location ids, root first
	// The last mapping and build ID hashed, and their model.StringFP: the
	// frames of a profile mostly share one or a few objects.
	mapping, buildID string
	mapFPs           [2]uint64
	mapSet           bool
}

// run looks p up; with insert it adds what is missing, else it stops at
// the first miss and reports false. d.mu is held (read or write).
func (r *internRun) run(d *dictionary, p *model.Profile, insert bool) (ids, bool) {
	var out ids
	var ok bool
	if out.typeID, ok = d.typeByName[p.Type.Name]; !ok {
		if !insert {
			return out, false
		}
		out.typeID = d.internType(cloneType(p.Type))
	}
	if out.series, ok = d.lookupSeries(out.typeID, p.Labels); !ok {
		if !insert {
			return out, false
		}
		out.series = d.internSeries(out.typeID, cloneLabels(p.Labels))
	}
	if !r.sameFrames(p.Stacks.Frames) {
		r.reset(&p.Stacks)
	}
	out.stacks = make([]uint32, len(p.Stacks.Stacks))
	for i, st := range p.Stacks.Stacks {
		if out.stacks[i], ok = r.stack(d, p.Stacks.Frames, st, insert); !ok {
			return out, false
		}
	}
	return out, true
}

// sameFrames reports whether frames is the table r's state is of: the
// same slice, not merely equal frames.
func (r *internRun) sameFrames(frames []model.Frame) bool {
	return len(frames) > 0 && len(frames) == len(r.frames) && &frames[0] == &r.frames[0]
}

// reset starts the state of a new frame table.
func (r *internRun) reset(s *model.StackSet) {
	n := len(s.Frames)
	r.frames = s.Frames
	r.locs = resize(r.locs, n)
	r.given = nil
	if n > 0 && len(s.FrameFPs) == n {
		r.given = s.FrameFPs // ingest hashed the frames already
	} else if cap(r.fps) < n {
		r.fps, r.hasFP = make([]uint64, n), make([]bool, n)
	} else {
		r.fps, r.hasFP = r.fps[:n], r.hasFP[:n]
		clear(r.hasFP)
	}
}

// stack returns the id of the stack st (leaf first over frames): a known
// stack by its fingerprint alone, a new one through its frames' locations.
func (r *internRun) stack(d *dictionary, frames []model.Frame, st []int32, insert bool) (uint32, bool) {
	var fp uint64
	for j := len(st) - 1; j >= 0; j-- {
		fp = fpChain(fp, r.frameFP(frames, st[j]))
	}
	if id, ok := d.stackByFP.get(fp); ok {
		return id, true
	}
	if !insert {
		return 0, false
	}
	return r.newStack(d, frames, st)
}

// frameFP returns the fingerprint of frame f: the one ingest gave, else
// computed once per profile.
func (r *internRun) frameFP(frames []model.Frame, f int32) uint64 {
	if r.given != nil {
		return r.given[f]
	}
	if !r.hasFP[f] {
		r.fps[f], r.hasFP[f] = r.computeFP(&frames[f]), true
	}
	return r.fps[f]
}

// computeFP is model.FrameFP, hashing the mapping's strings only when
// they change from one frame to the next.
func (r *internRun) computeFP(f *model.Frame) uint64 {
	if !r.mapSet || f.Mapping != r.mapping || f.BuildID != r.buildID {
		r.mapping, r.buildID, r.mapSet = f.Mapping, f.BuildID, true
		r.mapFPs = [2]uint64{model.StringFP(f.Mapping), model.StringFP(f.BuildID)}
	}
	return model.FrameFPOf(model.StringFP(f.Function), model.StringFP(f.File), r.mapFPs[0], r.mapFPs[1], f.Line, f.Inlined, f.Address)
}

// newStack adds a stack the fingerprint did not know; d.mu is held for
// writing.
func (r *internRun) newStack(d *dictionary, frames []model.Frame, st []int32) (uint32, bool) {
	r.seq = r.seq[:0]
	for j := len(st) - 1; j >= 0; j-- { // root first
		f := st[j]
		if r.locs[f] == 0 {
			// By content, not fingerprint: two frames never share a location.
			loc, ok := d.lookupFrame(frames[f])
			if !ok {
				loc = d.internFrame(cloneFrame(frames[f]))
			}
			r.locs[f] = loc
		}
		r.seq = append(r.seq, r.locs[f])
	}
	// A stack can be known by its locations and not by its fingerprint
	// when a frame differs only in what the store does not keep.
	var h uint64
	for _, loc := range r.seq {
		h = stackHash(h, loc)
	}
	if id, ok := d.stackByHash[h]; ok && d.stackIs(id, r.seq) {
		return id, true
	}
	var id uint32
	for _, loc := range r.seq {
		id = d.internStack(id, loc)
	}
	return id, true
}

// stackHash extends the hash of a parent stack by one location, so every
// stack node's hash follows from its parent's: cheap to index all nodes,
// at intern time and when the dictionary is loaded.
func stackHash(parent uint64, loc uint32) uint64 {
	x := parent ^ (uint64(loc) + 0x9e3779b97f4a7c15)
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// stackIs reports whether stack id is exactly seq (root first): a hash
// collision must not merge two stacks.
func (d *dictionary) stackIs(id uint32, seq []uint32) bool {
	for i := len(seq) - 1; i >= 0; i-- {
		if id == 0 || d.stacks[id].location != seq[i] {
			return false
		}
		id = d.stacks[id].parent
	}
	return id == 0
}

func (d *dictionary) lookupSeries(typeID int32, ls labels.Labels) (uint32, bool) {
	for _, id := range d.seriesByHash[ls.Hash()] {
		if e := d.series[id]; e.typeID == typeID && labels.Equal(e.labels, ls) {
			return id, true
		}
	}
	return 0, false
}

func (d *dictionary) lookupFrame(f model.Frame) (uint32, bool) {
	lid, ok := d.frameByKey[f]
	return lid, ok
}

func resize(s []uint32, n int) []uint32 {
	if cap(s) < n {
		return make([]uint32, n)
	}
	s = s[:n]
	clear(s)
	return s
}

func cloneType(t model.Type) model.Type {
	return model.Type{Name: strings.Clone(t.Name), SampleType: strings.Clone(t.SampleType), SampleUnit: strings.Clone(t.SampleUnit),
		PeriodType: strings.Clone(t.PeriodType), PeriodUnit: strings.Clone(t.PeriodUnit)}
}

func cloneFrame(f model.Frame) model.Frame {
	f.Function, f.File, f.Mapping, f.BuildID = strings.Clone(f.Function), strings.Clone(f.File), strings.Clone(f.Mapping), strings.Clone(f.BuildID)
	return f
}

func cloneLabels(ls labels.Labels) labels.Labels {
	b := labels.NewScratchBuilder(ls.Len())
	ls.Range(func(l labels.Label) { b.Add(strings.Clone(l.Name), strings.Clone(l.Value)) })
	return b.Labels()
}
