package aggregate

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/flightrec/flightrec/agent/symbolize"
)

func TestAggregatorInterns(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := New(t0)
	user := []uint64{0x10, 0x20}
	a.Add(1, user, nil)
	user[0] = 0x11 // Add must have copied
	a.Add(1, []uint64{0x10, 0x20}, nil)
	a.Add(2, []uint64{0x10, 0x20}, nil)             // same addresses, other process
	a.Add(1, []uint64{0x10}, []uint64{0x20})        // same frames, split differently
	a.Add(1, []uint64{0x10, 0x20}, []uint64{0xff0}) // kernel part differs
	iv := a.Take(t0.Add(10 * time.Second))
	if iv.Samples != 5 || len(iv.Stacks) != 4 {
		t.Fatalf("interval has %d samples in %d stacks, want 5 in 4", iv.Samples, len(iv.Stacks))
	}
	if iv.Stacks[0].Count != 2 || iv.Stacks[0].User[0] != 0x10 {
		t.Errorf("first stack %+v, want count 2 with copied frames", iv.Stacks[0])
	}
	if !iv.Start.Equal(t0) || !iv.End.Equal(t0.Add(10*time.Second)) {
		t.Errorf("interval [%v, %v)", iv.Start, iv.End)
	}
	next := a.Take(t0.Add(20 * time.Second))
	if next.Samples != 0 || len(next.Stacks) != 0 || !next.Start.Equal(iv.End) {
		t.Errorf("next interval %+v, want empty starting at %v", next, iv.End)
	}
}

// fakeResolver symbolizes address A as function "fA" in a mapping per pid,
// with 0x30 carrying an inlined frame, and records which addresses were
// asked as calls.
type fakeResolver struct {
	calls map[string]bool
}

func (f *fakeResolver) Labels(pid uint32) map[string]string {
	return map[string]string{"pid": fmt.Sprint(pid), "service": "svc", "container_id": ""}
}

func (f *fakeResolver) User(pid uint32, addr uint64, call bool) symbolize.Location {
	f.calls[fmt.Sprintf("u%d:%#x", pid, addr)] = call
	m := &symbolize.Mapping{Start: 0, Limit: 0x1000, File: "/bin/x", BuildID: "abcd", Symbolized: true}
	if addr >= 0x1000 {
		return symbolize.Location{Mapping: &symbolize.Mapping{Start: 0x1000, Limit: 0x2000, File: "/lib/unknown.so", BuildID: "ef01"}}
	}
	frames := []symbolize.Frame{{Function: fmt.Sprintf("f%x", addr), File: "x.go", Line: int64(addr)}}
	if addr == 0x30 {
		frames = append([]symbolize.Frame{{Function: "inlined", File: "x.go", Line: 7}}, frames...)
	}
	return symbolize.Location{Mapping: m, Frames: frames}
}

// pageFault is the kernel address the fake resolver names asm_exc_page_fault.
const pageFault = 0xffff00ee

func (f *fakeResolver) Kernel(addr uint64, call bool) symbolize.Location {
	f.calls[fmt.Sprintf("k:%#x", addr)] = call
	name := "k_" + fmt.Sprint(addr)
	if addr == pageFault {
		name = "asm_exc_page_fault"
	}
	return symbolize.Location{Mapping: &symbolize.Mapping{File: "[kernel.kallsyms]", Symbolized: true}, Frames: []symbolize.Frame{{Function: name}}}
}

