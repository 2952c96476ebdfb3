package agent

import (
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flightrec/flightrec/agent/aggregate"
	"github.com/flightrec/flightrec/agent/events"
	"github.com/flightrec/flightrec/agent/recorder"
	"github.com/flightrec/flightrec/wire/snapshot"
)

// newTestAgent is an agent without BPF: batches are fed to handle directly.
func newTestAgent(t *testing.T, cfg Config) (*Agent, fakeProc) {
	t.Helper()
	tab, fp, _ := newTestTable(t, 70*time.Second)
	if cfg.Frequency == 0 {
		cfg.Frequency = 100
	}
	a := &Agent{
		cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil)), m: newMetrics(nil, nil),
		clock: events.NewClock(), sym: tab.sym, procs: tab, agg: aggregate.New(time.Now()), execs: map[uint32]int{},
		tracing: newTracingFrames(nil, tab.sym.Kernel),
	}
	if cfg.OnEvent != nil {
		a.hook = newEventHook(cfg.OnEvent, a.m.hookDropped)
	}
	return a, fp
}

const ms = uint64(time.Millisecond)

// offCPUBatches are two drains of pid 10: a blocking stack, intervals
// naming it (one in the next batch), one naming a stack never sent, and a
// CPU sample with the same frames as the blocking stack.
func offCPUBatches() []*events.Batch {
	user, kernel := []uint64{0x10010, 0x10020}, []uint64{0xffffffff81000010}
	b1 := &events.Batch{
		Stacks:  []events.Stack{{Time: 1000 * ms, PID: 10, TID: 11, Hash: 1, User: user, Kernel: kernel}},
		Samples: []events.Sample{{Time: 1001 * ms, PID: 10, TID: 11, User: user, Kernel: kernel}},
		OffCPU: []events.OffCPU{
			{Start: 1000 * ms, End: 1005 * ms, PID: 10, TID: 11, StackHash: 1, State: events.Sleeping},
			{Start: 1010 * ms, End: 1017 * ms, PID: 10, TID: 11, StackHash: 1, State: events.Sleeping},
			{Start: 1020 * ms, End: 1022 * ms, PID: 10, TID: 11, StackHash: 1, State: events.Blocked},
			{Start: 1030 * ms, End: 1034 * ms, PID: 10, TID: 12, StackHash: 99, State: events.Sleeping},
		},
	}
	b2 := &events.Batch{OffCPU: []events.OffCPU{{Start: 2000 * ms, End: 2001 * ms, PID: 10, TID: 11, StackHash: 1, State: events.Sleeping}}}
	return []*events.Batch{b1, b2}
}

// TestOffCPUProfile: fake records through the pipeline give off_cpu
// values per (stack, state), the state label, CPU samples without
// off-CPU time, and the unknown stack counted and shown.
func TestOffCPUProfile(t *testing.T) {
	a, fp := newTestAgent(t, Config{})
	fp.put(10, "w", 5, 0x10000)
	for _, b := range offCPUBatches() {
		a.handle(b)
	}
	var got *profile.Profile
	a.report(time.Now(), func(p *profile.Profile) { got = p })
	if got == nil {
		t.Fatal("no profile")
	}
	values := map[string][]int64{}
	for _, s := range got.Sample {
		if s.Label["pid"][0] != "10" || s.Label["comm"][0] != "w" {
			t.Errorf("sample without its process labels: %v", s.Label)
		}
		key := strings.Join(s.Label[aggregate.LabelState], "")
		if len(s.Location) == 1 && s.Location[0].Line[0].Function.Name == aggregate.UnknownStackFunction {
			key += " unknown"
		}
		values[key] = s.Value
	}
	want := map[string][]int64{
		"":              {0, 1, int64(10 * time.Millisecond)},
		"sleep":         {int64(13 * ms), 0, 0},
		"blocked":       {int64(2 * ms), 0, 0},
		"sleep unknown": {int64(4 * ms), 0, 0},
	}
	for k, w := range want {
		if v := values[k]; len(v) != 3 || v[0] != w[0] || v[1] != w[1] || v[2] != w[2] {
			t.Errorf("sample %q: values %v, want %v (all: %v)", k, v, w, values)
		}
	}
	if len(values) != len(want) {
		t.Errorf("samples %v, want %d", values, len(want))
	}
	if n := testutil.ToFloat64(a.m.unknownStacks); n != 1 {
		t.Errorf("unknown stacks counted %v, want 1", n)
	}
}

