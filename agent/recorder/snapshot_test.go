package recorder

import (
	"bytes"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/flightrec/flightrec/wire/snapshot"
)

const sec = int64(time.Second)

func ms(n int64) int64 { return n * int64(time.Millisecond) }

// handBuilt is a ring with one of everything around the window [1 s, 2 s).
func handBuilt() (*Recorder, *fakeResolver) {
	r := New(Config{PeriodNS: 10_101_010}, nil)
	res := newFakeResolver()
	res.labels[10] = map[string]string{"service": "api", "pid": "10"}
	res.labels[20] = map[string]string{"service": "db", "pid": "20"}
	res.labels[21] = map[string]string{"service": "db", "pid": "21"}
	// pid 22 has no labels: the resolver knows nothing of it.

	r.AddStack(ms(200), 10, 0xaa, []uint64{0x400, 0x300}, []uint64{0xf3})
	r.AddSample(ms(500), 10, 11, 0, []uint64{0x999}, nil) // before the window
	r.AddSample(ms(1000), 10, 11, 0, []uint64{0x100, 0x200, 0x300}, nil)
	r.AddSample(ms(1100), 10, 12, 1, []uint64{0x100, 0x200, 0x300}, nil)
	r.AddSample(ms(1200), 10, 12, 1, []uint64{0x200, 0x300}, []uint64{0xf1, 0xf2})
	r.AddSample(ms(1300), 20, 20, 0, []uint64{0x5000, 0x9010, 0x8000}, nil)
	r.AddSample(ms(1350), 20, 20, 0, []uint64{0x100, 0x200, 0x300}, nil) // other process, same addresses
	r.AddOffCPU(ms(900), ms(1500), 10, 11, 0xaa, "sleep")
	r.AddOffCPU(ms(1600), ms(1700), 10, 12, 0xbb, "blocked") // stack never recorded
	r.AddOffCPU(ms(1800), ms(1900), 10, 12, 0, "weird")      // no stack at all
	r.AddEvent(Event{TimeNS: ms(1400), Kind: "exit", PID: 20, TID: 20, Comm: "db", ExitStatus: 3 << 8})
	r.AddEvent(Event{TimeNS: ms(1410), Kind: "exit", PID: 21, TID: 21, Comm: "db", ExitStatus: 0x80 | 11})
	r.AddEvent(Event{TimeNS: ms(1420), Kind: "exit", PID: 21, TID: 23, ExitStatus: 9})
	r.AddEvent(Event{TimeNS: ms(1430), Kind: "signal", PID: 10, TID: 12, Comm: "api", Signal: 11, SiCode: 1, Addr: 0xdead, StackHash: 0xaa})
	r.AddEvent(Event{TimeNS: ms(1440), Kind: "exec", PID: 22, TID: 22, Comm: "true", Filename: "/bin/true"})
	r.AddSample(ms(2000), 10, 11, 0, []uint64{0x999}, nil) // the window's end is open
	return r, res
}

