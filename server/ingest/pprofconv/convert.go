// Package pprofconv converts pprof profiles into the server's model: one
// model.Profile per sample type and distinct sample-label set.
//
// The ingest path (Scratch) decodes the protobuf itself (wire.go) into flat
// tables (tables.go) whose strings alias the inflated bytes, and converts
// from those: frames are built once per location line (frames.go), label
// sets once per distinct set (labels.go), and a sample costs a few integer
// copies and map lookups. All memory of a conversion, output included,
// belongs to a pooled Scratch, so a request allocates little. The
// *profile.Profile API (Decode, Convert) stays for other callers and
// tests; it goes through the same converter.
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
//
// The output shares no memory with p. Scratch.Convert does the same from
// a protobuf, faster.
func Convert(p *profile.Profile, opt Options) ([]*model.Profile, Stats, error) {
	if _, err := typeNames(p.SampleType, opt.Hint); err != nil {
		return nil, Stats{}, err
	}
	if err := p.CheckValid(); err != nil {
		return nil, Stats{}, Errorf(ErrMalformed, "invalid pprof: %w", err)
	}
	c := new(converter) // not pooled: the output is the caller's to keep
	c.t.fromProfile(p)
	return c.convert(opt)
}

// converter converts the profile in t. It is reused from one profile to
// the next (Scratch): every field keeps its memory across reset.
type converter struct {
	t      tables
	opt    Options
	lim    Limits
	sts    []sampleType
	names  []string     // per sample type: its model name, "" if not kept
	types  []model.Type // per sample type
	frames frameTable
	stacks stackTable
	sets   labelSets

	sampleSets   []int32 // per sample: its label set (check)
	sampleStacks []int32 // per sample: its stack (check)
	totals       []int64 // per sample type (check)

	series   []series
	refs     []int32             // per (label set, type): series index + 1
	byLabels map[seriesKey]int32 // (type, series labels) → series index
	stackAt  []stackPos          // per stack: the first series holding it
	more     map[[2]int32]int32  // (series, stack) → position, for stacks in several series
	lbuf     []byte
	order    []int32
	out      output
	stats    Stats
}

type series struct {
	typ    int
	labels labels.Labels
	stacks []int32 // stack ids, in order of appearance
	values []int64 // parallel to stacks
}

type seriesKey struct {
	typ    int
	labels string // labels.Labels.Bytes
}

// stackPos is where a stack's value is in a series: series+1 (0: none) and
// the index in its stacks.
type stackPos struct{ series, pos int32 }

// output holds the converted profiles' memory: the profiles slice up its
// slices, so a converter reused does not allocate them again.
type output struct {
	profiles []model.Profile
	ptrs     []*model.Profile
	frames   []model.Frame
	stacks   [][]int32
	values   []int64
}

func (c *converter) reset() {
	c.t.reset()
	c.frames.reset()
	c.stacks.reset()
	c.sets.reset()
	c.opt = Options{}
	for i := range c.series {
		c.series[i].labels = labels.EmptyLabels()
	}
	c.series = c.series[:0]
	clear(c.byLabels)
	clear(c.more)
	c.stackAt = c.stackAt[:0]
	c.stats = Stats{}
	clear(c.out.profiles) // they hold labels and slices of this request
	c.out = output{
		profiles: c.out.profiles[:0], ptrs: c.out.ptrs[:0], frames: c.out.frames[:0],
		stacks: c.out.stacks[:0], values: c.out.values[:0],
	}
}

// convert converts c.t (see Convert).
func (c *converter) convert(opt Options) ([]*model.Profile, Stats, error) {
	c.opt, c.lim = opt, opt.Limits.withDefaults()
	if err := c.setTypes(); err != nil {
		return nil, Stats{}, err
	}
	if err := c.check(); err != nil {
		return nil, Stats{}, err
	}
	// Sets are at most samples, and every sample has a value per type:
	// refs is smaller than the values decoded.
	c.refs = resize(c.refs, len(c.sets.sets)*len(c.names))
	c.stackAt = resize(c.stackAt, len(c.stacks.spans))
	for i, s := range c.t.samples {
		c.add(i, s)
	}
	return c.output(c.interval()), c.stats, nil
}

func (c *converter) setTypes() error {
	t := &c.t
	c.sts = c.sts[:0]
	for _, st := range t.sampleTypes {
		c.sts = append(c.sts, sampleType{t.str(st.typ), t.str(st.unit)})
	}
	var err error
	if c.names, err = appendTypeNames(c.names[:0], c.sts, c.opt.Hint); err != nil {
		return err
	}
	pt := sampleType{t.str(t.periodType.typ), t.str(t.periodType.unit)}
	c.types = c.types[:0]
	for i, name := range c.names {
		c.types = append(c.types, model.Type{Name: name, SampleType: c.sts[i].typ, SampleUnit: c.sts[i].unit, PeriodType: pt.typ, PeriodUnit: pt.unit})
	}
	return nil
}

func (c *converter) interval() (time.Time, time.Duration) {
	start, dur := c.opt.Start, c.opt.Duration
	switch {
	case !start.IsZero():
	case c.t.timeNanos != 0:
		start = time.Unix(0, c.t.timeNanos)
	case !c.opt.Now.IsZero():
		start = c.opt.Now
	default:
		start = time.Now()
	}
	if dur <= 0 {
		dur = time.Duration(c.t.durationNanos)
	}
	return start, dur
}