// TestRecorderSeam: the recorder gets every record with wall-clock times,
// and a requested snapshot is built at the first drain after its window.
func TestRecorderSeam(t *testing.T) {
	rec := recorder.New(recorder.Config{PeriodNS: 10_000_000}, nil)
	var mu sync.Mutex
	var hooked []string
	a, fp := newTestAgent(t, Config{Recorder: rec, OnEvent: func(e events.ProcEvent, l map[string]string) {
		mu.Lock()
		defer mu.Unlock()
		hooked = append(hooked, eventKind(e.Kind)+"/"+l[LabelComm])
	}})
	fp.put(10, "w", 5, 0x10000)
	go a.hook.run()

	now := events.Now()
	bs := offCPUBatches()
	shift := now - 2100*ms // the records happened in the last ~1.1 s
	for _, b := range bs {
		for i := range b.Stacks {
			b.Stacks[i].Time += shift
		}
		for i := range b.Samples {
			b.Samples[i].Time += shift
		}
		for i := range b.OffCPU {
			b.OffCPU[i].Start += shift
			b.OffCPU[i].End += shift
		}
	}
	bs[1].Events = []events.ProcEvent{{Kind: events.KindExit, Time: now - 50*ms, PID: 10, TID: 10, Comm: "w", ExitCode: 3 << 8}}
	for _, b := range bs {
		a.handle(b)
	}
	at := time.Now()
	ch := a.RequestSnapshot(&snapshot.Snapshot{ID: "t-1", Node: "n1", Trigger: snapshot.Trigger{Kind: "manual"}}, at, 5*time.Second, 200*time.Millisecond)
	a.snaps.buildDue(at, a.snapshot) // the window has not passed yet
	select {
	case r := <-ch:
		t.Fatalf("snapshot delivered before its window ended: %+v", r)
	default:
	}
	a.snaps.buildDue(at.Add(300*time.Millisecond), a.snapshot)
	r := <-ch
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	s := r.Snapshot
	if err := s.Validate(); err != nil {
		t.Fatalf("invalid snapshot: %v", err)
	}
	if len(s.Samples.TimeNS) != 1 || len(s.OffCPU.StartNS) != 5 || len(s.Events) != 1 || s.Events[0].Kind != "exit" {
		t.Errorf("snapshot has %d samples, %d off-CPU intervals, events %+v; want 1, 5, one exit", len(s.Samples.TimeNS), len(s.OffCPU.StartNS), s.Events)
	}
	if d := time.Duration(s.Samples.TimeNS[0] - a.wall(bs[0].Samples[0].Time)); d != 0 {
		t.Errorf("sample time off by %v", d)
	}
	if len(s.Processes) != 1 || s.Processes[0].Labels[LabelComm] != "w" {
		t.Errorf("processes %+v, want pid 10 with its labels", s.Processes)
	}
	a.hook.close()
	if len(hooked) != 1 || hooked[0] != "exit/w" {
		t.Errorf("OnEvent got %v, want the exit with the process's labels", hooked)
	}
	// After stop, requests are refused; without a recorder, at once.
	a.snaps.stop(time.Now(), a.snapshot)
	if r := <-a.RequestSnapshot(&snapshot.Snapshot{}, time.Now(), time.Second, 0); r.Err != ErrStopped {
		t.Errorf("request after stop: %v, want ErrStopped", r.Err)
	}
	a.cfg.Recorder = nil
	if r := <-a.RequestSnapshot(&snapshot.Snapshot{}, time.Now(), time.Second, 0); r.Err != ErrNoRecorder {
		t.Errorf("request without a recorder: %v, want ErrNoRecorder", r.Err)
	}
}

// TestEventHookDrops: a consumer that does not keep up loses events, counted,
// and never blocks the caller.
func TestEventHookDrops(t *testing.T) {
	release := make(chan struct{})
	a, _ := newTestAgent(t, Config{OnEvent: func(events.ProcEvent, map[string]string) { <-release }})
	go a.hook.run()
	start := time.Now()
	for i := 0; i < hookQueue+100; i++ {
		a.hook.offer(events.ProcEvent{Kind: events.KindExec}, nil)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("offering to a stuck consumer took %v", d)
	}
	if n := testutil.ToFloat64(a.m.hookDropped); n < 99 || n > 100 {
		t.Errorf("%v events dropped, want 99-100 (queue %d, one being handled)", n, hookQueue)
	}
	close(release)
	a.hook.close()
}
