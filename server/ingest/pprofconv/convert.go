// Package pprofconv converts pprof profiles into the server's model: one
// model.Profile per sample type and distinct sample-label set.
package pprofconv

import (
	"cmp"
	"slices"
	"time"

	"github.com/google/pprof/profile"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/model"
)

// Options give what the profile itself does not say.
type Options struct {
	// Labels are the base series labels: the sender's identity. They win
	// over sample labels of the same name, which are dropped and counted
	// (Stats.Conflicts): a profiled program must not be able to pass its
	// samples off as another service's.
	Labels labels.Labels
	Hint   Hint      // block or mutex, for contentions/delay types
	Now    time.Time // start of a profile without time_nanos; zero means time.Now()
	// Start, when set, replaces the profile's time_nanos and Duration, when
	// positive, its duration_nanos (Pyroscope's from and until).
	Start    time.Time
	Duration time.Duration
	// Filter, if set, may drop sample labels (a cardinality limiter). It is
	// called once per type and distinct sample-label set, with the labels
	// left after sanitizing and conflicts, and returns those to keep.
	Filter SampleFilter
	Limits Limits
}

// SampleFilter returns the subset of sample to keep in a series of type typ.
type SampleFilter func(typ string, sample labels.Labels) labels.Labels

// Stats count sample labels Convert dropped, once per pprof sample.
type Stats struct {
	Conflicts int // name of a base label, or of another label once sanitized
	Reserved  int // name empty or reserved (__…) once sanitized
}

// Convert turns a pprof profile into model profiles, one per kept sample
// type and series (Options.Labels ∪ the sample's string labels); see
// typeNames for the type names. Zero values are dropped; the samples of a
// series that share a stack are summed; each profile's Scale is the gcd of
// its values, which are stored divided by it (CPU values, count × period,
// become counts). Numeric labels are ignored. Profiles that are
// inconsistent, have negative values or exceed opt.Limits are rejected
// with an error of kind ErrMalformed, ErrBadLabels or ErrTooLarge.
func Convert(p *profile.Profile, opt Options) ([]*model.Profile, Stats, error) {
	names, err := typeNames(p.SampleType, opt.Hint)
	if err != nil {
		return nil, Stats{}, err
	}
	if err := check(p, names, opt.Limits.withDefaults()); err != nil {
		return nil, Stats{}, err
	}
	c := newConverter(p, opt, names)
	for _, s := range p.Sample {
		c.add(s)
	}
	return c.output(interval(p, opt)), c.stats, nil
}

func interval(p *profile.Profile, opt Options) (time.Time, time.Duration) {
	start, dur := opt.Start, opt.Duration
	switch {
	case !start.IsZero():
	case p.TimeNanos != 0:
		start = time.Unix(0, p.TimeNanos)
	case !opt.Now.IsZero():
		start = opt.Now
	default:
		start = time.Now()
	}
	if dur <= 0 {
		dur = time.Duration(p.DurationNanos)
	}
	return start, dur
}

type converter struct {
	opt    Options
	types  []model.Type // parallel to the sample types; Name "" is skipped
	frames frameTable
	stacks stackTable
	sets   map[string]sampleSet  // raw label key → sanitized labels
	refs   map[seriesRef]*series // (type, raw label key) → series
	series map[seriesRef]*series // (type, series labels) → series
	order  []*series
	key    []byte
	stats  Stats
}

type seriesRef struct {
	typ int
	key string
}

type series struct {
	typ    int
	labels labels.Labels
	pos    map[int32]int // stack id → index in stacks
	stacks []int32
	values []int64
}

func newConverter(p *profile.Profile, opt Options, names []string) *converter {
	c := &converter{
		opt:    opt,
		types:  make([]model.Type, len(names)),
		frames: newFrameTable(p),
		stacks: stackTable{index: map[string]int32{}},
		sets:   map[string]sampleSet{},
		refs:   map[seriesRef]*series{},
		series: map[seriesRef]*series{},
	}
	var pt profile.ValueType
	if p.PeriodType != nil {
		pt = *p.PeriodType
	}
	for i, name := range names {
		st := p.SampleType[i]
		c.types[i] = model.Type{Name: name, SampleType: st.Type, SampleUnit: st.Unit, PeriodType: pt.Type, PeriodUnit: pt.Unit}
	}
	return c
}

