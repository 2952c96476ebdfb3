package otlp

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	collectorpb "go.opentelemetry.io/proto/otlp/collector/profiles/v1development"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	profilespb "go.opentelemetry.io/proto/otlp/profiles/v1development"

	"github.com/flightrec/flightrec/server/model"
)

func TestConvert(t *testing.T) {
	got, err := Convert(testRequest(), testNow, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	assertBatch(t, got, wantBatch())
}

// assertBatch compares batches profile by profile, so that a failure says
// which part differs.
func assertBatch(t *testing.T, got, want *model.Batch) {
	t.Helper()
	if got.Key != want.Key {
		t.Errorf("key %q, want %q", got.Key, want.Key)
	}
	if len(got.Profiles) != len(want.Profiles) {
		for _, p := range got.Profiles {
			t.Logf("got %s %s", p.Type.Name, p.Labels)
		}
		t.Fatalf("%d profiles, want %d", len(got.Profiles), len(want.Profiles))
	}
	for i, g := range got.Profiles {
		w := want.Profiles[i]
		if !labels.Equal(g.Labels, w.Labels) {
			t.Errorf("profile %d: labels\n%s, want\n%s", i, g.Labels, w.Labels)
		}
		if g.Type != w.Type {
			t.Errorf("profile %d: type %+v, want %+v", i, g.Type, w.Type)
		}
		if !g.Time.Equal(w.Time) || g.Duration != w.Duration || g.Scale != w.Scale {
			t.Errorf("profile %d: time %v+%v scale %d, want %v+%v scale %d", i, g.Time, g.Duration, g.Scale, w.Time, w.Duration, w.Scale)
		}
		if !reflect.DeepEqual(g.Stacks, w.Stacks) {
			t.Errorf("profile %d: stacks\n%s, want\n%s", i, formatStacks(g.Stacks), formatStacks(w.Stacks))
		}
		if err := g.Stacks.Validate(); err != nil {
			t.Errorf("profile %d: %v", i, err)
		}
	}
}

func formatStacks(s model.StackSet) string {
	var b strings.Builder
	for i, f := range s.Frames {
		fmt.Fprintf(&b, "  frame %d: %+v\n", i, f)
	}
	for i, st := range s.Stacks {
		fmt.Fprintf(&b, "  stack %v = %d\n", st, s.Values[i])
	}
	return b.String()
}

// oneProfile is a request with one resource and one profile of one sample
// on a one-frame stack, for tests of a single aspect.
type oneProfile struct {
	b   *dictBuilder
	req *collectorpb.ExportProfilesServiceRequest
	p   *profilespb.Profile
	s   *profilespb.Sample
}

func newOneProfile(sampleType, sampleUnit string) *oneProfile {
	b := newDictBuilder()
	st := b.stack(b.loc(0, 0, nil, line(b.fn("f", "f.go"), 1)))
	s := &profilespb.Sample{StackIndex: st, Values: []int64{1}}
	p := &profilespb.Profile{SampleType: b.valueType(sampleType, sampleUnit), Samples: []*profilespb.Sample{s}, TimeUnixNano: testStart}
	req := &collectorpb.ExportProfilesServiceRequest{
		Dictionary: b.d,
		ResourceProfiles: []*profilespb.ResourceProfiles{{
			Resource:      resource(kv("service.name", strValue("svc"))),
			ScopeProfiles: []*profilespb.ScopeProfiles{{Profiles: []*profilespb.Profile{p}}},
		}},
	}
	return &oneProfile{b: b, req: req, p: p, s: s}
}

func (o *oneProfile) convert(t *testing.T, lim Limits) *model.Profile {
	t.Helper()
	batch, err := Convert(o.req, testNow, lim)
	if err != nil {
		t.Fatal(err)
	}
	if len(batch.Profiles) != 1 {
		t.Fatalf("%d profiles, want 1", len(batch.Profiles))
	}
	return batch.Profiles[0]
}

func TestConvertTypes(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		sample, unit           string
		periodType, periodUnit string
		period                 int64
		values                 []int64
		want                   model.Type
		wantScale              int64
	}{
		{
			name: "ebpf cpu", sample: "samples", unit: "count", periodType: "cpu", periodUnit: "nanoseconds", period: 1e7, values: []int64{3},
			want:      model.Type{Name: "cpu", SampleType: "cpu", SampleUnit: "nanoseconds", PeriodType: "cpu", PeriodUnit: "nanoseconds"},
			wantScale: 3e7,
		},
		{
			name: "cpu period in ms", sample: "samples", unit: "count", periodType: "cpu", periodUnit: "milliseconds", period: 10, values: []int64{1},
			want:      model.Type{Name: "cpu", SampleType: "cpu", SampleUnit: "nanoseconds", PeriodType: "cpu", PeriodUnit: "milliseconds"},
			wantScale: 1e7,
		},
		{
			name: "counts without period stay counts", sample: "samples", unit: "count", periodType: "cpu", periodUnit: "nanoseconds", values: []int64{4},
			want:      model.Type{Name: "samples", SampleType: "samples", SampleUnit: "count", PeriodType: "cpu", PeriodUnit: "nanoseconds"},
			wantScale: 4,
		},
		{
			name: "cpu in ms becomes ns", sample: "cpu", unit: "milliseconds", values: []int64{20},
			want:      model.Type{Name: "cpu", SampleType: "cpu", SampleUnit: "nanoseconds"},
			wantScale: 20e6,
		},
		{
			name: "off_cpu", sample: "off_cpu", unit: "nanoseconds", values: []int64{7},
			want:      model.Type{Name: "off_cpu", SampleType: "off_cpu", SampleUnit: "nanoseconds"},
			wantScale: 7,
		},
		{
			name: "heap name sanitized", sample: "alloc.space", unit: "bytes", periodType: "space", periodUnit: "bytes", period: 524288, values: []int64{4096},
			want:      model.Type{Name: "alloc_space", SampleType: "alloc.space", SampleUnit: "bytes", PeriodType: "space", PeriodUnit: "bytes"},
			wantScale: 4096,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOneProfile(tc.sample, tc.unit)
			o.p.PeriodType = o.b.valueType(tc.periodType, tc.periodUnit)
			o.p.Period = tc.period
			o.s.Values = tc.values
			p := o.convert(t, Limits{})
			if p.Type != tc.want || p.Scale != tc.wantScale || !reflect.DeepEqual(p.Stacks.Values, []int64{1}) {
				t.Errorf("type %+v scale %d values %v, want %+v scale %d values [1]", p.Type, p.Scale, p.Stacks.Values, tc.want, tc.wantScale)
			}
		})
	}
}

