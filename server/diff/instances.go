package diff

import (
	"fmt"
	"slices"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/model"
	"github.com/flightrec/flightrec/server/query"
	"github.com/flightrec/flightrec/server/store"
)

// side is a selection's instances over its own table of function names,
// summed per function: what explain and bisect test (the diff reads a
// fleet, table.go, to test call paths too).
type side struct {
	names     []string
	instances []instance
}

// instance is one instance's cost per function: only what the statistics
// need, so that a side of hundreds of instances and thousands of functions
// stays a few sparse vectors.
type instance struct {
	labels labels.Labels
	total  int64
	fn     []int32 // function ids with a non-zero total
	self   []int64 // parallel to fn: value of the stacks fn is the leaf of
	cum    []int64 // parallel to fn: value of the stacks containing fn
}

// summarize turns MergeBy groups into instances. With auto, groups of the
// same pod are one instance (a pod's processes restart with new pids, but
// it is one replica); groups without a pod stay per pid and node.
func summarize(groups []store.Group, auto bool) (side, error) {
	var keys []labels.Labels
	members := map[string][]*model.StackSet{}
	for _, g := range groups {
		if g.Stacks == nil {
			continue
		}
		if err := g.Stacks.Validate(); err != nil {
			return side{}, fmt.Errorf("stacks of %s: %w", g.Labels, err)
		}
		key := g.Labels
		if pod := key.Get("pod"); auto && pod != "" {
			key = labels.FromStrings("pod", pod)
		}
		k := key.String()
		if _, ok := members[k]; !ok {
			keys = append(keys, key)
		}
		members[k] = append(members[k], g.Stacks)
	}
	slices.SortFunc(keys, labels.Compare)
	s := newSummarizer()
	var out side
	for _, key := range keys {
		inst := s.instance(members[key.String()])
		if inst.total <= 0 { // nothing to take shares of
			continue
		}
		inst.labels = key
		out.instances = append(out.instances, inst)
	}
	out.names = s.names
	return out, nil
}

// summarizer interns function names and keeps a dense scratch array over
// them, reused from instance to instance.
type summarizer struct {
	names   []string
	index   map[string]int32
	acc     []accum
	stamp   int64
	touched []int32
	// fid maps the frames of the last set to function ids. Stores may give
	// every group of a query one shared frame table: it is mapped once.
	fid    []int32
	fidFor *model.Frame // &Frames[0] of the set fid was made for
}

// accum is one function's sums for the instance being summarized, in one
// struct so that the stack walk touches one cache line per frame.
type accum struct {
	self, cum int64
	last      int64 // stamp of the last stack counted in cum
}

func newSummarizer() *summarizer { return &summarizer{index: map[string]int32{}} }

func (s *summarizer) intern(name string) int32 {
	id, ok := s.index[name]
	if !ok {
		id = int32(len(s.names))
		s.names = append(s.names, name)
		s.index[name] = id
		s.acc = append(s.acc, accum{})
	}
	return id
}

// instance sums the stack sets of one instance per function.
func (s *summarizer) instance(sets []*model.StackSet) instance {
	var inst instance
	for _, set := range sets {
		inst.total += s.add(set)
	}
	inst.fn = s.touched
	inst.self = make([]int64, len(s.touched))
	inst.cum = make([]int64, len(s.touched))
	for i, id := range s.touched {
		a := &s.acc[id]
		inst.self[i], inst.cum[i] = a.self, a.cum
		a.self, a.cum = 0, 0
	}
	s.touched = nil
	return inst
}

// functionIDs maps frames to function ids, reusing the previous mapping
// when frames extends the table it was made for.
func (s *summarizer) functionIDs(frames []model.Frame) []int32 {
	if len(frames) == 0 {
		return nil
	}
	if &frames[0] != s.fidFor || len(frames) < len(s.fid) {
		s.fid, s.fidFor = s.fid[:0], &frames[0]
	}
	for _, f := range frames[len(s.fid):] {
		s.fid = append(s.fid, s.intern(query.FrameName(f)))
	}
	return s.fid
}

// add counts set's stacks: self for the leaf, cum once per stack for every
// function in it however often it recurses. It returns the set's total.
func (s *summarizer) add(set *model.StackSet) int64 {
	fid := s.functionIDs(set.Frames)
	var total int64
	for i, st := range set.Stacks {
		v := set.Values[i]
		if len(st) == 0 || v <= 0 { // no cost to share
			continue
		}
		total += v
		s.stamp++
		s.acc[fid[st[0]]].self += v
		for _, f := range st {
			a := &s.acc[fid[f]]
			if a.last == s.stamp {
				continue
			}
			if a.cum == 0 {
				s.touched = append(s.touched, fid[f])
			}
			a.last = s.stamp
			a.cum += v
		}
	}
	return total
}
