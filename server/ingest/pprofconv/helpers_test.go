package pprofconv

import (
	"bytes"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/flightrec/flightrec/server/model"
)

// builder makes hand-written profiles: functions by name, one location per
// function (one line), samples by stack of names.
type builder struct {
	p     *profile.Profile
	funcs map[string]*profile.Location
}

func newBuilder(types ...string) *builder {
	b := &builder{p: &profile.Profile{TimeNanos: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano(), DurationNanos: int64(10 * time.Second)}, funcs: map[string]*profile.Location{}}
	for _, t := range types {
		typ, unit, _ := strings.Cut(t, "/")
		b.p.SampleType = append(b.p.SampleType, &profile.ValueType{Type: typ, Unit: unit})
	}
	return b
}

func (b *builder) loc(name string) *profile.Location {
	if l, ok := b.funcs[name]; ok {
		return l
	}
	f := &profile.Function{ID: uint64(len(b.p.Function) + 1), Name: name, Filename: name + ".go"}
	b.p.Function = append(b.p.Function, f)
	l := &profile.Location{ID: uint64(len(b.p.Location) + 1), Line: []profile.Line{{Function: f, Line: 10}}}
	b.p.Location = append(b.p.Location, l)
	b.funcs[name] = l
	return l
}

// sample adds a sample; stack is leaf first, labels alternate name, value.
func (b *builder) sample(stack []string, values []int64, labels ...string) *builder {
	s := &profile.Sample{Value: values}
	for _, n := range stack {
		s.Location = append(s.Location, b.loc(n))
	}
	for i := 0; i+1 < len(labels); i += 2 {
		if s.Label == nil {
			s.Label = map[string][]string{}
		}
		s.Label[labels[i]] = []string{labels[i+1]}
	}
	b.p.Sample = append(b.p.Sample, s)
	return b
}

// stacks renders a profile's stacks as "leaf;...;root" → value×scale.
func stacks(p *model.Profile) map[string]int64 {
	out := map[string]int64{}
	for i, st := range p.Stacks.Stacks {
		names := make([]string, len(st))
		for j, f := range st {
			names[j] = p.Stacks.Frames[f].Function
		}
		out[strings.Join(names, ";")] += p.Stacks.Values[i] * p.Scale
	}
	return out
}

func mustConvert(t *testing.T, p *profile.Profile, opt Options) []*model.Profile {
	t.Helper()
	out, _, err := Convert(p, opt)
	if err != nil {
		t.Fatalf("Convert: %v", err)
	}
	for _, mp := range out {
		if err := mp.Stacks.Validate(); err != nil {
			t.Fatalf("%s%s: %v", mp.Type.Name, mp.Labels, err)
		}
		if mp.Scale < 1 {
			t.Fatalf("%s%s: scale %d", mp.Type.Name, mp.Labels, mp.Scale)
		}
	}
	return out
}

func byType(ps []*model.Profile) map[string][]*model.Profile {
	m := map[string][]*model.Profile{}
	for _, p := range ps {
		m[p.Type.Name] = append(m[p.Type.Name], p)
	}
	return m
}

// mix (murmur3's finalizer) is inlined into spin yet long enough for
// samples to land in it: the CPU test looks for it as an inlined frame.
func mix(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x + 1
}

//go:noinline
func spin(d time.Duration) uint64 {
	var x uint64
	for end := time.Now().Add(d); time.Now().Before(end); {
		for range 10000 {
			x = mix(x)
		}
	}
	return x
}

// cpuProfile profiles spin for d with runtime/pprof and parses the result.
func cpuProfile(t *testing.T, d time.Duration) *profile.Profile {
	t.Helper()
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		t.Skipf("CPU profiling unavailable: %v", err)
	}
	sink := spin(d)
	pprof.StopCPUProfile()
	runtime.KeepAlive(sink)
	p, err := Decode(buf.Bytes(), 64<<20)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	return p
}