// A pprof CPU profile converted to OTLP has samples/count and cpu/nanoseconds
// profiles of the same samples: cpu must not count them twice.
func TestConvertPprofStyleCPUNotDoubled(t *testing.T) {
	o := newOneProfile("cpu", "nanoseconds")
	o.s.Values = []int64{2e7}
	count := &profilespb.Profile{
		SampleType: o.b.valueType("samples", "count"),
		PeriodType: o.b.valueType("cpu", "nanoseconds"), Period: 1e7,
		Samples:      []*profilespb.Sample{{StackIndex: o.s.StackIndex, Values: []int64{2}}},
		TimeUnixNano: testStart,
	}
	sp := o.req.ResourceProfiles[0].ScopeProfiles[0]
	sp.Profiles = append(sp.Profiles, count)
	batch, err := Convert(o.req, testNow, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range batch.Profiles {
		names = append(names, fmt.Sprintf("%s=%d", p.Type.Name, p.Stacks.Total()*p.Scale))
	}
	if got, want := strings.Join(names, " "), "cpu=20000000 samples=2"; got != want {
		t.Errorf("profiles %s, want %s", got, want)
	}
}

func TestConvertLabels(t *testing.T) {
	for _, tc := range []struct {
		name     string
		resource []*commonpb.KeyValue
		sample   map[string]string
		lim      Limits
		want     labels.Labels
	}{
		{
			name: "host.name wins node, k8s.node.name kept generic",
			resource: []*commonpb.KeyValue{
				kv("host.name", strValue("h")), kv("k8s.node.name", strValue("k")),
				kv("k8s.namespace.name", strValue("ns")), kv("k8s.container.name", strValue("c")),
				kv("deployment.environment.name", strValue("new")), kv("deployment.environment", strValue("old")),
				kv("service.version", strValue("1.2")),
			},
			want: labels.FromStrings("node", "h", "k8s_node_name", "k", "namespace", "ns", "container", "c",
				"environment", "new", "deployment_environment", "old", "version", "1.2"),
		},
		{
			name: "executable is the service without service.name",
			resource: []*commonpb.KeyValue{
				kv("process.executable.name", strValue("nginx")), kv("process.pid", intValue(7)),
				kv(attrBuildIDGo, strValue("go-id")), kv(attrBuildIDHtlhash, strValue("htl")),
			},
			want: labels.FromStrings("service", "nginx", "comm", "nginx", "pid", "7", "build_id", "go-id",
				"process_executable_build_id_htlhash", "htl"),
		},
		{
			name: "sanitized names and value kinds",
			resource: []*commonpb.KeyValue{
				kv("1st.key", strValue("a")), kv("__name__", strValue("b")), kv("a-b/c", strValue("c")),
				kv("flag", &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}),
				kv("ratio", &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 0.5}}),
				kv("raw", &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte{0xca, 0xfe}}}),
				kv("list", &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{}}}),
				kv("empty", strValue("")),
				kv("ünï", strValue("d")),
			},
			want: labels.FromStrings("_1st_key", "a", "_name__", "b", "a_b_c", "c", "flag", "true", "ratio", "0.5", "raw", "cafe", "_n_", "d"),
		},
		{
			name:     "table labels win clashes, smallest key wins among the rest",
			resource: []*commonpb.KeyValue{kv("service.name", strValue("s")), kv("service", strValue("x")), kv("a_b", strValue("2")), kv("a.b", strValue("1"))},
			want:     labels.FromStrings("service", "s", "service_name", "s", "a_b", "1"),
		},
		{
			name:     "sample attributes override resource ones; thread.id ignored",
			resource: []*commonpb.KeyValue{kv("service.name", strValue("s")), kv("thread.name", strValue("r"))},
			sample:   map[string]string{"thread.name": "worker-1", "thread.id": "99", "cpu.logical_number": "3", "service.name": "t"},
			want:     labels.FromStrings("service", "t", "service_name", "t", "thread_name", "worker-1"),
		},
		{
			name:     "ignore list replaced",
			resource: []*commonpb.KeyValue{kv("host.name", strValue("h")), kv("team", strValue("x"))},
			sample:   map[string]string{"thread.id": "99"},
			lim:      Limits{IgnoreAttributes: []string{"host.name"}},
			want:     labels.FromStrings("team", "x", "thread_id", "99"),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOneProfile("cpu", "nanoseconds")
			o.req.ResourceProfiles[0].Resource = resource(tc.resource...)
			for k, v := range tc.sample {
				o.s.AttributeIndices = append(o.s.AttributeIndices, o.b.strAttr(k, v))
			}
			if got := o.convert(t, tc.lim).Labels; !labels.Equal(got, tc.want) {
				t.Errorf("labels\n%s, want\n%s", got, tc.want)
			}
		})
	}
}

