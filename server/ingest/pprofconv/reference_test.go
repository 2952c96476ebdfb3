package pprofconv

// This file is the converter as it was before the protobuf decoder and
// flat tables (git history: convert.go, frames.go, labels.go, limits.go,
// types.go), its names prefixed with ref: the reference that
// FuzzConvertMatchesReference holds the converter to. Change it only to
// follow renames: it is the old behaviour by definition.

import (
	"cmp"
	"encoding/binary"
	"math"
	"slices"
	"time"

	"github.com/google/pprof/profile"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/model"
)

// Convert turns a pprof profile into model profiles, one per kept sample
// type and series (Options.Labels ∪ the sample's string labels); see
// typeNames for the type names. Zero values are dropped; the samples of a
// series that share a stack are summed; each profile's Scale is the gcd of
// its values, which are stored divided by it (CPU values, count × period,
// become counts). Numeric labels are ignored. Profiles that are
// inconsistent, have negative values or exceed opt.Limits are rejected
// with an error of kind ErrMalformed, ErrBadLabels or ErrTooLarge.
func refConvert(p *profile.Profile, opt Options) ([]*model.Profile, Stats, error) {
	names, err := refTypeNames(p.SampleType, opt.Hint)
	if err != nil {
		return nil, Stats{}, err
	}
	if err := refCheck(p, names, opt.Limits.withDefaults()); err != nil {
		return nil, Stats{}, err
	}
	c := refNewConverter(p, opt, names)
	for _, s := range p.Sample {
		c.add(s)
	}
	return c.output(refInterval(p, opt)), c.stats, nil
}