// add adds sample i's values to the series of its types and label set.
func (c *converter) add(i int, s sample) {
	set := c.sampleSets[i]
	c.stats.Conflicts += c.sets.sets[set].conflicts
	c.stats.Reserved += c.sets.sets[set].reserved
	stack := c.sampleStacks[i]
	for j, v := range c.t.values[s.values.start:s.values.end] {
		if v == 0 || c.names[j] == "" {
			continue
		}
		c.addValue(c.seriesOf(j, set), stack, v)
	}
}

// seriesOf returns the series of type j for label set set, consulting the
// filter once per type and set.
func (c *converter) seriesOf(j int, set int32) int32 {
	ref := int(set)*len(c.names) + j
	if r := c.refs[ref]; r != 0 {
		return r - 1
	}
	kept := c.sets.sets[set].labels
	if c.opt.Filter != nil && !kept.IsEmpty() {
		kept = c.opt.Filter(c.types[j].Name, kept)
	}
	ls := merge(c.opt.Labels, kept)
	c.lbuf = ls.Bytes(c.lbuf[:0])
	id, ok := c.byLabels[seriesKey{j, string(c.lbuf)}]
	if !ok {
		id = int32(len(c.series))
		if len(c.series) < cap(c.series) {
			c.series = c.series[:id+1] // reuses the stacks and values of a previous profile
			sr := &c.series[id]
			*sr = series{typ: j, labels: ls, stacks: sr.stacks[:0], values: sr.values[:0]}
		} else {
			c.series = append(c.series, series{typ: j, labels: ls})
		}
		if c.byLabels == nil {
			c.byLabels = map[seriesKey]int32{}
		}
		c.byLabels[seriesKey{j, string(c.lbuf)}] = id
	}
	c.refs[ref] = id + 1
	return id
}

// addValue adds v to stack's value in series sr; check made sure no sum
// overflows. Most stacks are in one series (of one process, or one label
// set): their position is in stackAt; the others' in a map.
func (c *converter) addValue(sr, stack int32, v int64) {
	sp := &c.series[sr]
	at := &c.stackAt[stack]
	switch {
	case at.series == sr+1:
		sp.values[at.pos] += v
		return
	case at.series == 0:
		*at = stackPos{sr + 1, int32(len(sp.stacks))}
	default:
		k := [2]int32{sr, stack}
		if pos, ok := c.more[k]; ok {
			sp.values[pos] += v
			return
		}
		if c.more == nil {
			c.more = map[[2]int32]int32{}
		}
		c.more[k] = int32(len(sp.stacks))
	}
	sp.stacks = append(sp.stacks, stack)
	sp.values = append(sp.values, v)
}

// output builds the profiles, sorted by type and labels. They share one
// frame table, every frame of the request (most are in one profile), and
// their stacks are the stack table's frame sequences: nothing is copied
// or renumbered per profile.
func (c *converter) output(start time.Time, dur time.Duration) []*model.Profile {
	c.order = c.order[:0]
	for i := range c.series {
		c.order = append(c.order, int32(i))
	}
	slices.SortStableFunc(c.order, func(a, b int32) int {
		sa, sb := &c.series[a], &c.series[b]
		return cmp.Or(cmp.Compare(sa.typ, sb.typ), labels.Compare(sa.labels, sb.labels))
	})
	n := len(c.order)
	c.out.profiles = resize(c.out.profiles, n)
	c.out.ptrs = resize(c.out.ptrs, n)
	frames, fps := c.sharedFrames()
	for i, si := range c.order {
		sr := &c.series[si]
		scale := gcdAll(sr.values)
		c.out.profiles[i] = model.Profile{
			Type:     c.types[sr.typ],
			Labels:   sr.labels,
			Time:     start,
			Duration: dur,
			Scale:    scale,
			Stacks:   c.stackSet(sr, scale, frames, fps),
		}
		c.out.ptrs[i] = &c.out.profiles[i]
	}
	return c.out.ptrs[:n:n]
}

// sharedFrames builds every frame of the frame table, once.
func (c *converter) sharedFrames() ([]model.Frame, []uint64) {
	o, ft := &c.out, &c.frames
	o.frames = slices.Grow(o.frames[:0], len(ft.keys))
	for f := range ft.keys {
		o.frames = append(o.frames, ft.frame(int32(f)))
	}
	return slices.Clip(o.frames), slices.Clip(ft.fps) // the table's own, built with it
}

// stackSet builds a series' stacks over the shared frames; values are
// divided by scale.
func (c *converter) stackSet(sr *series, scale int64, frames []model.Frame, fps []uint64) model.StackSet {
	o := &c.out
	s0, v0 := len(o.stacks), len(o.values)
	for _, id := range sr.stacks {
		st := c.stacks.stack(id)
		o.stacks = append(o.stacks, st[:len(st):len(st)])
	}
	for _, v := range sr.values {
		o.values = append(o.values, v/scale)
	}
	return model.StackSet{
		Frames:   frames,
		FrameFPs: fps,
		Stacks:   o.stacks[s0:len(o.stacks):len(o.stacks)],
		Values:   o.values[v0:len(o.values):len(o.values)],
	}
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