// Keys and string values may be string_table indices (common v1.10+).
func TestConvertResourceStrindex(t *testing.T) {
	o := newOneProfile("cpu", "nanoseconds")
	o.req.ResourceProfiles[0].Resource = resource(
		&commonpb.KeyValue{KeyStrindex: o.b.str("service.name"), Value: &commonpb.AnyValue{
			Value: &commonpb.AnyValue_StringValueStrindex{StringValueStrindex: o.b.str("indexed")},
		}},
	)
	o.s.AttributeIndices = []int32{o.b.attr("thread.name", &commonpb.AnyValue{
		Value: &commonpb.AnyValue_StringValueStrindex{StringValueStrindex: o.b.str("t1")},
	})}
	want := labels.FromStrings("service", "indexed", "service_name", "indexed", "thread_name", "t1")
	if got := o.convert(t, Limits{}).Labels; !labels.Equal(got, want) {
		t.Errorf("labels %s, want %s", got, want)
	}
}

func TestConvertMergesAndDrops(t *testing.T) {
	o := newOneProfile("wall", "nanoseconds")
	// A duplicate stack entry with the same locations is the same stack.
	dup := o.b.stack(o.b.d.StackTable[o.s.StackIndex].LocationIndices...)
	o.p.Samples = append(o.p.Samples,
		&profilespb.Sample{StackIndex: dup, Values: []int64{5}},
		&profilespb.Sample{StackIndex: 0, Values: []int64{5}}, // the empty stack
		&profilespb.Sample{StackIndex: dup, Values: []int64{0}},
	)
	o.p.DurationNano = 0
	// Same series, type and time in a second scope: merged.
	rp := o.req.ResourceProfiles[0]
	rp.ScopeProfiles = append(rp.ScopeProfiles, &profilespb.ScopeProfiles{Profiles: []*profilespb.Profile{{
		SampleType: o.p.SampleType, TimeUnixNano: testStart,
		Samples: []*profilespb.Sample{{StackIndex: o.s.StackIndex, Values: []int64{6}}},
	}}})
	// Only zeros: no profile at all.
	rp.ScopeProfiles = append(rp.ScopeProfiles, &profilespb.ScopeProfiles{Profiles: []*profilespb.Profile{{
		SampleType: o.b.valueType("other", "count"),
		Samples:    []*profilespb.Sample{{StackIndex: o.s.StackIndex, Values: []int64{0}}},
	}}})
	p := o.convert(t, Limits{})
	want := model.StackSet{
		Frames: []model.Frame{{Function: "f", File: "f.go", Line: 1}},
		Stacks: [][]int32{{0}, {}},
		Values: []int64{12, 5},
	}
	if !reflect.DeepEqual(p.Stacks, want) || p.Scale != 1 {
		t.Errorf("scale %d stacks\n%s, want scale 1\n%s", p.Scale, formatStacks(p.Stacks), formatStacks(want))
	}
}

