package pprofconv

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/model"
)

func TestConvertGoCPU(t *testing.T) {
	p := cpuProfile(t, time.Second)
	var counts []int64
	var nanos int64
	for _, s := range p.Sample {
		counts = append(counts, s.Value[0])
		nanos += s.Value[1]
	}
	if sum(counts) < 10 {
		t.Skipf("only %d CPU samples in 1 s; CPU too contended to test", sum(counts))
	}
	out := mustConvert(t, p, Options{})
	if len(out) != 1 || out[0].Type.Name != "cpu" {
		t.Fatalf("got %d profiles %v, want one cpu profile (samples/count dropped)", len(out), byType(out))
	}
	cpu := out[0]
	want := model.Type{Name: "cpu", SampleType: "cpu", SampleUnit: "nanoseconds", PeriodType: "cpu", PeriodUnit: "nanoseconds"}
	if cpu.Type != want {
		t.Errorf("type = %+v, want %+v", cpu.Type, want)
	}
	// Samples of one stack merge, so the gcd is over per-stack sums; with a
	// stack seen once (nearly always) it is 1 and Scale is the period.
	if wantScale := p.Period * gcdAll(stackSums(p)); cpu.Scale != wantScale {
		t.Errorf("scale = %d, want %d (period %d)", cpu.Scale, wantScale, p.Period)
	}
	if got := cpu.Stacks.Total() * cpu.Scale; got != nanos {
		t.Errorf("total = %d ns, want %d", got, nanos)
	}
	if got, want := cpu.Stacks.Total()*(cpu.Scale/p.Period), sum(counts); got != want {
		t.Errorf("total = %d samples, want %d", got, want)
	}
	if !cpu.Time.Equal(time.Unix(0, p.TimeNanos)) || cpu.Duration != time.Duration(p.DurationNanos) {
		t.Errorf("time %v+%v, want %v+%v", cpu.Time, cpu.Duration, time.Unix(0, p.TimeNanos), time.Duration(p.DurationNanos))
	}
	if !cpu.Labels.IsEmpty() {
		t.Errorf("labels = %v, want none", cpu.Labels)
	}
	var inSpin int64
	for st, v := range stacks(cpu) {
		if strings.Contains(st, "pprofconv.spin") {
			inSpin += v
		}
	}
	if inSpin*2 < nanos {
		t.Errorf("spin has %d of %d ns; want most", inSpin, nanos)
	}
	if !hasInlined(cpu, ".mix", ".spin") {
		t.Errorf("no stack has mix marked inlined into spin")
	}
}

// stackSums sums sample counts by stack of frames (function and line):
// locations at different addresses on the same line are one stack.
func stackSums(p *profile.Profile) []int64 {
	sums := map[string]int64{}
	for _, s := range p.Sample {
		var k []string
		for _, l := range s.Location {
			for _, ln := range l.Line {
				k = append(k, fmt.Sprintf("%s:%d", ln.Function.Name, ln.Line))
			}
		}
		sums[strings.Join(k, ";")] += s.Value[0]
	}
	return slices.Collect(maps.Values(sums))
}

func sum(vs []int64) int64 {
	var t int64
	for _, v := range vs {
		t += v
	}
	return t
}

// hasInlined reports whether a stack has a frame ending in inner, marked
// inlined, right above a frame ending in outer, not marked.
func hasInlined(p *model.Profile, inner, outer string) bool {
	for _, st := range p.Stacks.Stacks {
		for i := 0; i+1 < len(st); i++ {
			f, g := p.Stacks.Frames[st[i]], p.Stacks.Frames[st[i+1]]
			if strings.HasSuffix(f.Function, inner) && f.Inlined && strings.HasSuffix(g.Function, outer) && !g.Inlined {
				return true
			}
		}
	}
	return false
}

