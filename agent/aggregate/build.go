package aggregate

import (
	"cmp"
	"slices"
	"strings"

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

// Sample types of the profiles Build makes, in order. off_cpu comes first
// because pprof shows the last type by default, and CPU should stay the
// default view (DefaultSampleType says so too).
var sampleTypes = [...]struct{ typ, unit string }{
	{"off_cpu", "nanoseconds"},
	{"samples", "count"},
	{"cpu", "nanoseconds"},
}

// Indexes into a sample's values.
const (
	OffCPUValue = iota
	SamplesValue
	CPUValue
)

// LabelState is the sample label naming why an off-CPU thread waited.
const LabelState = "state"

// UnknownStackFunction is the one frame of off-CPU time whose blocking
// stack is not known.
const UnknownStackFunction = "[unknown stack]"

// Build turns an interval into a pprof profile with sample types off_cpu,
// samples and cpu (docs/wire.md). A CPU stack seen n times has values
// [0, n, n×period]; off-CPU time d has [d, 0, 0] and a state label. Each
// sample carries its process's labels.
func Build(iv *Interval, r Resolver, opt ProfileOptions) *profile.Profile {
	p := &profile.Profile{
		PeriodType:        &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:            opt.Period,
		TimeNanos:         iv.Start.UnixNano(),
		DurationNanos:     iv.End.Sub(iv.Start).Nanoseconds(),
		DefaultSampleType: "cpu",
	}
	for _, t := range sampleTypes {
		p.SampleType = append(p.SampleType, &profile.ValueType{Type: t.typ, Unit: t.unit})
	}
	b := builder{
		r:         r,
		p:         p,
		mappings:  map[symbolize.Mapping]*profile.Mapping{},
		locations: map[locKey]*profile.Location{},
		functions: map[funcKey]*profile.Function{},
		labels:    map[labelKey]map[string][]string{},
	}
	for _, s := range sorted(iv.Stacks) {
		b.add(s, opt.Period)
	}
	return b.p
}

// sorted orders stacks for deterministic output: by pid, CPU before
// off-CPU, then heaviest first.
func sorted(stacks []*Stack) []*Stack {
	out := slices.Clone(stacks)
	slices.SortStableFunc(out, func(x, y *Stack) int {
		return cmp.Or(cmp.Compare(x.PID, y.PID), cmp.Compare(x.State, y.State),
			cmp.Compare(y.Count, x.Count), cmp.Compare(y.OffCPU, x.OffCPU))
	})
	return out
}

type locKey struct {
	pid     uint32 // user addresses only mean something within their process
	kernel  bool
	call    bool // a return address, resolved at addr-1
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
	labels    map[labelKey]map[string][]string
	unknown   *profile.Location // the UnknownStackFunction location, once made
}

type labelKey struct {
	pid   uint32
	state string
}

func (b *builder) add(s *Stack, period int64) {
	sample := &profile.Sample{Location: b.stackLocations(s), Label: b.sampleLabels(s.PID, s.State)}
	sample.Value = make([]int64, len(sampleTypes))
	sample.Value[OffCPUValue] = s.OffCPU
	sample.Value[SamplesValue] = int64(s.Count)
	sample.Value[CPUValue] = int64(s.Count) * period
	b.p.Sample = append(b.p.Sample, sample)
}

func (b *builder) stackLocations(s *Stack) []*profile.Location {
	if s.Unknown {
		return []*profile.Location{b.unknownLocation()}
	}
	locs := make([]*profile.Location, 0, len(s.Kernel)+len(s.User))
	// pprof lists the leaf first: kernel frames sit above user frames.
	for i, addr := range s.Kernel {
		call := i > 0
		locs = append(locs, b.location(locKey{kernel: true, call: call, addr: addr}, func() symbolize.Location { return b.r.Kernel(addr, call) }))
	}
	// Under a syscall the user pc follows the syscall instruction, like a
	// return address; under an exception or interrupt it is the
	// interrupted instruction itself, often a function's first (a fault on
	// a new stack page), which addr-1 would put in the function before.
	exact := len(locs) > 0 && interrupted(locs[len(locs)-1])
	for i, addr := range s.User {
		call := i > 0 || (len(s.Kernel) > 0 && !exact)
		locs = append(locs, b.location(locKey{pid: s.PID, call: call, addr: addr}, func() symbolize.Location { return b.r.User(s.PID, addr, call) }))
	}
	return locs
}

// exceptionEntries prefix the x86-64 kernel's entry stubs for exceptions
// and interrupts (idtentry), the outermost kernel frame when user code was
// interrupted rather than making a syscall (entry_SYSCALL_64...).
var exceptionEntries = []string{"asm_exc_", "asm_sysvec_", "asm_common_interrupt", "asm_spurious_interrupt"}

// interrupted reports whether the outermost kernel location is an
// exception or interrupt entry.
func interrupted(outermost *profile.Location) bool {
	for _, l := range outermost.Line {
		for _, p := range exceptionEntries {
			if l.Function != nil && strings.HasPrefix(l.Function.Name, p) {
				return true
			}
		}
	}
	return false
}

// unknownLocation is a location without address or mapping whose one
// function says the stack is not known.
func (b *builder) unknownLocation() *profile.Location {
	if b.unknown == nil {
		b.unknown = &profile.Location{ID: uint64(len(b.p.Location) + 1)}
		b.unknown.Line = []profile.Line{{Function: b.function(symbolize.Frame{Function: UnknownStackFunction})}}
		b.p.Location = append(b.p.Location, b.unknown)
	}
	return b.unknown
}

// sampleLabels are the process's labels, plus the state of off-CPU time.
func (b *builder) sampleLabels(pid uint32, state string) map[string][]string {
	k := labelKey{pid, state}
	if l, ok := b.labels[k]; ok {
		return l
	}
	l := map[string][]string{}
	for k, v := range b.r.Labels(pid) {
		if v != "" {
			l[k] = []string{v}
		}
	}
	if state != "" {
		l[LabelState] = []string{state}
	}
	b.labels[k] = l
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
	shared := locKey{kernel: k.kernel, call: k.call, addr: k.addr, mapping: m}
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
