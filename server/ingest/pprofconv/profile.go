package pprofconv

import (
	"slices"

	"github.com/google/pprof/profile"
)

// fromProfile fills t with p, which CheckValid accepted, so that Convert
// and Scratch.Convert share one converter.
func (t *tables) fromProfile(p *profile.Profile) {
	t.reset()
	ft := profileTables{t: t, index: map[string]int64{}}
	ft.str("") // index 0
	for _, st := range p.SampleType {
		t.sampleTypes = append(t.sampleTypes, valueType{ft.str(st.Type), ft.str(st.Unit)})
	}
	if pt := p.PeriodType; pt != nil {
		t.periodType = valueType{ft.str(pt.Type), ft.str(pt.Unit)}
	}
	t.period, t.timeNanos, t.durationNanos = p.Period, p.TimeNanos, p.DurationNanos

	mappings := make(map[*profile.Mapping]int32, len(p.Mapping))
	for i, m := range p.Mapping {
		mappings[m] = int32(i)
		t.mappings = append(t.mappings, mapping{id: m.ID, start: m.Start, offset: m.Offset, file: ft.str(m.File), buildID: ft.str(m.BuildID)})
	}
	functions := make(map[*profile.Function]int32, len(p.Function))
	for i, f := range p.Function {
		functions[f] = int32(i)
		t.functions = append(t.functions, function{id: f.ID, name: ft.str(f.Name), systemName: ft.str(f.SystemName), filename: ft.str(f.Filename)})
	}
	locations := make(map[*profile.Location]int32, len(p.Location))
	for i, l := range p.Location {
		locations[l] = int32(i)
		loc := location{id: l.ID, address: l.Address, mapping: -1, lines: span{start: int32(len(t.lines))}}
		if l.Mapping != nil {
			loc.mapping = mappings[l.Mapping]
		}
		for _, ln := range l.Line {
			t.lines = append(t.lines, line{functionID: ln.Function.ID, line: ln.Line, function: functions[ln.Function]})
		}
		loc.lines.end = int32(len(t.lines))
		t.locations = append(t.locations, loc)
	}
	for _, s := range p.Sample {
		ps := sample{
			locs:   span{start: int32(len(t.sampleLocs))},
			values: span{start: int32(len(t.values))},
			labels: span{start: int32(len(t.labels))},
		}
		for _, l := range s.Location {
			t.sampleLocs = append(t.sampleLocs, locations[l])
		}
		t.values = append(t.values, s.Value...)
		ft.labels(s.Label)
		ps.locs.end, ps.values.end, ps.labels.end = int32(len(t.sampleLocs)), int32(len(t.values)), int32(len(t.labels))
		t.samples = append(t.samples, ps)
	}
}

type profileTables struct {
	t     *tables
	index map[string]int64
	empty int64 // a second "" in the string table, for empty label values
}

func (ft *profileTables) str(s string) int64 {
	if i, ok := ft.index[s]; ok {
		return i
	}
	i := int64(len(ft.t.strs))
	ft.t.strs = append(ft.t.strs, s)
	ft.index[s] = i
	return i
}

// labels adds a sample's string labels, one per name with its first
// value, names sorted. In pprof's encoding a label whose value has string
// index 0 is not a string label, so an empty value, which Convert skips
// but counts against MaxSampleLabels, gets an index of its own.
func (ft *profileTables) labels(m map[string][]string) {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		v := ft.emptyValue()
		if vs := m[k]; len(vs) > 0 && vs[0] != "" {
			v = ft.str(vs[0])
		}
		ft.t.labels = append(ft.t.labels, label{ft.str(k), v})
	}
}

func (ft *profileTables) emptyValue() int64 {
	if ft.empty == 0 {
		ft.empty = int64(len(ft.t.strs))
		ft.t.strs = append(ft.t.strs, "")
	}
	return ft.empty
}