func TestConvertSampleLabels(t *testing.T) {
	b := newBuilder("cpu/nanoseconds")
	b.sample([]string{"a", "main"}, []int64{20}, "tenant", "a", "http.method", "GET")
	b.sample([]string{"b", "main"}, []int64{10}, "http.method", "GET", "tenant", "a")
	b.sample([]string{"a", "main"}, []int64{30}, "tenant", "b")
	b.sample([]string{"a", "main"}, []int64{40})
	b.sample([]string{"a", "main"}, []int64{10}, "tenant", "b", "service", "evil")                 // conflicts with base
	b.sample([]string{"a", "main"}, []int64{10}, "tenant", "b", "__name__", "x", "", "empty-name") // reserved
	b.sample([]string{"a", "main"}, []int64{5}, "tenant", "b", "http.method", "GET", "http_method", "POST")
	b.sample([]string{"a", "main"}, []int64{5}, "tenant", "a", "http.method", "GET", "empty", "")
	b.p.Sample[len(b.p.Sample)-1].NumLabel = map[string][]int64{"bytes": {512}} // ignored

	out, stats, err := Convert(b.p, Options{Labels: labels.FromStrings("service", "api")})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]int64{}
	for _, p := range out {
		got[p.Labels.String()] = stacks(p)
	}
	want := map[string]map[string]int64{
		`{http_method="GET", service="api", tenant="a"}`: {"a;main": 25, "b;main": 10},
		`{http_method="GET", service="api", tenant="b"}`: {"a;main": 5},
		`{service="api", tenant="b"}`:                    {"a;main": 50},
		`{service="api"}`:                                {"a;main": 40},
	}
	if !maps.EqualFunc(got, want, maps.Equal) {
		t.Errorf("series:\n got %v\nwant %v", got, want)
	}
	if want := (Stats{Conflicts: 2, Reserved: 2}); stats != want {
		t.Errorf("stats = %+v, want %+v", stats, want)
	}
}

func TestConvertFilter(t *testing.T) {
	b := newBuilder("cpu/nanoseconds")
	for i := range 5 {
		b.sample([]string{"a"}, []int64{1}, "span", string(rune('0'+i)), "tenant", "a")
	}
	b.sample([]string{"a"}, []int64{1}, "span", "0", "tenant", "a") // same set: no new call
	var calls int
	keepTwo := func(typ string, s labels.Labels) labels.Labels {
		calls++
		if typ != "cpu" {
			t.Errorf("filter called with type %q", typ)
		}
		if v := s.Get("span"); v > "1" {
			return labels.NewBuilder(s).Del("span").Labels()
		}
		return s
	}
	out := mustConvert(t, b.p, Options{Filter: keepTwo})
	got := map[string]int64{}
	for _, p := range out {
		got[p.Labels.String()] = p.Stacks.Total() * p.Scale
	}
	want := map[string]int64{`{span="0", tenant="a"}`: 2, `{span="1", tenant="a"}`: 1, `{tenant="a"}`: 3}
	if !maps.Equal(got, want) {
		t.Errorf("series = %v, want %v", got, want)
	}
	if calls != 5 {
		t.Errorf("filter called %d times, want once per distinct label set (5)", calls)
	}
}

func TestConvertUnsymbolized(t *testing.T) {
	m := &profile.Mapping{ID: 1, Start: 0x400000, Limit: 0x500000, Offset: 0x1000, File: "/usr/bin/app", BuildID: "abc123"}
	fn := &profile.Function{ID: 1, Name: "main.main", Filename: "main.go"}
	raw := &profile.Location{ID: 1, Mapping: m, Address: 0x401234}
	jit := &profile.Location{ID: 2, Address: 0xdeadbeef}
	sym := &profile.Location{ID: 3, Mapping: m, Address: 0x400100, Line: []profile.Line{{Function: fn, Line: 7}}}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}},
		Mapping:    []*profile.Mapping{m},
		Function:   []*profile.Function{fn},
		Location:   []*profile.Location{raw, jit, sym},
		Sample: []*profile.Sample{
			{Location: []*profile.Location{raw, jit, sym}, Value: []int64{5}},
			{Location: []*profile.Location{raw, sym}, Value: []int64{3}},
		},
	}
	out := mustConvert(t, p, Options{})
	if len(out) != 1 {
		t.Fatalf("got %d profiles, want 1", len(out))
	}
	want := []model.Frame{
		{Mapping: "/usr/bin/app", BuildID: "abc123", Address: 0x2234},
		{Address: 0xdeadbeef},
		{Function: "main.main", File: "main.go", Line: 7, Mapping: "/usr/bin/app", BuildID: "abc123"},
	}
	if got := out[0].Stacks.Frames; !slices.Equal(got, want) {
		t.Errorf("frames (deduplicated across stacks):\n got %+v\nwant %+v", got, want)
	}
	if got := out[0].Stacks.Stacks; len(got) != 2 || !slices.Equal(got[0], []int32{0, 1, 2}) || !slices.Equal(got[1], []int32{0, 2}) {
		t.Errorf("stacks = %v", got)
	}
}

//go:noinline
func allocate(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = make([]byte, 4096)
	}
	return out
}

