package aggregate

import (
	"bytes"
	"fmt"
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

func (f *fakeResolver) Kernel(addr uint64, call bool) symbolize.Location {
	f.calls[fmt.Sprintf("k:%#x", addr)] = call
	return symbolize.Location{Mapping: &symbolize.Mapping{File: "[kernel.kallsyms]", Symbolized: true}, Frames: []symbolize.Frame{{Function: "k_" + fmt.Sprint(addr)}}}
}

func TestBuild(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := New(t0)
	for i := 0; i < 3; i++ {
		a.Add(7, []uint64{0x30, 0x20, 0x10}, []uint64{0xffff0001, 0xffff0002})
	}
	a.Add(8, []uint64{0x30, 0x20, 0x10}, nil)
	a.Add(8, []uint64{0x1234}, nil)
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
	if p.Period != 10_101_010 || p.SampleType[1].Type != "cpu" || p.SampleType[1].Unit != "nanoseconds" || p.PeriodType.Type != "cpu" {
		t.Errorf("types %v period %v %d", p.SampleType, p.PeriodType, p.Period)
	}
	if p.TimeNanos != t0.UnixNano() || p.DurationNanos != 10e9 {
		t.Errorf("time %d duration %d", p.TimeNanos, p.DurationNanos)
	}
	if len(p.Sample) != 3 {
		t.Fatalf("%d samples, want 3", len(p.Sample))
	}
	s := p.Sample[0] // pid 7 sorts first
	if s.Value[0] != 3 || s.Value[1] != 3*10_101_010 {
		t.Errorf("values %v", s.Value)
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
	// Identical mapping and address in pid 8: the location is shared.
	if p.Sample[1].Location[0] != s.Location[2] {
		t.Errorf("pids 7 and 8 share mapping and address but not the location")
	}
	// The innermost kernel frame is the only non-call; user frames under a
	// kernel stack are calls (they made the syscall).
	want := map[string]bool{"k:0xffff0001": false, "k:0xffff0002": true, "u7:0x30": true, "u8:0x30": false, "u8:0x1234": false}
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
