package aggregate

import (
	"cmp"
	"slices"

	"github.com/google/pprof/profile"

	"github.com/flightrec/flightrec/agent/symbolize"
)

// Resolver supplies what the builder cannot know: labels and symbols.
type Resolver interface {
	// Labels returns the series labels of pid's samples.
	Labels(pid uint32) map[string]string
	// User resolves a user address of pid. call is true for return
	// addresses (every frame but the innermost), which belong to the call
	// instruction just before them.
	User(pid uint32, addr uint64, call bool) symbolize.Location
	// Kernel resolves a kernel address.
	Kernel(addr uint64, call bool) symbolize.Location
}

// ProfileOptions describe the sampling behind an interval.
type ProfileOptions struct {
	Period int64 // nanoseconds between samples on one CPU
}

// Build turns an interval into a pprof profile with sample types
// samples/count and cpu/nanoseconds; each sample carries its process's labels.
func Build(iv *Interval, r Resolver, opt ProfileOptions) *profile.Profile {
	b := builder{
		r: r,
		p: &profile.Profile{
			SampleType: []*profile.ValueType{
				{Type: "samples", Unit: "count"},
				{Type: "cpu", Unit: "nanoseconds"},
			},
			PeriodType:    &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
			Period:        opt.Period,
			TimeNanos:     iv.Start.UnixNano(),
			DurationNanos: iv.End.Sub(iv.Start).Nanoseconds(),
		},
		mappings:  map[symbolize.Mapping]*profile.Mapping{},
		locations: map[locKey]*profile.Location{},
		functions: map[funcKey]*profile.Function{},
		labels:    map[uint32]map[string][]string{},
	}
	// Deterministic output: by pid, then by count.
	stacks := slices.Clone(iv.Stacks)
	slices.SortStableFunc(stacks, func(x, y *Stack) int {
		return cmp.Or(cmp.Compare(x.PID, y.PID), cmp.Compare(y.Count, x.Count))
	})
	for _, s := range stacks {
		b.add(s, opt.Period)
	}
	return b.p
}

type locKey struct {
	pid     uint32 // user addresses only mean something within their process
	kernel  bool
	addr    uint64
	mapping *profile.Mapping
}

type funcKey struct{ name, file string }

type builder struct {
	r         Resolver
	p         *profile.Profile
	mappings  map[symbolize.Mapping]*profile.Mapping
	locations map[locKey]*profile.Location
	functions map[funcKey]*profile.Function
	labels    map[uint32]map[string][]string
}

func (b *builder) add(s *Stack, period int64) {
	locs := make([]*profile.Location, 0, len(s.Kernel)+len(s.User))
	// pprof lists the leaf first: kernel frames sit above user frames.
	for i, addr := range s.Kernel {
		locs = append(locs, b.location(locKey{kernel: true, addr: addr}, func() symbolize.Location { return b.r.Kernel(addr, i > 0) }))
	}
	for i, addr := range s.User {
		call := i > 0 || len(s.Kernel) > 0
		locs = append(locs, b.location(locKey{pid: s.PID, addr: addr}, func() symbolize.Location { return b.r.User(s.PID, addr, call) }))
	}
	b.p.Sample = append(b.p.Sample, &profile.Sample{
		Location: locs,
		Value:    []int64{int64(s.Count), int64(s.Count) * period},
		Label:    b.sampleLabels(s.PID),
	})
}

func (b *builder) sampleLabels(pid uint32) map[string][]string {
	if l, ok := b.labels[pid]; ok {
		return l
	}
	l := map[string][]string{}
	for k, v := range b.r.Labels(pid) {
		if v != "" {
			l[k] = []string{v}
		}
	}
	b.labels[pid] = l
	return l
}

// location interns by (pid, address) first so each address is resolved
// once per interval, then by mapping so two processes sharing a mapping at
// the same address share a location.
func (b *builder) location(k locKey, resolve func() symbolize.Location) *profile.Location {
	if l, ok := b.locations[k]; ok {
		return l
	}
	r := resolve()
	m := b.mapping(r.Mapping)
	shared := locKey{kernel: k.kernel, addr: k.addr, mapping: m}
	if m != nil && !k.kernel {
		if l, ok := b.locations[shared]; ok {
			b.locations[k] = l
			return l
		}
	}
	l := &profile.Location{ID: uint64(len(b.p.Location) + 1), Mapping: m, Address: k.addr}
	for _, f := range r.Frames {
		l.Line = append(l.Line, profile.Line{Function: b.function(f), Line: f.Line})
	}
	b.p.Location = append(b.p.Location, l)
	b.locations[k] = l
	if m != nil && !k.kernel {
		b.locations[shared] = l
	}
	return l
}

func (b *builder) mapping(m *symbolize.Mapping) *profile.Mapping {
	if m == nil {
		return nil
	}
	if pm, ok := b.mappings[*m]; ok {
		return pm
	}
	pm := &profile.Mapping{
		ID:              uint64(len(b.p.Mapping) + 1),
		Start:           m.Start,
		Limit:           m.Limit,
		Offset:          m.Offset,
		File:            m.File,
		BuildID:         m.BuildID,
		HasFunctions:    m.Symbolized,
		HasFilenames:    m.Symbolized,
		HasLineNumbers:  m.Symbolized,
		HasInlineFrames: m.Symbolized,
	}
	b.p.Mapping = append(b.p.Mapping, pm)
	b.mappings[*m] = pm
	return pm
}

func (b *builder) function(f symbolize.Frame) *profile.Function {
	k := funcKey{f.Function, f.File}
	if fn, ok := b.functions[k]; ok {
		return fn
	}
	fn := &profile.Function{ID: uint64(len(b.p.Function) + 1), Name: f.Function, SystemName: f.Function, Filename: f.File}
	b.p.Function = append(b.p.Function, fn)
	b.functions[k] = fn
	return fn
}