func TestConvertHeap(t *testing.T) {
	kept := allocate(8192) // 32 MiB: sampled whatever the rate
	runtime.GC()
	var buf bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&buf, 0); err != nil {
		t.Fatal(err)
	}
	runtime.KeepAlive(kept)
	p, err := Decode(buf.Bytes(), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	out := mustConvert(t, p, Options{})
	units := map[string]string{}
	for _, mp := range out {
		units[mp.Type.Name] = mp.Type.SampleUnit
		if mp.Type.PeriodType != "space" || mp.Type.PeriodUnit != "bytes" {
			t.Errorf("%s: period %s/%s, want space/bytes", mp.Type.Name, mp.Type.PeriodType, mp.Type.PeriodUnit)
		}
		if !mp.Labels.IsEmpty() {
			t.Errorf("%s: labels %v, want none (the bytes numeric label is ignored)", mp.Type.Name, mp.Labels)
		}
	}
	want := map[string]string{"alloc_objects": "count", "alloc_space": "bytes", "inuse_objects": "count", "inuse_space": "bytes"}
	if !maps.Equal(units, want) {
		t.Errorf("types = %v, want %v", units, want)
	}
	var allocated int64
	for _, mp := range byType(out)["inuse_space"] {
		for st, v := range stacks(mp) {
			if strings.Contains(st, "pprofconv.allocate") {
				allocated += v
			}
		}
	}
	if allocated < 16<<20 {
		t.Errorf("inuse_space of allocate = %d bytes, want about 32 MiB", allocated)
	}
}

func TestTypeNames(t *testing.T) {
	tests := []struct {
		types []string
		hint  Hint
		want  []string
	}{
		{[]string{"samples/count", "cpu/nanoseconds"}, "", []string{"", "cpu"}},
		{[]string{"samples/count", "off_cpu/nanoseconds"}, "", []string{"", "off_cpu"}},
		{[]string{"samples/count"}, "", []string{"samples"}},
		{[]string{"samples/count", "wall/nanoseconds"}, "", []string{"samples", "wall"}},
		{[]string{"alloc_objects/count", "alloc_space/bytes", "inuse_objects/count", "inuse_space/bytes"}, "",
			[]string{"alloc_objects", "alloc_space", "inuse_objects", "inuse_space"}},
		{[]string{"contentions/count", "delay/nanoseconds"}, "", []string{"contentions", "delay"}},
		{[]string{"contentions/count", "delay/nanoseconds"}, HintBlock, []string{"block_contentions", "block_delay"}},
		{[]string{"contentions/count", "delay/nanoseconds"}, HintMutex, []string{"mutex_contentions", "mutex_delay"}},
		{[]string{"contentions/count", "delay/nanoseconds"}, "bogus", []string{"contentions", "delay"}},
		{[]string{"goroutine/count"}, HintMutex, []string{"goroutine"}},
		{[]string{"goroutines/count"}, "", []string{"goroutine"}},
		{[]string{"http.requests/count", "9lives/count", "/count"}, "", []string{"http_requests", "_9lives", "unknown"}},
		{[]string{"cpu/nanoseconds", "cpu/count"}, "", []string{"cpu", "cpu_count"}},
	}
	for _, tt := range tests {
		got, err := typeNames(newBuilder(tt.types...).p.SampleType, tt.hint)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("typeNames(%v, %q) = %q, %v; want %q", tt.types, tt.hint, got, err, tt.want)
		}
	}
	if _, err := typeNames(newBuilder("cpu/nanoseconds", "cpu/nanoseconds").p.SampleType, ""); !errors.Is(err, ErrMalformed) {
		t.Errorf("duplicate types: err = %v, want ErrMalformed", err)
	}
}

