package otlp

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	collectorpb "go.opentelemetry.io/proto/otlp/collector/profiles/v1development"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	profilespb "go.opentelemetry.io/proto/otlp/profiles/v1development"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/proto"

	"github.com/flightrec/flightrec/server/model"
)

// dictBuilder fills a ProfilesDictionary the way exporters do: every table
// starts with its zero entry and strings are interned.
type dictBuilder struct {
	d    *profilespb.ProfilesDictionary
	strs map[string]int32
}

func newDictBuilder() *dictBuilder {
	return &dictBuilder{
		d: &profilespb.ProfilesDictionary{
			StringTable:    []string{""},
			MappingTable:   []*profilespb.Mapping{{}},
			LocationTable:  []*profilespb.Location{{}},
			FunctionTable:  []*profilespb.Function{{}},
			LinkTable:      []*profilespb.Link{{}},
			AttributeTable: []*profilespb.KeyValueAndUnit{{}},
			StackTable:     []*profilespb.Stack{{}},
		},
		strs: map[string]int32{"": 0},
	}
}

func (b *dictBuilder) str(s string) int32 {
	if i, ok := b.strs[s]; ok {
		return i
	}
	i := int32(len(b.d.StringTable))
	b.d.StringTable = append(b.d.StringTable, s)
	b.strs[s] = i
	return i
}

func (b *dictBuilder) attr(key string, v *commonpb.AnyValue) int32 {
	b.d.AttributeTable = append(b.d.AttributeTable, &profilespb.KeyValueAndUnit{KeyStrindex: b.str(key), Value: v})
	return int32(len(b.d.AttributeTable) - 1)
}

func (b *dictBuilder) strAttr(key, v string) int32 { return b.attr(key, strValue(v)) }

func (b *dictBuilder) fn(name, file string) int32 {
	b.d.FunctionTable = append(b.d.FunctionTable, &profilespb.Function{NameStrindex: b.str(name), FilenameStrindex: b.str(file)})
	return int32(len(b.d.FunctionTable) - 1)
}

func (b *dictBuilder) mapping(file string, start, limit, offset uint64, attrs ...int32) int32 {
	b.d.MappingTable = append(b.d.MappingTable, &profilespb.Mapping{
		MemoryStart: start, MemoryLimit: limit, FileOffset: offset,
		FilenameStrindex: b.str(file), AttributeIndices: attrs,
	})
	return int32(len(b.d.MappingTable) - 1)
}

func (b *dictBuilder) loc(mapping int32, addr uint64, attrs []int32, lines ...*profilespb.Line) int32 {
	b.d.LocationTable = append(b.d.LocationTable, &profilespb.Location{
		MappingIndex: mapping, Address: addr, Lines: lines, AttributeIndices: attrs,
	})
	return int32(len(b.d.LocationTable) - 1)
}

func (b *dictBuilder) stack(locs ...int32) int32 {
	b.d.StackTable = append(b.d.StackTable, &profilespb.Stack{LocationIndices: locs})
	return int32(len(b.d.StackTable) - 1)
}

func (b *dictBuilder) valueType(typ, unit string) *profilespb.ValueType {
	return &profilespb.ValueType{TypeStrindex: b.str(typ), UnitStrindex: b.str(unit)}
}

func line(fn int32, n int64) *profilespb.Line { return &profilespb.Line{FunctionIndex: fn, Line: n} }

func strValue(s string) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: s}}
}

func intValue(i int64) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: i}}
}

func kv(key string, v *commonpb.AnyValue) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: key, Value: v}
}

func resource(kvs ...*commonpb.KeyValue) *resourcepb.Resource {
	return &resourcepb.Resource{Attributes: kvs}
}

// Test fixture constants.
const (
	testPeriod = int64(50 * time.Millisecond) // the eBPF profiler's 20 Hz
	testStart  = uint64(1_700_000_000_000_000_000)
	testDur    = uint64(10 * time.Second)
	libcStart  = uint64(0x7f0000000000)
)