func TestConvertEmpty(t *testing.T) {
	for name, req := range map[string]*collectorpb.ExportProfilesServiceRequest{
		"nil":           nil,
		"no dictionary": {ResourceProfiles: []*profilespb.ResourceProfiles{{ScopeProfiles: []*profilespb.ScopeProfiles{{Profiles: []*profilespb.Profile{{}}}}}}},
	} {
		b, err := Convert(req, testNow, Limits{})
		if err != nil || len(b.Profiles) != 0 {
			t.Errorf("%s: %v, %d profiles; want no error, no profiles", name, err, len(b.Profiles))
		}
	}
	// Without a dictionary every index 0 is the null entry: one sample on
	// the empty stack, type from the empty string: rejected by name.
	req := &collectorpb.ExportProfilesServiceRequest{ResourceProfiles: []*profilespb.ResourceProfiles{{ScopeProfiles: []*profilespb.ScopeProfiles{{
		Profiles: []*profilespb.Profile{{Samples: []*profilespb.Sample{{Values: []int64{1}}}}},
	}}}}}
	if _, err := Convert(req, testNow, Limits{}); err == nil || !strings.Contains(err.Error(), "sample_type has no type name") {
		t.Errorf("error %v, want sample_type has no type name", err)
	}
}

func TestConvertTime(t *testing.T) {
	o := newOneProfile("cpu", "nanoseconds")
	o.p.TimeUnixNano, o.p.DurationNano = 0, uint64(time.Minute)
	now := time.Date(2026, 5, 6, 7, 8, 9, 10, time.FixedZone("x", 3600))
	b, err := Convert(o.req, now, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if p := b.Profiles[0]; !p.Time.Equal(now) || p.Duration != time.Minute {
		t.Errorf("time %v+%v, want %v+1m", p.Time, p.Duration, now)
	}
}

func TestConvertLimits(t *testing.T) {
	deep := func(o *oneProfile) {
		l := o.b.d.StackTable[o.s.StackIndex].LocationIndices[0]
		o.s.StackIndex = o.b.stack(l, l, l, l)
	}
	threads := func(o *oneProfile) {
		for i := range 3 {
			o.p.Samples = append(o.p.Samples, &profilespb.Sample{
				StackIndex: o.s.StackIndex, Values: []int64{1},
				AttributeIndices: []int32{o.b.strAttr("thread.name", fmt.Sprint(i))},
			})
		}
	}
	for _, tc := range []struct {
		name   string
		lim    Limits
		modify func(*oneProfile)
		want   string
	}{
		{"profiles", Limits{MaxProfiles: 2}, threads, "more than 2 profiles"},
		{"depth", Limits{MaxStackDepth: 3}, deep, "stack_table[2] has more than 3 frames"},
		{"frame refs", Limits{MaxFrameRefs: 3}, deep, "stacks of more than 3 frames in all"},
		{"labels", Limits{MaxLabels: 2}, threads, "3 labels, more than 2"},
		{"label value", Limits{MaxLabelValueLen: 2}, func(*oneProfile) {}, "label service: value of 3 bytes, more than 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOneProfile("cpu", "nanoseconds")
			tc.modify(o)
			_, err := Convert(o.req, testNow, tc.lim)
			if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want ErrLimit with %q", err, tc.want)
			}
			if _, err := Convert(o.req, testNow, Limits{}); err != nil {
				t.Errorf("within default limits: %v", err)
			}
		})
	}
}