// agentProfile is a profile as docs/wire.md specifies, with kernel frames,
// an inlined frame, an unsymbolized frame and two processes.
func agentProfile(period int64) *profile.Profile {
	app := &profile.Mapping{ID: 1, Start: 0x555500000000, Limit: 0x555500100000, Offset: 0x2000, File: "/usr/bin/api", BuildID: "b1d", HasFunctions: true}
	kernel := &profile.Mapping{ID: 2, Start: 0xffffffff81000000, Limit: 0xffffffff82000000, File: "[kernel.kallsyms]"}
	fns := []*profile.Function{
		{ID: 1, Name: "do_syscall_64"},
		{ID: 2, Name: "encoding/json.Marshal", Filename: "json.go"},
		{ID: 3, Name: "main.handle", Filename: "main.go"},
		{ID: 4, Name: "main.main", Filename: "main.go"},
	}
	locs := []*profile.Location{
		{ID: 1, Mapping: kernel, Address: 0xffffffff81000010, Line: []profile.Line{{Function: fns[0]}}},
		{ID: 2, Mapping: app, Address: 0x555500000100, Line: []profile.Line{{Function: fns[1], Line: 5}, {Function: fns[2], Line: 20}}},
		{ID: 3, Mapping: app, Address: 0x555500000200, Line: []profile.Line{{Function: fns[3], Line: 9}}},
		{ID: 4, Mapping: app, Address: 0x555500000300},
	}
	api := map[string][]string{"node": {"n1"}, "pid": {"42"}, "comm": {"api"}, "exe": {"/usr/bin/api"}, "build_id": {"b1d"}, "service": {"api"}, "version": {"1.2"}}
	worker := map[string][]string{"node": {"n1"}, "pid": {"43"}, "comm": {"worker"}, "service": {"worker"}}
	return &profile.Profile{
		SampleType:    []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType:    &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:        period,
		TimeNanos:     time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC).UnixNano(),
		DurationNanos: int64(10 * time.Second),
		Mapping:       []*profile.Mapping{app, kernel},
		Function:      fns,
		Location:      locs,
		Sample: []*profile.Sample{
			{Location: []*profile.Location{locs[0], locs[1], locs[2]}, Value: []int64{3, 3 * period}, Label: api},
			{Location: []*profile.Location{locs[3], locs[2]}, Value: []int64{1, period}, Label: api},
			{Location: []*profile.Location{locs[2]}, Value: []int64{2, 2 * period}, Label: worker},
		},
	}
}

