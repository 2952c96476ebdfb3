package otlp

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	collectorpb "go.opentelemetry.io/proto/otlp/collector/profiles/v1development"
	profilespb "go.opentelemetry.io/proto/otlp/profiles/v1development"

	"github.com/flightrec/flightrec/server/model"
)

// Convert turns an OTLP profiles export request into a batch holding one
// model.Profile per series (label set), type and interval. It checks every
// index into the dictionary and fails, rather than dropping data, on any
// malformed part: the batch is stored whole or not at all. Errors matching
// ErrLimit mean the request is valid but exceeds lim (zero fields are
// defaults). now is the time of profiles without time_unix_nano.
//
// # Labels
//
// A sample's attributes are its resource's, overlaid by its profile's
// (Profile.attribute_indices), overlaid by its own (Sample.attribute_indices).
// They become the series labels by this table, the first attribute present
// supplying the value:
//
//	label         attribute
//	service_name  service.name
//	service       service.name, else process.executable.name
//	version       service.version
//	environment   deployment.environment.name, else deployment.environment
//	node          host.name, else k8s.node.name
//	namespace     k8s.namespace.name
//	pod           k8s.pod.name
//	container     k8s.container.name
//	container_id  container.id
//	pid           process.pid
//	comm          process.executable.name
//	exe           process.executable.path
//	build_id      process.executable.build_id.gnu, else .go, else .htlhash
//
// Every other attribute, and a listed one that supplied no label (such as
// k8s.node.name next to host.name), becomes a label named after its key with
// each character outside [a-zA-Z0-9_] replaced by '_' (thread.name →
// thread_name, k8s.deployment.name → k8s_deployment_name; a leading digit
// gets a '_' prefix, a leading "__" becomes "_"). Table labels win name
// clashes. Not labels: the keys in Limits.IgnoreAttributes (by default
// thread.id and cpu.logical_number), empty values, arrays and key-value
// lists. Integers, doubles and booleans are formatted as in Go, bytes in hex.
//
// # Types
//
//	sample_type         period_type, period      model type (Name)  stored unit
//	samples/count       cpu/<time unit>, p > 0   cpu                count × p, in nanoseconds
//	<name>/<time unit>  any                      <name>             nanoseconds
//	<name>/<unit>       any                      <name>             <unit>
//
// <name> is the sample type sanitized like a label name; time units are
// seconds, milliseconds, microseconds and nanoseconds (or s, ms, us, ns).
// The first row is what the OTel eBPF profiler sends. It does not apply in a
// scope that also has a cpu/<time unit> profile (pprof CPU profiles converted
// to OTLP carry both): there the count profile keeps type samples, so that
// cpu is not counted twice. The model type's SampleType and SampleUnit are
// those of the stored values (cpu/nanoseconds in the first row); PeriodType
// and PeriodUnit are the profile's.
//
// # Values
//
// A sample's value is the sum of its values or, with timestamps only, the
// number of timestamps, in the stored unit. Values and timestamps of unequal
// non-zero lengths and negative values are errors. Equal stacks of a series
// are summed; stacks summing to zero are dropped, and so are profiles left
// without stacks. Scale is the gcd of the sums, which are stored divided by
// it: for eBPF cpu profiles, Scale is the period and the values are counts.
//
// # Frames
//
// A location's lines are frames, innermost first, all but the last Inlined,
// with the line's function name (else its system name), file and line. A
// location without lines, or a line without a function name, is an
// unsymbolized frame keeping its address relative to its mapping (address -
// memory_start + file_offset). Every frame carries its mapping's file name
// and build ID (mapping attribute process.executable.build_id.gnu, else .go,
// else .htlhash); kernel frames (location attribute profile.frame.type =
// kernel) of the kernel image have mapping [kernel.kallsyms]. Equal frames
// are one frame.
//
// # Time
//
// A profile's time is time_unix_nano, or now if it is 0, and its duration
// duration_nano. Profiles of equal series, type and interval are merged.
func Convert(req *collectorpb.ExportProfilesServiceRequest, now time.Time, lim Limits) (*model.Batch, error) {
	lim = lim.withDefaults()
	d, err := newDict(req.GetDictionary())
	if err != nil {
		return nil, err
	}
	c := &converter{
		d:     d,
		lim:   lim,
		lab:   newLabeler(lim),
		now:   now.Round(0).UTC(),
		byKey: make(map[groupKey]*group),
	}
	for i, rp := range req.GetResourceProfiles() {
		if err := c.addResource(rp); err != nil {
			return nil, fmt.Errorf("resource_profiles[%d].%w", i, err)
		}
	}
	return c.batch(), nil
}