func refInterval(p *profile.Profile, opt Options) (time.Time, time.Duration) {
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

type refConverter struct {
	opt    Options
	types  []model.Type // parallel to the sample types; Name "" is skipped
	frames refFrameTable
	stacks refStackTable
	sets   map[string]refSampleSet     // raw label key → sanitized labels
	refs   map[refSeriesRef]*refSeries // (type, raw label key) → series
	series map[refSeriesRef]*refSeries // (type, series labels) → series
	order  []*refSeries
	key    []byte
	stats  Stats
}

type refSeriesRef struct {
	typ int
	key string
}

type refSeries struct {
	typ    int
	labels labels.Labels
	pos    map[int32]int // stack id → index in stacks
	stacks []int32
	values []int64
}

func refNewConverter(p *profile.Profile, opt Options, names []string) *refConverter {
	c := &refConverter{
		opt:    opt,
		types:  make([]model.Type, len(names)),
		frames: refNewFrameTable(p),
		stacks: refStackTable{index: map[string]int32{}},
		sets:   map[string]refSampleSet{},
		refs:   map[refSeriesRef]*refSeries{},
		series: map[refSeriesRef]*refSeries{},
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

func (c *refConverter) add(s *profile.Sample) {
	c.key = refRawKey(s, c.key)
	set, ok := c.sets[string(c.key)]
	if !ok {
		set = refNewSampleSet(s, c.opt.Labels)
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
func (c *refConverter) seriesOf(i int, set refSampleSet) *refSeries {
	ref := refSeriesRef{i, string(c.key)}
	if sr, ok := c.refs[ref]; ok {
		return sr
	}
	kept := set.labels
	if c.opt.Filter != nil && !kept.IsEmpty() {
		kept = c.opt.Filter(c.types[i].Name, kept)
	}
	ls := merge(c.opt.Labels, kept)
	id := refSeriesRef{i, string(ls.Bytes(nil))}
	sr, ok := c.series[id]
	if !ok {
		sr = &refSeries{typ: i, labels: ls, pos: map[int32]int{}}
		c.series[id] = sr
		c.order = append(c.order, sr)
	}
	c.refs[ref] = sr
	return sr
}

// add adds v to stack's value; check made sure no sum overflows.
func (s *refSeries) add(stack int32, v int64) {
	i, ok := s.pos[stack]
	if !ok {
		s.pos[stack] = len(s.stacks)
		s.stacks = append(s.stacks, stack)
		s.values = append(s.values, v)
		return
	}
	s.values[i] += v
}

func (c *refConverter) output(start time.Time, dur time.Duration) []*model.Profile {
	slices.SortStableFunc(c.order, func(a, b *refSeries) int {
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
func (c *refConverter) stackSet(sr *refSeries, scale int64) model.StackSet {
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

// frameTable interns the frames of one pprof profile. Output profiles get
// compact tables of their own, built from it.
type refFrameTable struct {
	frames []model.Frame
	index  map[model.Frame]int32
	locs   map[*profile.Location][]int32
}

func refNewFrameTable(p *profile.Profile) refFrameTable {
	return refFrameTable{
		index: make(map[model.Frame]int32, len(p.Function)),
		locs:  make(map[*profile.Location][]int32, len(p.Location)),
	}
}

// location returns loc's frames, innermost first.
func (t *refFrameTable) location(loc *profile.Location) []int32 {
	if ids, ok := t.locs[loc]; ok {
		return ids
	}
	fs := refLocationFrames(loc)
	ids := make([]int32, len(fs))
	for i, f := range fs {
		ids[i] = t.intern(f)
	}
	t.locs[loc] = ids
	return ids
}

func (t *refFrameTable) intern(f model.Frame) int32 {
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
func refLocationFrames(loc *profile.Location) []model.Frame {
	var file, buildID string
	if m := loc.Mapping; m != nil {
		file, buildID = validString(m.File), validString(m.BuildID)
	}
	if len(loc.Line) == 0 {
		return []model.Frame{{Mapping: file, BuildID: buildID, Address: refObjectAddress(loc)}}
	}
	fs := make([]model.Frame, len(loc.Line))
	for i, ln := range loc.Line {
		fs[i] = model.Frame{
			Function: validString(refFunctionName(ln.Function)),
			File:     validString(ln.Function.Filename),
			Line:     ln.Line,
			Inlined:  i < len(loc.Line)-1,
			Mapping:  file,
			BuildID:  buildID,
		}
	}
	return fs
}

func refFunctionName(f *profile.Function) string {
	if f.Name != "" {
		return f.Name
	}
	return f.SystemName
}

// objectAddress is docs/wire.md's address - memory_start + file_offset: the
// address within the object file, the same in every process mapping it.
func refObjectAddress(loc *profile.Location) uint64 {
	m := loc.Mapping
	if m == nil || loc.Address < m.Start {
		return loc.Address
	}
	return loc.Address - m.Start + m.Offset
}

// stackTable interns stacks (leaf-first frame ids) of one pprof profile, so
// that the samples of a stack merge and each output profile refers to it by id.
type refStackTable struct {
	stacks [][]int32
	index  map[string]int32
	key    []byte
	buf    []int32
}

func (t *refStackTable) add(s *profile.Sample, frames *refFrameTable) int32 {
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

// sampleSet is a sample's string labels after sanitizing, before the filter.
type refSampleSet struct {
	labels    labels.Labels
	conflicts int // labels dropped: same name as a base label or another sample label
	reserved  int // labels dropped: reserved or empty name
}

// rawKey identifies a sample's label set before sanitizing, so samples of
// the same set (most of them) are sanitized once.
func refRawKey(s *profile.Sample, buf []byte) []byte {
	keys := make([]string, 0, len(s.Label))
	for k := range s.Label {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	buf = buf[:0]
	for _, k := range keys {
		buf = append(buf, k...)
		buf = append(buf, 0xff)
		if vs := s.Label[k]; len(vs) > 0 {
			buf = append(buf, vs[0]...)
		}
		buf = append(buf, 0xff)
	}
	return buf
}

// newSampleSet sanitizes a sample's string labels. Numeric labels are
// ignored: they are per-sample measurements (Go's heap profile puts the
// allocation size there), not series identity. Of several values for one
// name only the first is kept. Empty values mean "absent", as in Prometheus.
func refNewSampleSet(s *profile.Sample, base labels.Labels) refSampleSet {
	keys := make([]string, 0, len(s.Label))
	for k := range s.Label {
		keys = append(keys, k)
	}
	// Sorted raw names make the winner deterministic when two sanitize to
	// the same name ("http.method" and "http_method").
	slices.Sort(keys)
	var set refSampleSet
	b := labels.NewScratchBuilder(len(keys))
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		vs := s.Label[k]
		if len(vs) == 0 || vs[0] == "" {
			continue
		}
		name := SanitizeLabelName(k)
		switch {
		case name == "" || ReservedLabelName(name):
			set.reserved++
		case base.Has(name) || seen[name]:
			set.conflicts++
		default:
			seen[name] = true
			b.Add(name, validString(vs[0]))
		}
	}
	b.Sort()
	set.labels = b.Labels()
	return set
}

// check rejects what Convert must not process: inconsistent profiles,
// negative values, totals that overflow, and anything over the limits. It
// runs before any output is built, so a rejected profile has no side
// effects (the label filter, a cardinality limiter, is never consulted).
func refCheck(p *profile.Profile, types []string, lim Limits) error {
	if err := p.CheckValid(); err != nil {
		return Errorf(ErrMalformed, "invalid pprof: %w", err)
	}
	if len(p.Sample) > lim.MaxSamples {
		return Errorf(ErrTooLarge, "profile has %d samples, more than the limit of %d", len(p.Sample), lim.MaxSamples)
	}
	if len(p.Location) > lim.MaxLocations {
		return Errorf(ErrTooLarge, "profile has %d locations, more than the limit of %d", len(p.Location), lim.MaxLocations)
	}
	if p.TimeNanos < 0 || p.DurationNanos < 0 {
		return Errorf(ErrMalformed, "profile has a negative time (%d) or duration (%d)", p.TimeNanos, p.DurationNanos)
	}
	frames := 0
	totals := make([]int64, len(types))
	for i, s := range p.Sample {
		n, err := refCheckSample(i, s, types, p.SampleType, lim)
		if err != nil {
			return err
		}
		// Compare before adding: the sum cannot overflow an int this way.
		if n > lim.MaxStackFrames-frames {
			return Errorf(ErrTooLarge, "profile has more than %d stack frames in all", lim.MaxStackFrames)
		}
		frames += n
		if err := refAddTotals(totals, s.Value, p.SampleType); err != nil {
			return err
		}
	}
	return nil
}

// addTotals sums values per type. Totals within int64 guarantee that no
// sum Convert makes (of some samples of one type) overflows.
func refAddTotals(totals, values []int64, st []*profile.ValueType) error {
	for j, v := range values {
		if v > math.MaxInt64-totals[j] {
			return Errorf(ErrMalformed, "%s values add up to more than 64 bits hold", st[j].Type)
		}
		totals[j] += v
	}
	return nil
}

// checkSample returns how many stack frames the sample adds to the output.
func refCheckSample(i int, s *profile.Sample, types []string, st []*profile.ValueType, lim Limits) (int, error) {
	kept := 0
	for j, v := range s.Value {
		if v < 0 {
			return 0, Errorf(ErrMalformed, "sample %d has negative %s value %d (diff profiles are not supported)", i, st[j].Type, v)
		}
		if v > 0 && types[j] != "" {
			kept++
		}
	}
	depth := 0
	for _, loc := range s.Location {
		depth += max(1, len(loc.Line))
	}
	if depth > lim.MaxStackDepth {
		return 0, Errorf(ErrTooLarge, "sample %d has %d frames, more than the limit of %d", i, depth, lim.MaxStackDepth)
	}
	if err := refCheckLabels(i, s, lim); err != nil {
		return 0, err
	}
	return depth * kept, nil
}

func refCheckLabels(i int, s *profile.Sample, lim Limits) error {
	if len(s.Label) > lim.MaxSampleLabels {
		return Errorf(ErrBadLabels, "sample %d has %d labels, more than the limit of %d", i, len(s.Label), lim.MaxSampleLabels)
	}
	for k, vs := range s.Label {
		if len(k) > lim.MaxLabelName {
			return Errorf(ErrBadLabels, "sample %d: label name %.40q... is longer than %d bytes", i, k, lim.MaxLabelName)
		}
		if len(vs) > 0 && len(vs[0]) > lim.MaxLabelValue {
			return Errorf(ErrBadLabels, "sample %d: value of label %q is longer than %s", i, k, FormatBytes(int64(lim.MaxLabelValue)))
		}
	}
	return nil
}

// typeNames returns the model type name of each sample type, "" for one
// not kept:
//   - samples/count is dropped next to cpu/nanoseconds or off_cpu/nanoseconds
//     (it is the same data: cpu = samples × period);
//   - goroutine and goroutines become goroutine;
//   - contentions and delay become block_… or mutex_… with a hint;
//   - any other type keeps its name, sanitized to a metric name ("" →
//     "unknown"); this covers cpu, off_cpu, alloc_objects, alloc_space,
//     inuse_objects, inuse_space and other profilers' types.
//
// Two types with the same name are told apart by their unit (cpu_count).
func refTypeNames(st []*profile.ValueType, hint Hint) ([]string, error) {
	names := make([]string, len(st))
	seen := make(map[string]bool, len(st))
	redundant := refHasTimeType(st)
	for i, t := range st {
		if t == nil {
			return nil, Errorf(ErrMalformed, "invalid pprof: sample type %d is missing", i)
		}
		if redundant && t.Type == "samples" && t.Unit == "count" {
			continue
		}
		name := refTypeName(t.Type, hint)
		if seen[name] {
			name += "_" + SanitizeLabelName(t.Unit)
		}
		if seen[name] || seen[t.Type+"/"+t.Unit] {
			return nil, Errorf(ErrMalformed, "profile has two sample types named %s/%s", t.Type, t.Unit)
		}
		seen[t.Type+"/"+t.Unit] = true
		seen[name] = true
		names[i] = name
	}
	return names, nil
}

func refHasTimeType(st []*profile.ValueType) bool {
	for _, t := range st {
		if t != nil && (t.Type == "cpu" || t.Type == "off_cpu") && t.Unit == "nanoseconds" {
			return true
		}
	}
	return false
}

func refTypeName(typ string, hint Hint) string {
	switch typ {
	case "goroutine", "goroutines":
		return "goroutine"
	case "contentions", "delay":
		if hint == HintBlock || hint == HintMutex {
			return string(hint) + "_" + typ
		}
		return typ
	}
	if n := SanitizeLabelName(typ); n != "" {
		return n
	}
	return "unknown"
}