func (c *converter) add(s *profile.Sample) {
	c.key = rawKey(s, c.key)
	set, ok := c.sets[string(c.key)]
	if !ok {
		set = newSampleSet(s, c.opt.Labels)
		c.sets[string(c.key)] = set
	}
	c.stats.Conflicts += set.conflicts
	c.stats.Reserved += set.reserved
	stack := c.stacks.add(s, &c.frames)
	for i, v := range s.Value {
		if v == 0 || c.types[i].Name == "" {
			continue
		}
		c.seriesOf(i, set).add(stack, v)
	}
}

// seriesOf finds the series of type i for the current sample's label set,
// consulting the filter once per type and set.
func (c *converter) seriesOf(i int, set sampleSet) *series {
	ref := seriesRef{i, string(c.key)}
	if sr, ok := c.refs[ref]; ok {
		return sr
	}
	kept := set.labels
	if c.opt.Filter != nil && !kept.IsEmpty() {
		kept = c.opt.Filter(c.types[i].Name, kept)
	}
	ls := merge(c.opt.Labels, kept)
	id := seriesRef{i, string(ls.Bytes(nil))}
	sr, ok := c.series[id]
	if !ok {
		sr = &series{typ: i, labels: ls, pos: map[int32]int{}}
		c.series[id] = sr
		c.order = append(c.order, sr)
	}
	c.refs[ref] = sr
	return sr
}

// add adds v to stack's value; check made sure no sum overflows.
func (s *series) add(stack int32, v int64) {
	i, ok := s.pos[stack]
	if !ok {
		s.pos[stack] = len(s.stacks)
		s.stacks = append(s.stacks, stack)
		s.values = append(s.values, v)
		return
	}
	s.values[i] += v
}

func (c *converter) output(start time.Time, dur time.Duration) []*model.Profile {
	slices.SortStableFunc(c.order, func(a, b *series) int {
		return cmp.Or(cmp.Compare(a.typ, b.typ), labels.Compare(a.labels, b.labels))
	})
	out := make([]*model.Profile, len(c.order))
	for i, sr := range c.order {
		scale := gcdAll(sr.values)
		out[i] = &model.Profile{
			Type:     c.types[sr.typ],
			Labels:   sr.labels,
			Time:     start,
			Duration: dur,
			Scale:    scale,
			Stacks:   c.stackSet(sr, scale),
		}
	}
	return out
}

// stackSet builds a series' stacks over a frame table of its own, holding
// only the frames it uses; values are divided by scale.
func (c *converter) stackSet(sr *series, scale int64) model.StackSet {
	n := 0
	for _, id := range sr.stacks {
		n += len(c.stacks.stacks[id])
	}
	backing := make([]int32, 0, n) // one allocation for all stacks
	local := map[int32]int32{}
	ss := model.StackSet{Stacks: make([][]int32, len(sr.stacks)), Values: make([]int64, len(sr.values))}
	for i, id := range sr.stacks {
		start := len(backing)
		for _, f := range c.stacks.stacks[id] {
			li, ok := local[f]
			if !ok {
				li = int32(len(ss.Frames))
				ss.Frames = append(ss.Frames, c.frames.frames[f])
				local[f] = li
			}
			backing = append(backing, li)
		}
		ss.Stacks[i] = backing[start:len(backing):len(backing)]
		ss.Values[i] = sr.values[i] / scale
	}
	return ss
}

// gcdAll returns the gcd of positive values, 1 for none.
func gcdAll(vs []int64) int64 {
	var g int64
	for _, v := range vs {
		for v != 0 {
			g, v = v, g%v
		}
		if g == 1 {
			break
		}
	}
	return max(g, 1)
}