// converter accumulates one request's samples into groups, one per future
// model.Profile.
type converter struct {
	d         *dict
	lim       Limits
	lab       *labeler
	now       time.Time
	groups    []*group // in order of appearance, so output is deterministic
	byKey     map[groupKey]*group
	frameRefs int
}

type groupKey struct {
	labels string
	typ    model.Type
	start  int64
	dur    time.Duration
}

// group is one future model.Profile: its distinct stacks, as request-wide
// frame ids, and their summed values.
type group struct {
	prof   *model.Profile
	pos    map[string]int // stackKey → index into stacks and totals
	stacks [][]int32
	totals []int64
}

// profileCtx is what a profile's samples share.
type profileCtx struct {
	typ    model.Type
	mult   int64
	start  time.Time
	dur    time.Duration
	base   attrs             // resource and profile attributes
	series map[string]*group // by the samples' attribute_indices
}

func (c *converter) addResource(rp *profilespb.ResourceProfiles) error {
	res, err := c.d.resourceAttrs(rp.GetResource())
	if err != nil {
		return fmt.Errorf("resource: %w", err)
	}
	for i, sp := range rp.GetScopeProfiles() {
		timeCPU := c.hasTimeCPU(sp.GetProfiles())
		for j, p := range sp.GetProfiles() {
			if err := c.addProfile(res, p, timeCPU); err != nil {
				return fmt.Errorf("scope_profiles[%d].profiles[%d]: %w", i, j, err)
			}
		}
	}
	return nil
}

// hasTimeCPU reports whether profiles include cpu in a time unit; see the
// type table on Convert. Unchecked indices read as "" here.
func (c *converter) hasTimeCPU(profiles []*profilespb.Profile) bool {
	for _, p := range profiles {
		st := p.GetSampleType()
		if c.d.str(st.GetTypeStrindex()) == "cpu" && timeUnitNanos(c.d.str(st.GetUnitStrindex())) > 0 && len(p.GetSamples()) > 0 {
			return true
		}
	}
	return false
}

func (c *converter) addProfile(res attrs, p *profilespb.Profile, timeCPU bool) error {
	st, err := c.d.valueType("sample_type", p.GetSampleType())
	if err != nil {
		return err
	}
	pt, err := c.d.valueType("period_type", p.GetPeriodType())
	if err != nil {
		return err
	}
	pc := &profileCtx{series: make(map[string]*group)}
	if pc.base, err = c.d.overlay(res, "attribute_indices", p.GetAttributeIndices()); err != nil {
		return err
	}
	if len(p.GetSamples()) == 0 {
		return nil // nothing to store
	}
	if pc.typ, pc.mult, err = profileType(st, pt, p.GetPeriod(), timeCPU); err != nil {
		return err
	}
	if pc.start, pc.dur, err = c.interval(p); err != nil {
		return err
	}
	for i, s := range p.GetSamples() {
		if err := c.addSample(pc, s); err != nil {
			return fmt.Errorf("samples[%d]: %w", i, err)
		}
	}
	return nil
}

func (c *converter) interval(p *profilespb.Profile) (time.Time, time.Duration, error) {
	start := c.now
	if ns := p.GetTimeUnixNano(); ns != 0 {
		if ns > math.MaxInt64 {
			return start, 0, fmt.Errorf("time_unix_nano %d out of range", ns)
		}
		start = time.Unix(0, int64(ns)).UTC()
	}
	dur := p.GetDurationNano()
	if dur > math.MaxInt64 {
		return start, 0, fmt.Errorf("duration_nano %d out of range", dur)
	}
	return start, time.Duration(dur), nil
}

func (c *converter) addSample(pc *profileCtx, s *profilespb.Sample) error {
	g, err := c.series(pc, s.GetAttributeIndices())
	if err != nil {
		return err
	}
	if i := s.GetLinkIndex(); !inRange(i, c.d.links) {
		return rangeError("link_index", i, linkTable, c.d.links)
	}
	v, err := sampleValue(s, pc.mult)
	if err != nil {
		return err
	}
	ids, key, err := c.d.stack(s.GetStackIndex(), c.lim.MaxStackDepth)
	if err != nil {
		return err
	}
	return c.add(g, ids, key, v)
}