// testNow is the clock of profiles without time_unix_nano.
var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// testRequest is what the OTel eBPF profiler sends, in miniature: two
// resources (api on node-1, worker on node-2) sharing one dictionary, cpu
// samples (samples/count every 50 ms) on stacks with an inlined call, an
// unsymbolized libc frame with a build ID and a kernel frame, thread
// attributes on samples, and an off_cpu profile with values.
func testRequest() *collectorpb.ExportProfilesServiceRequest {
	b := newDictBuilder()
	api := b.mapping("/usr/bin/api", 0x400000, 0x800000, 0x1000, b.strAttr(attrBuildIDGNU, "abc123"))
	libc := b.mapping("/usr/lib/libc.so.6", libcStart, libcStart+0x100000, 0x2000,
		b.strAttr(attrBuildIDHtlhash, "libc-htl"), b.strAttr(attrBuildIDGNU, "libc-gnu"))
	kernel := b.mapping("vmlinux", 0, 0, 0, b.strAttr(attrBuildIDGNU, "kernel-gnu"))

	native := []int32{b.strAttr(attrFrameType, "native")}
	goFrame := []int32{b.strAttr(attrFrameType, "go")}
	kernelFrame := []int32{b.strAttr(attrFrameType, "kernel")}

	lHandle := b.loc(api, 0x401234, goFrame, line(b.fn("main.parse", "/src/parse.go"), 10), line(b.fn("main.handle", "/src/handler.go"), 20))
	lMain := b.loc(api, 0x400100, goFrame, line(b.fn("main.main", "/src/main.go"), 5))
	lLibc := b.loc(libc, libcStart+0x1500, native)
	lSys := b.loc(kernel, 0xffffff, kernelFrame, line(b.fn("do_syscall_64", ""), 0))

	sHandle := b.stack(lHandle, lMain)
	sSys := b.stack(lSys, lLibc, lMain)
	sLibc := b.stack(lLibc, lHandle, lMain)

	thread := func(name string, tid int64) []int32 {
		return []int32{b.strAttr("thread.name", name), b.attr("thread.id", intValue(tid)), b.attr("cpu.logical_number", intValue(tid%4))}
	}
	ts := func(n int) []uint64 {
		out := make([]uint64, n)
		for i := range out {
			out[i] = testStart + uint64(i)*uint64(testPeriod)
		}
		return out
	}
	cpu := func(period int64, samples ...*profilespb.Sample) *profilespb.Profile {
		return &profilespb.Profile{
			SampleType: b.valueType("samples", "count"),
			PeriodType: b.valueType("cpu", "nanoseconds"),
			Period:     period,
			Samples:    samples,
		}
	}

	apiCPU := cpu(testPeriod,
		&profilespb.Sample{StackIndex: sHandle, AttributeIndices: thread("main", 1), TimestampsUnixNano: ts(3)},
		&profilespb.Sample{StackIndex: sSys, AttributeIndices: thread("main", 2), Values: []int64{2}},
		&profilespb.Sample{StackIndex: sHandle, AttributeIndices: thread("main", 3), TimestampsUnixNano: ts(1)},
		&profilespb.Sample{StackIndex: sLibc, AttributeIndices: thread("gc", 4), Values: []int64{1, 1}, TimestampsUnixNano: ts(2)},
		&profilespb.Sample{StackIndex: sSys, AttributeIndices: thread("gc", 4), Values: []int64{0}},
		&profilespb.Sample{StackIndex: sHandle, AttributeIndices: thread("gc", 5), TimestampsUnixNano: ts(3)},
	)
	apiCPU.TimeUnixNano, apiCPU.DurationNano = testStart, testDur

	workerOff := &profilespb.Profile{
		SampleType: b.valueType("off_cpu", "nanoseconds"),
		Samples: []*profilespb.Sample{
			{StackIndex: sSys, Values: []int64{1500, 500}, TimestampsUnixNano: ts(2)},
			{StackIndex: sHandle, Values: []int64{3000}},
		},
	}
	workerCPU := cpu(10_000_000, &profilespb.Sample{StackIndex: sHandle, TimestampsUnixNano: ts(5)})

	return &collectorpb.ExportProfilesServiceRequest{
		Dictionary: b.d,
		ResourceProfiles: []*profilespb.ResourceProfiles{
			{
				Resource: resource(
					kv("service.name", strValue("api")),
					kv("host.name", strValue("node-1")),
					kv("process.pid", intValue(42)),
					kv("process.executable.name", strValue("api")),
					kv("process.executable.path", strValue("/usr/bin/api")),
					kv("k8s.pod.name", strValue("api-0")),
					kv("team.name", strValue("core")),
				),
				ScopeProfiles: []*profilespb.ScopeProfiles{{
					Scope:    &commonpb.InstrumentationScope{Name: "otel-ebpf-profiler"},
					Profiles: []*profilespb.Profile{apiCPU},
				}},
			},
			{
				Resource: resource(
					kv("service.name", strValue("worker")),
					kv("k8s.node.name", strValue("node-2")),
					kv("container.id", strValue("cid")),
					kv("deployment.environment", strValue("prod")),
				),
				ScopeProfiles: []*profilespb.ScopeProfiles{{Profiles: []*profilespb.Profile{workerOff, workerCPU}}},
			},
		},
	}
}