func TestBuild(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := New(t0)
	for i := 0; i < 3; i++ {
		a.Add(7, []uint64{0x30, 0x20, 0x10}, []uint64{0xffff0001, 0xffff0002})
	}
	a.Add(8, []uint64{0x30, 0x20, 0x10}, nil)
	a.Add(8, []uint64{0x1234}, nil)
	a.Add(9, []uint64{0x40, 0x20}, []uint64{0xffff0001, pageFault}) // a fault at 0x40
	r := &fakeResolver{calls: map[string]bool{}}
	p := Build(a.Take(t0.Add(10*time.Second)), r, ProfileOptions{Period: 10_101_010})

	if err := p.CheckValid(); err != nil {
		t.Fatalf("invalid profile: %v", err)
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	p, err := profile.Parse(&buf)
	if err != nil {
		t.Fatalf("round trip: %v", err)
	}
	var types []string
	for _, st := range p.SampleType {
		types = append(types, st.Type+"/"+st.Unit)
	}
	if got := strings.Join(types, " "); got != "off_cpu/nanoseconds samples/count cpu/nanoseconds" || p.DefaultSampleType != "cpu" {
		t.Errorf("sample types %s (default %q), want off_cpu first and cpu the default", got, p.DefaultSampleType)
	}
	if p.Period != 10_101_010 || p.PeriodType.Type != "cpu" {
		t.Errorf("period %v %d", p.PeriodType, p.Period)
	}
	if p.TimeNanos != t0.UnixNano() || p.DurationNanos != 10e9 {
		t.Errorf("time %d duration %d", p.TimeNanos, p.DurationNanos)
	}
	if len(p.Sample) != 4 {
		t.Fatalf("%d samples, want 4", len(p.Sample))
	}
	s := p.Sample[0] // pid 7 sorts first
	if s.Value[OffCPUValue] != 0 || s.Value[SamplesValue] != 3 || s.Value[CPUValue] != 3*10_101_010 {
		t.Errorf("values %v, want [0 3 3×period]", s.Value)
	}
	if _, ok := s.Label[LabelState]; ok {
		t.Errorf("a CPU sample has a state label: %v", s.Label)
	}
	if got := s.Label["pid"]; len(got) != 1 || got[0] != "7" {
		t.Errorf("labels %v", s.Label)
	}
	if _, ok := s.Label["container_id"]; ok {
		t.Errorf("empty label values must be omitted: %v", s.Label)
	}
	// Leaf first: two kernel frames, then user 0x30 (with its inlined frame).
	if len(s.Location) != 5 || s.Location[0].Line[0].Function.Name != "k_4294901761" || s.Location[2].Address != 0x30 {
		t.Fatalf("locations %v", s.Location)
	}
	if l := s.Location[2].Line; len(l) != 2 || l[0].Function.Name != "inlined" || l[1].Function.Name != "f30" {
		t.Errorf("inlined location lines %v", l)
	}
	// Identical mapping and return address in pid 8: the location is
	// shared. 0x30 is not: a leaf in pid 8, a caller of the kernel in 7.
	if p.Sample[1].Location[1] != s.Location[3] {
		t.Errorf("pids 7 and 8 share mapping and address but not the location")
	}
	if p.Sample[1].Location[0] == s.Location[2] {
		t.Errorf("a leaf pc and the same address as a return address share a location")
	}
	// The innermost kernel frame is the only non-call; user frames under a
	// kernel stack are calls (they made the syscall), except the pc an
	// exception interrupted.
	want := map[string]bool{"k:0xffff0001": false, "k:0xffff0002": true, "u7:0x30": true, "u8:0x30": false, "u8:0x1234": false,
		"u9:0x40": false, "u9:0x20": true}
	for k, v := range want {
		if got, ok := r.calls[k]; !ok || got != v {
			t.Errorf("resolve %s: call=%v (asked %v), want %v", k, got, ok, v)
		}
	}
	un := p.Sample[2].Location[0]
	if un.Mapping == nil || un.Mapping.BuildID != "ef01" || un.Mapping.HasFunctions || len(un.Line) != 0 || un.Address != 0x1234 {
		t.Errorf("unresolved location %+v mapping %+v: must keep address and build id", un, un.Mapping)
	}
}

// TestBuildOffCPU: off-CPU time sums per (pid, state, stack) into [d, 0, 0]
// samples with a state label, separate from CPU samples of the same frames;
// time with an unknown stack gets the synthetic frame.
func TestBuildOffCPU(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := New(t0)
	stack := []uint64{0x30, 0x20}
	kernel := []uint64{0xffff0001}
	a.Add(7, stack, kernel) // CPU sample with the same frames
	a.AddOffCPU(7, "sleep", stack, kernel, 5_000_000)
	stack[0] = 0x99 // AddOffCPU must have copied
	a.AddOffCPU(7, "sleep", []uint64{0x30, 0x20}, kernel, 7_000_000)
	a.AddOffCPU(7, "blocked", []uint64{0x30, 0x20}, kernel, 2_000_000)
	a.AddUnknownOffCPU(7, "sleep", 3_000_000)
	a.AddUnknownOffCPU(7, "sleep", 1_000_000)
	a.AddUnknownOffCPU(8, "preempted", 4_000_000)
	iv := a.Take(t0.Add(10 * time.Second))
	if iv.Samples != 1 || iv.Waits != 6 || iv.OffCPU != 22_000_000 || len(iv.Stacks) != 5 || iv.Empty() {
		t.Fatalf("interval: %d samples, %d waits, %d ns off-CPU in %d stacks; want 1, 6, 22 ms in 5", iv.Samples, iv.Waits, iv.OffCPU, len(iv.Stacks))
	}
	p := Build(iv, &fakeResolver{calls: map[string]bool{}}, ProfileOptions{Period: 1000})
	if err := p.CheckValid(); err != nil {
		t.Fatalf("invalid profile: %v", err)
	}
	got := map[string][]int64{}
	for _, s := range p.Sample {
		k := fmt.Sprintf("pid=%s state=%s %s", label(s, "pid"), label(s, LabelState), frameNames(s))
		if _, dup := got[k]; dup {
			t.Errorf("two samples for %s", k)
		}
		got[k] = s.Value
		if label(s, "service") != "svc" {
			t.Errorf("sample %s lost the process labels: %v", k, s.Label)
		}
	}
	want := map[string][]int64{
		"pid=7 state= k_4294901761,f30,f20":        {0, 1, 1000},
		"pid=7 state=sleep k_4294901761,f30,f20":   {12_000_000, 0, 0},
		"pid=7 state=blocked k_4294901761,f30,f20": {2_000_000, 0, 0},
		"pid=7 state=sleep [unknown stack]":        {4_000_000, 0, 0},
		"pid=8 state=preempted [unknown stack]":    {4_000_000, 0, 0},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("samples\n%v\nwant\n%v", got, want)
	}
	if next := a.Take(t0.Add(20 * time.Second)); !next.Empty() || next.OffCPU != 0 {
		t.Errorf("next interval %+v, want empty", next)
	}
}

func label(s *profile.Sample, k string) string {
	if v := s.Label[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// frameNames lists the outermost function of each location, leaf first.
func frameNames(s *profile.Sample) string {
	var names []string
	for _, l := range s.Location {
		names = append(names, l.Line[len(l.Line)-1].Function.Name)
	}
	return strings.Join(names, ",")
}