// series returns the group of samples with attribute indices idx, computing
// labels once per distinct idx of a profile.
func (c *converter) series(pc *profileCtx, idx []int32) (*group, error) {
	k := stackKey(idx)
	if g := pc.series[k]; g != nil {
		return g, nil
	}
	a, err := c.d.overlay(pc.base, "attribute_indices", idx)
	if err != nil {
		return nil, err
	}
	ls, err := c.lab.labels(a)
	if err != nil {
		return nil, err
	}
	g, err := c.group(ls, pc)
	if err != nil {
		return nil, err
	}
	pc.series[k] = g
	return g, nil
}

func (c *converter) group(ls labels.Labels, pc *profileCtx) (*group, error) {
	k := groupKey{ls.String(), pc.typ, pc.start.UnixNano(), pc.dur}
	if g := c.byKey[k]; g != nil {
		return g, nil
	}
	if len(c.groups) >= c.lim.MaxProfiles {
		return nil, limitError("more than %d profiles (series × type × interval)", c.lim.MaxProfiles)
	}
	g := &group{
		prof: &model.Profile{Type: pc.typ, Labels: ls, Time: pc.start, Duration: pc.dur},
		pos:  make(map[string]int),
	}
	c.groups = append(c.groups, g)
	c.byKey[k] = g
	return g, nil
}

func (c *converter) add(g *group, ids []int32, key string, v int64) error {
	i, ok := g.pos[key]
	if !ok {
		c.frameRefs += len(ids)
		if c.frameRefs > c.lim.MaxFrameRefs {
			return limitError("stacks of more than %d frames in all", c.lim.MaxFrameRefs)
		}
		i = len(g.stacks)
		g.pos[key] = i
		g.stacks = append(g.stacks, ids)
		g.totals = append(g.totals, 0)
	}
	sum, ok := addNonNeg(g.totals[i], v)
	if !ok {
		return errors.New("sum of a stack's values overflows int64")
	}
	g.totals[i] = sum
	return nil
}

func (c *converter) batch() *model.Batch {
	b := &model.Batch{}
	for _, g := range c.groups {
		if p := c.finish(g); p != nil {
			b.Profiles = append(b.Profiles, p)
		}
	}
	return b
}

// finish builds a group's profile with a frame table of its own, or returns
// nil if nothing is left to store.
func (c *converter) finish(g *group) *model.Profile {
	var scale int64
	for _, t := range g.totals {
		scale = gcd(scale, t)
	}
	if scale == 0 {
		return nil
	}
	p := g.prof
	p.Scale = scale
	local := make(map[int32]int32)
	for i, ids := range g.stacks {
		if g.totals[i] == 0 {
			continue
		}
		st := make([]int32, len(ids))
		for j, id := range ids {
			l, ok := local[id]
			if !ok {
				l = int32(len(p.Stacks.Frames))
				local[id] = l
				p.Stacks.Frames = append(p.Stacks.Frames, c.d.frames[id])
			}
			st[j] = l
		}
		p.Stacks.Stacks = append(p.Stacks.Stacks, st)
		p.Stacks.Values = append(p.Stacks.Values, g.totals[i]/scale)
	}
	return p
}

// sampleValue is a sample's value in the stored unit: the sum of its values
// or, with timestamps only, one per timestamp; times mult.
func sampleValue(s *profilespb.Sample, mult int64) (int64, error) {
	vals, ts := s.GetValues(), s.GetTimestampsUnixNano()
	if len(vals) > 0 && len(ts) > 0 && len(vals) != len(ts) {
		return 0, fmt.Errorf("%d values but %d timestamps_unix_nano", len(vals), len(ts))
	}
	sum := int64(len(ts))
	if len(vals) > 0 {
		sum = 0
		for _, v := range vals {
			if v < 0 {
				return 0, fmt.Errorf("negative value %d", v)
			}
			var ok bool
			if sum, ok = addNonNeg(sum, v); !ok {
				return 0, errors.New("sum of values overflows int64")
			}
		}
	}
	v, ok := mulNonNeg(sum, mult)
	if !ok {
		return 0, fmt.Errorf("value %d × %d overflows int64", sum, mult)
	}
	return v, nil
}