func TestConvertAgentProfile(t *testing.T) {
	const period = 52631578 // 19 Hz
	var wire bytes.Buffer
	if err := agentProfile(period).Write(&wire); err != nil { // gzip, as the agent sends it
		t.Fatal(err)
	}
	p, err := Decode(wire.Bytes(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	out := mustConvert(t, p, Options{})
	if len(out) != 2 {
		t.Fatalf("got %d profiles, want 2 (one per process)", len(out))
	}
	api, worker := out[0], out[1]
	if got := api.Labels.String(); got != `{build_id="b1d", comm="api", exe="/usr/bin/api", node="n1", pid="42", service="api", version="1.2"}` {
		t.Errorf("api labels = %s", got)
	}
	if got := worker.Labels.String(); got != `{comm="worker", node="n1", pid="43", service="worker"}` {
		t.Errorf("worker labels = %s", got)
	}
	if api.Type.Name != "cpu" || api.Scale != period || worker.Scale != 2*period {
		t.Errorf("type %s, scales %d and %d; want cpu, %d and %d", api.Type.Name, api.Scale, worker.Scale, period, 2*period)
	}
	if got, want := stacks(api), map[string]int64{"do_syscall_64;encoding/json.Marshal;main.handle;main.main": 3 * period, ";main.main": period}; !maps.Equal(got, want) {
		t.Errorf("api stacks = %v, want %v", got, want)
	}
	if !hasInlined(api, "json.Marshal", "main.handle") {
		t.Errorf("json.Marshal not marked inlined into main.handle")
	}
	var kernel, raw model.Frame
	for _, f := range api.Stacks.Frames {
		switch f.Function {
		case "do_syscall_64":
			kernel = f
		case "":
			raw = f
		}
	}
	if kernel.Mapping != "[kernel.kallsyms]" || kernel.Address != 0 {
		t.Errorf("kernel frame = %+v", kernel)
	}
	if want := (model.Frame{Mapping: "/usr/bin/api", BuildID: "b1d", Address: 0x2300}); raw != want {
		t.Errorf("unsymbolized frame = %+v, want %+v", raw, want)
	}
	if !api.Time.Equal(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)) || api.Duration != 10*time.Second {
		t.Errorf("interval %v+%v", api.Time, api.Duration)
	}
}

func TestConvertValues(t *testing.T) {
	b := newBuilder("alloc_objects/count", "inuse_objects/count")
	b.sample([]string{"a"}, []int64{300, 0})
	b.sample([]string{"b"}, []int64{500, 0})
	b.sample([]string{"a"}, []int64{300, 0}) // same stack: summed
	b.p.Sample[2].NumLabel = map[string][]int64{"bytes": {64}}
	out := mustConvert(t, b.p, Options{})
	if len(out) != 1 || out[0].Type.Name != "alloc_objects" {
		t.Fatalf("got %v, want only alloc_objects (inuse is all zero)", byType(out))
	}
	p := out[0]
	if p.Scale != 100 || !slices.Equal(p.Stacks.Values, []int64{6, 5}) {
		t.Errorf("scale %d, values %v; want 100, [6 5]", p.Scale, p.Stacks.Values)
	}
	if len(p.Stacks.Frames) != 2 {
		t.Errorf("%d frames, want 2", len(p.Stacks.Frames))
	}
}

func TestConvertTime(t *testing.T) {
	now := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	from := now.Add(-time.Hour)
	tests := []struct {
		name      string
		timeNanos int64
		opt       Options
		want      time.Time
		wantDur   time.Duration
	}{
		{"from profile", now.Add(time.Minute).UnixNano(), Options{Now: now}, now.Add(time.Minute), 10 * time.Second},
		{"no time_nanos", 0, Options{Now: now}, now, 10 * time.Second},
		{"start overrides", now.UnixNano(), Options{Now: now, Start: from, Duration: time.Second}, from, time.Second},
	}
	for _, tt := range tests {
		b := newBuilder("cpu/nanoseconds").sample([]string{"a"}, []int64{1})
		b.p.TimeNanos = tt.timeNanos
		out := mustConvert(t, b.p, tt.opt)
		if !out[0].Time.Equal(tt.want) || out[0].Duration != tt.wantDur {
			t.Errorf("%s: %v+%v, want %v+%v", tt.name, out[0].Time, out[0].Duration, tt.want, tt.wantDur)
		}
	}
}

func TestConvertRejects(t *testing.T) {
	long := strings.Repeat("x", 1025)
	tests := []struct {
		name   string
		build  func(b *builder)
		limits Limits
		kind   error
		msg    string
	}{
		{"negative value", func(b *builder) { b.sample([]string{"a"}, []int64{-5}) }, Limits{}, ErrMalformed, "negative cpu value -5"},
		{"value count", func(b *builder) { b.sample([]string{"a"}, []int64{1, 2}) }, Limits{}, ErrMalformed, "sample has 2 values vs. 1 types"},
		{"nil function", func(b *builder) { b.sample([]string{"a"}, []int64{1}); b.p.Location[0].Line[0].Function = nil }, Limits{}, ErrMalformed, "nil function"},
		{"samples", func(b *builder) { b.sample([]string{"a"}, []int64{1}).sample([]string{"a"}, []int64{1}) }, Limits{MaxSamples: 1}, ErrTooLarge, "2 samples, more than the limit of 1"},
		{"locations", func(b *builder) { b.sample([]string{"a", "b"}, []int64{1}) }, Limits{MaxLocations: 1}, ErrTooLarge, "2 locations"},
		{"depth", func(b *builder) { b.sample([]string{"a", "b", "c"}, []int64{1}) }, Limits{MaxStackDepth: 2}, ErrTooLarge, "3 frames"},
		{"total frames", func(b *builder) { b.sample([]string{"a", "b"}, []int64{1}).sample([]string{"a", "b"}, []int64{1}) }, Limits{MaxStackFrames: 3}, ErrTooLarge, "more than 3 stack frames"},
		{"label value", func(b *builder) { b.sample([]string{"a"}, []int64{1}, "span", long) }, Limits{}, ErrBadLabels, `value of label "span" is longer than 1 KiB`},
		{"label count", func(b *builder) { b.sample([]string{"a"}, []int64{1}, "a", "1", "b", "2") }, Limits{MaxSampleLabels: 1}, ErrBadLabels, "2 labels"},
		{"overflow", func(b *builder) {
			b.sample([]string{"a"}, []int64{math.MaxInt64 / 2}).sample([]string{"b"}, []int64{math.MaxInt64/2 + 2})
		}, Limits{}, ErrMalformed, "cpu values add up to more than 64 bits"},
		{"negative duration", func(b *builder) { b.sample([]string{"a"}, []int64{1}); b.p.DurationNanos = -1 }, Limits{}, ErrMalformed, "negative"},
	}
	for _, tt := range tests {
		b := newBuilder("cpu/nanoseconds")
		tt.build(b)
		filtered := false
		_, _, err := Convert(b.p, Options{Limits: tt.limits, Filter: func(_ string, s labels.Labels) labels.Labels { filtered = true; return s }})
		if !errors.Is(err, tt.kind) || !strings.Contains(fmtErr(err), tt.msg) {
			t.Errorf("%s: err = %v, want %v containing %q", tt.name, err, tt.kind, tt.msg)
		}
		if filtered {
			t.Errorf("%s: the filter was consulted for a rejected profile", tt.name)
		}
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