func TestSnapshotContent(t *testing.T) {
	r, res := handBuilt()
	s := meta()
	if err := r.Snapshot(sec, 2*sec, res, s); err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatalf("snapshot does not validate: %v", err)
	}

	a := []string{"u100:256", "u200:511", "u300:767"} // leaf, then return addresses
	blocked := []string{"kf3:243", "u400:1023", "u300:767"}
	wantSamples := []struct {
		time  int64
		pid   uint32
		tid   uint32
		cpu   uint16
		stack []string
	}{
		{ms(1000), 10, 11, 0, a},
		{ms(1100), 10, 12, 1, a},
		// Kernel frames first; every user frame under them is a return address.
		{ms(1200), 10, 12, 1, []string{"kf1:241", "kf2:241", "u200:511", "u300:767"}},
		{ms(1300), 20, 20, 0, []string{"inl:1+inl", "outer:2", "/lib/x.so@0x1010", "@0x8000"}},
		{ms(1350), 20, 20, 0, a},
	}
	if n := len(s.Samples.TimeNS); n != len(wantSamples) {
		t.Fatalf("%d samples, want %d", n, len(wantSamples))
	}
	for i, w := range wantSamples {
		got := render(s, s.Samples.Stack[i])
		if s.Samples.TimeNS[i] != w.time || s.Samples.PID[i] != w.pid || s.Samples.TID[i] != w.tid || s.Samples.CPU[i] != w.cpu || !slices.Equal(got, w.stack) {
			t.Errorf("sample %d: t=%d pid %d tid %d cpu %d %q, want %+v", i, s.Samples.TimeNS[i], s.Samples.PID[i], s.Samples.TID[i], s.Samples.CPU[i], got, w)
		}
	}

	t.Run("dedup", func(t *testing.T) {
		if s.Samples.Stack[0] != s.Samples.Stack[1] {
			t.Error("one stack twice in a process got two indexes")
		}
		// Same frames in another process: same frames, same stack.
		if s.Samples.Stack[0] != s.Samples.Stack[4] {
			t.Error("identical frames of two processes got two stacks")
		}
		seen := map[snapshot.Frame]bool{}
		for _, f := range s.Frames {
			if seen[f] {
				t.Errorf("frame %+v listed twice", f)
			}
			seen[f] = true
		}
		if len(s.Stacks) != 4 { // a, a with kernel, pid 20's odd one, the blocking stack
			t.Errorf("%d stacks, want 4: %v", len(s.Stacks), s.Stacks)
		}
		for k, n := range res.calls {
			if n != 1 {
				t.Errorf("%s resolved %d times", k, n)
			}
		}
	})

	t.Run("off-CPU", func(t *testing.T) {
		o := s.OffCPU
		want := snapshot.OffCPU{
			StartNS: []int64{ms(900), ms(1600), ms(1800)}, DurationNS: []int64{ms(600), ms(100), ms(100)},
			PID: []uint32{10, 10, 10}, TID: []uint32{11, 12, 12},
			Stack: []int32{o.Stack[0], -1, -1}, State: []string{"sleep", "blocked", "other"},
		}
		if !reflect.DeepEqual(o, want) || !slices.Equal(render(s, o.Stack[0]), blocked) {
			t.Errorf("off-CPU %+v (first stack %q), want %+v with %q", o, render(s, o.Stack[0]), want, blocked)
		}
		if s.Stats.UnknownStacks != 2 {
			t.Errorf("unknown stacks %d, want 2", s.Stats.UnknownStacks)
		}
	})

	t.Run("events", func(t *testing.T) {
		three := 3
		want := []snapshot.Event{
			{TimeNS: ms(1400), Kind: "exit", PID: 20, TID: 20, Comm: "db", ExitCode: &three, Stack: -1},
			{TimeNS: ms(1410), Kind: "exit", PID: 21, TID: 21, Comm: "db", Signal: 11, CoreDumped: true, Stack: -1},
			{TimeNS: ms(1420), Kind: "exit", PID: 21, TID: 23, Signal: 9, Stack: -1},
			{TimeNS: ms(1430), Kind: "signal", PID: 10, TID: 12, Comm: "api", Signal: 11, SiCode: 1, Addr: 0xdead, Stack: s.OffCPU.Stack[0]},
			{TimeNS: ms(1440), Kind: "exec", PID: 22, TID: 22, Comm: "true", Filename: "/bin/true", Stack: -1},
		}
		if !reflect.DeepEqual(s.Events, want) {
			t.Errorf("events\n got %+v\nwant %+v", s.Events, want)
		}
	})

	t.Run("processes and stats", func(t *testing.T) {
		want := []snapshot.Process{
			{PID: 10, Labels: map[string]string{"service": "api", "pid": "10"}},
			{PID: 20, Labels: map[string]string{"service": "db", "pid": "20"}},
			{PID: 21, Labels: map[string]string{"service": "db", "pid": "21"}},
			{PID: 22, Labels: map[string]string{}},
		}
		if !reflect.DeepEqual(s.Processes, want) {
			t.Errorf("processes %+v, want %+v", s.Processes, want)
		}
		if s.Stats.RingStartNS != ms(200) || s.StartNS != sec || s.EndNS != 2*sec || s.Samples.PeriodNS != 10_101_010 {
			t.Errorf("stats %+v window [%d, %d) period %d", s.Stats, s.StartNS, s.EndNS, s.Samples.PeriodNS)
		}
		if s.ID != "n1-1-abc" || s.Trigger.Kind != "manual" || s.Version != snapshot.Version {
			t.Errorf("caller's fields changed: %q %+v v%d", s.ID, s.Trigger, s.Version)
		}
	})

	t.Run("round trip", func(t *testing.T) {
		var b bytes.Buffer
		if err := snapshot.Encode(&b, s); err != nil {
			t.Fatal(err)
		}
		got, err := snapshot.Decode(b.Bytes(), snapshot.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, s) {
			t.Error("the snapshot changed through the wire")
		}
	})
}

// TestSnapshotLongSleep: a thread that slept ten minutes names a stack
// recorded ten minutes ago, long evicted from the ring; the stack cache
// still has it unless it is too small to.
func TestSnapshotLongSleep(t *testing.T) {
	tests := []struct {
		name       string
		cacheBytes int64
		wantStack  bool
	}{
		{"default cache", 0, true},
		{"cache too small", 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(Config{PeriodNS: 1, StackCacheBytes: tt.cacheBytes}, nil)
			r.AddStack(0, 5, 0x77, []uint64{0x10, 0x20}, []uint64{0xf0})
			for i := range int64(6000) { // ten minutes of another process
				r.AddSample(i*ms(100), 6, 6, 0, []uint64{0x30}, nil)
			}
			r.AddOffCPU(ms(1), 600*sec, 5, 5, 0x77, "sleep")
			s := meta()
			if err := r.Snapshot(540*sec, 601*sec, newFakeResolver(), s); err != nil {
				t.Fatal(err)
			}
			if err := s.Validate(); err != nil {
				t.Fatal(err)
			}
			if s.Stats.RingStartNS < 500*sec || s.Stats.RingEvicted == 0 {
				t.Fatalf("the ring still holds the stack record: %+v", s.Stats)
			}
			got := render(s, s.OffCPU.Stack[0])
			want := []string{"kf0:240", "u10:15", "u20:31"}
			if !tt.wantStack {
				want = nil
			}
			if !slices.Equal(got, want) || (s.Stats.UnknownStacks == 0) != tt.wantStack {
				t.Errorf("stack %q (unknown %d), want %q", got, s.Stats.UnknownStacks, want)
			}
		})
	}
}

func TestSnapshotRejects(t *testing.T) {
	tests := []struct {
		name       string
		period     int64
		start, end int64
	}{
		{"empty window", 1, sec, sec},
		{"no period", 0, 0, sec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(Config{PeriodNS: tt.period}, nil)
			if err := r.Snapshot(tt.start, tt.end, newFakeResolver(), meta()); err == nil {
				t.Error("no error")
			}
		})
	}
}

// TestSnapshotEmpty: a window with nothing in it is still a valid snapshot.
func TestSnapshotEmpty(t *testing.T) {
	r := New(Config{PeriodNS: 1}, nil)
	s := meta()
	if err := r.Snapshot(sec, 2*sec, newFakeResolver(), s); err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
}