// wantBatch is Convert(testRequest(), testNow, Limits{}), worked out by hand.
func wantBatch() *model.Batch {
	var (
		parse  = model.Frame{Function: "main.parse", File: "/src/parse.go", Line: 10, Inlined: true, Mapping: "/usr/bin/api", BuildID: "abc123"}
		handle = model.Frame{Function: "main.handle", File: "/src/handler.go", Line: 20, Mapping: "/usr/bin/api", BuildID: "abc123"}
		main   = model.Frame{Function: "main.main", File: "/src/main.go", Line: 5, Mapping: "/usr/bin/api", BuildID: "abc123"}
		sys    = model.Frame{Function: "do_syscall_64", Mapping: "[kernel.kallsyms]", BuildID: "kernel-gnu"}
		// 0x7f0000001500 - 0x7f0000000000 + 0x2000; GNU build ID preferred.
		libc = model.Frame{Mapping: "/usr/lib/libc.so.6", BuildID: "libc-gnu", Address: 0x3500}
	)
	cpu := model.Type{Name: "cpu", SampleType: "cpu", SampleUnit: "nanoseconds", PeriodType: "cpu", PeriodUnit: "nanoseconds"}
	apiLabels := func(thread string) labels.Labels {
		return labels.FromStrings("service", "api", "service_name", "api", "node", "node-1", "pid", "42",
			"comm", "api", "exe", "/usr/bin/api", "pod", "api-0", "team_name", "core", "thread_name", thread)
	}
	worker := labels.FromStrings("service", "worker", "service_name", "worker", "node", "node-2",
		"container_id", "cid", "environment", "prod")
	start := time.Unix(0, int64(testStart)).UTC()
	return &model.Batch{Profiles: []*model.Profile{
		{
			// handle: 3+1 samples, sys: 2 → 200 ms and 100 ms.
			Type: cpu, Labels: apiLabels("main"), Time: start, Duration: time.Duration(testDur),
			Scale: 2 * testPeriod,
			Stacks: model.StackSet{
				Frames: []model.Frame{parse, handle, main, sys, libc},
				Stacks: [][]int32{{0, 1, 2}, {3, 4, 2}},
				Values: []int64{2, 1},
			},
		},
		{
			// libc: 2 samples, sys: 0 (dropped), handle: 3.
			Type: cpu, Labels: apiLabels("gc"), Time: start, Duration: time.Duration(testDur),
			Scale: testPeriod,
			Stacks: model.StackSet{
				Frames: []model.Frame{libc, parse, handle, main},
				Stacks: [][]int32{{0, 1, 2, 3}, {1, 2, 3}},
				Values: []int64{2, 3},
			},
		},
		{
			// sys: 2000 ns, handle: 3000 ns.
			Type: model.Type{Name: "off_cpu", SampleType: "off_cpu", SampleUnit: "nanoseconds"}, Labels: worker, Time: testNow,
			Scale: 1000,
			Stacks: model.StackSet{
				Frames: []model.Frame{sys, libc, main, parse, handle},
				Stacks: [][]int32{{0, 1, 2}, {3, 4, 2}},
				Values: []int64{2, 3},
			},
		},
		{
			// 5 samples every 10 ms.
			Type: cpu, Labels: worker, Time: testNow,
			Scale: 50_000_000,
			Stacks: model.StackSet{
				Frames: []model.Frame{parse, handle, main},
				Stacks: [][]int32{{0, 1, 2}},
				Values: []int64{1},
			},
		},
	}}
}

func marshal(t interface{ Fatal(...any) }, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// recordingSink keeps what it is given; with fail set it stores nothing and
// returns fail.
type recordingSink struct {
	mu      sync.Mutex
	batches []*model.Batch
	calls   int
	fail    error
}

func (s *recordingSink) Append(_ context.Context, b *model.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.fail != nil {
		return s.fail
	}
	s.batches = append(s.batches, b)
	return nil
}

func (s *recordingSink) take() []*model.Batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.batches
	s.batches = nil
	return b
}

var errSinkDown = errors.New("store is down")
