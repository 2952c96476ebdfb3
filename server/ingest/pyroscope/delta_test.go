package pyroscope

import (
	"errors"
	"slices"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/flightrec/flightrec/server/ingest/pprofconv"
)

// heap returns a heap-like profile with one sample per stack name, values
// [alloc_objects, inuse_objects].
func heap(values map[string][2]int64) *profile.Profile {
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "alloc_objects", Unit: "count"}, {Type: "inuse_objects", Unit: "count"}},
		PeriodType: &profile.ValueType{Type: "space", Unit: "bytes"},
		TimeNanos:  100,
	}
	names := make([]string, 0, len(values))
	for n := range values {
		names = append(names, n)
	}
	slices.Sort(names)
	for i, n := range names {
		f := &profile.Function{ID: uint64(i + 1), Name: n}
		l := &profile.Location{ID: uint64(i + 1), Line: []profile.Line{{Function: f}}}
		p.Function = append(p.Function, f)
		p.Location = append(p.Location, l)
		v := values[n]
		p.Sample = append(p.Sample, &profile.Sample{Location: []*profile.Location{l}, Value: []int64{v[0], v[1]}})
	}
	return p
}

func values(p *profile.Profile) map[string][2]int64 {
	out := map[string][2]int64{}
	for _, s := range p.Sample {
		out[s.Location[0].Line[0].Function.Name] = [2]int64{s.Value[0], s.Value[1]}
	}
	return out
}

func TestDelta(t *testing.T) {
	cfg := map[string]SampleType{"alloc_objects": {Cumulative: true}, "inuse_objects": {Aggregation: "average"}}
	cur := heap(map[string][2]int64{"a": {10, 3}, "b": {7, 1}})
	prev := heap(map[string][2]int64{"a": {4, 9}, "c": {5, 5}})
	d, dropped, err := Delta(cur, prev, cfg)
	if err != nil || dropped != nil {
		t.Fatalf("Delta: %v, dropped %v", err, dropped)
	}
	// a: 10-4 allocations; c went away (a restart): 0, not -5. inuse as sent.
	want := map[string][2]int64{"a": {6, 3}, "b": {7, 1}, "c": {0, 0}}
	got := values(d)
	if _, ok := got["c"]; !ok {
		got["c"] = [2]int64{}
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("delta %s = %v, want %v (all: %v)", k, got[k], w, got)
		}
	}
	if d.TimeNanos != 100 {
		t.Errorf("time = %d, want cur's", d.TimeNanos)
	}

	cur = heap(map[string][2]int64{"a": {10, 3}})
	d, dropped, err = Delta(cur, nil, cfg)
	if err != nil || !slices.Equal(dropped, []string{"alloc_objects"}) || values(d)["a"] != [2]int64{0, 3} {
		t.Errorf("without prev: %v, dropped %v, err %v; want alloc zeroed", values(d), dropped, err)
	}

	cur = heap(map[string][2]int64{"a": {10, 3}})
	if d, _, err := Delta(cur, nil, nil); err != nil || d != cur {
		t.Errorf("no config: %v, %v; want cur untouched", d, err)
	}

	other := heap(map[string][2]int64{"a": {1, 1}})
	other.SampleType[1].Type = "inuse_space"
	other.PeriodType = nil
	if _, _, err := Delta(heap(map[string][2]int64{"a": {1, 1}}), other, cfg); !errors.Is(err, pprofconv.ErrMalformed) {
		t.Errorf("incompatible prev: err = %v, want ErrMalformed", err)
	}
}
