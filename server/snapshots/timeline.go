package snapshots

import (
	"cmp"
	"slices"

	"github.com/flightrec/flightrec/wire/snapshot"
)

// MaxSteps bounds a timeline's steps: a minute at 10 ms.
const MaxSteps = 6000

// Timeline is a snapshot's activity per step, per process and thread, for
// a UI's timeline (docs/api.md). Step i covers [StartNS + i*StepNS,
// StartNS + (i+1)*StepNS).
type Timeline struct {
	ID        string            `json:"id"`
	Node      string            `json:"node"`
	Trigger   snapshot.Trigger  `json:"trigger"`
	StartNS   int64             `json:"start_ns"`
	EndNS     int64             `json:"end_ns"`
	StepNS    int64             `json:"step_ns"`
	Steps     int               `json:"steps"`
	PeriodNS  int64             `json:"period_ns"` // CPU time one sample stands for
	Processes []ProcessActivity `json:"processes"`
	Events    []Event           `json:"events"`
	Stats     snapshot.Stats    `json:"stats"`
}

// Activity is on-CPU and off-CPU time per step, dense arrays of Steps
// values, and their totals. OffCPUNS holds only the states with time.
type Activity struct {
	Samples  []int64            `json:"samples"` // on-CPU samples
	CPUNS    []int64            `json:"cpu_ns"`  // samples × period
	OffCPUNS map[string][]int64 `json:"off_cpu_ns"`
	Total    Totals             `json:"total"`
}

// Totals sum an Activity over the window.
type Totals struct {
	Samples  int64            `json:"samples"`
	CPUNS    int64            `json:"cpu_ns"`
	OffCPUNS map[string]int64 `json:"off_cpu_ns"`
}

// ProcessActivity is a process's activity (the sum of its threads'), most
// on-CPU first.
type ProcessActivity struct {
	PID    uint32            `json:"pid"`
	Labels map[string]string `json:"labels"`
	Activity
	Threads []ThreadActivity `json:"threads"`
}

// ThreadActivity is one thread's activity.
type ThreadActivity struct {
	TID uint32 `json:"tid"`
	Activity
}

// Event is a process event with its stack's frame names, leaf first.
type Event struct {
	snapshot.Event
	Frames []string `json:"frames,omitempty"`
}

// NewTimeline builds snap's timeline with steps of step ns, of process pid
// only if pid is not 0.
func NewTimeline(snap *snapshot.Snapshot, step int64, pid uint32) *Timeline {
	steps := int((snap.EndNS - snap.StartNS + step - 1) / step)
	tl := &Timeline{ID: snap.ID, Node: snap.Node, Trigger: snap.Trigger, StartNS: snap.StartNS, EndNS: snap.EndNS,
		StepNS: step, Steps: steps, PeriodNS: snap.Samples.PeriodNS, Events: []Event{}, Stats: snap.Stats}
	b := &timelineBuilder{tl: tl, procs: map[uint32]*procBuilder{}}
	for _, p := range snap.Processes {
		if pid == 0 || p.PID == pid {
			b.proc(p.PID).labels = p.Labels
		}
	}
	sm := &snap.Samples
	for i, t := range sm.TimeNS {
		if pid == 0 || sm.PID[i] == pid {
			b.sample(sm.PID[i], sm.TID[i], t)
		}
	}
	o := &snap.OffCPU
	for i, start := range o.StartNS {
		if pid == 0 || o.PID[i] == pid {
			b.offCPU(o.PID[i], o.TID[i], o.State[i], start, start+o.DurationNS[i])
		}
	}
	for _, e := range snap.Events {
		if pid == 0 || e.PID == pid {
			tl.Events = append(tl.Events, Event{Event: e, Frames: stackNames(snap, e.Stack)})
		}
	}
	tl.Processes = b.finish()
	return tl
}

type timelineBuilder struct {
	tl    *Timeline
	procs map[uint32]*procBuilder
}

type procBuilder struct {
	labels  map[string]string
	threads map[uint32]*Activity
}

func (b *timelineBuilder) proc(pid uint32) *procBuilder {
	p, ok := b.procs[pid]
	if !ok {
		p = &procBuilder{threads: map[uint32]*Activity{}}
		b.procs[pid] = p
	}
	return p
}

func (b *timelineBuilder) thread(pid, tid uint32) *Activity {
	p := b.proc(pid)
	a, ok := p.threads[tid]
	if !ok {
		a = newActivity(b.tl.Steps)
		p.threads[tid] = a
	}
	return a
}

func newActivity(steps int) *Activity {
	return &Activity{Samples: make([]int64, steps), CPUNS: make([]int64, steps), OffCPUNS: map[string][]int64{},
		Total: Totals{OffCPUNS: map[string]int64{}}}
}

func (b *timelineBuilder) sample(pid, tid uint32, t int64) {
	if t < b.tl.StartNS || t >= b.tl.EndNS {
		return
	}
	a := b.thread(pid, tid)
	i := (t - b.tl.StartNS) / b.tl.StepNS
	a.Samples[i]++
	a.CPUNS[i] += b.tl.PeriodNS
	a.Total.Samples++
	a.Total.CPUNS += b.tl.PeriodNS
}

// offCPU spreads [start, end), cut to the window, over the steps it spans.
func (b *timelineBuilder) offCPU(pid, tid uint32, state string, start, end int64) {
	start, end = max(start, b.tl.StartNS), min(end, b.tl.EndNS)
	if start >= end {
		return
	}
	if state == "" {
		state = "other"
	}
	a := b.thread(pid, tid)
	per := a.OffCPUNS[state]
	if per == nil {
		per = make([]int64, b.tl.Steps)
		a.OffCPUNS[state] = per
	}
	for i := (start - b.tl.StartNS) / b.tl.StepNS; i < int64(b.tl.Steps); i++ {
		s := b.tl.StartNS + i*b.tl.StepNS
		if s >= end {
			break
		}
		per[i] += overlap(start, end, s, s+b.tl.StepNS)
	}
	a.Total.OffCPUNS[state] += end - start
}

// finish sums threads into processes and orders both, most CPU first.
func (b *timelineBuilder) finish() []ProcessActivity {
	out := make([]ProcessActivity, 0, len(b.procs))
	for pid, p := range b.procs {
		pa := ProcessActivity{PID: pid, Labels: p.labels, Activity: *newActivity(b.tl.Steps), Threads: []ThreadActivity{}}
		if pa.Labels == nil {
			pa.Labels = map[string]string{}
		}
		for tid, a := range p.threads {
			pa.Activity.add(a)
			pa.Threads = append(pa.Threads, ThreadActivity{TID: tid, Activity: *a})
		}
		slices.SortFunc(pa.Threads, func(x, y ThreadActivity) int {
			return cmp.Or(cmp.Compare(y.Total.CPUNS, x.Total.CPUNS), cmp.Compare(x.TID, y.TID))
		})
		out = append(out, pa)
	}
	slices.SortFunc(out, func(x, y ProcessActivity) int {
		return cmp.Or(cmp.Compare(y.Total.CPUNS, x.Total.CPUNS), cmp.Compare(x.PID, y.PID))
	})
	return out
}

func (a *Activity) add(o *Activity) {
	for i := range o.Samples {
		a.Samples[i] += o.Samples[i]
		a.CPUNS[i] += o.CPUNS[i]
	}
	for state, per := range o.OffCPUNS {
		sum := a.OffCPUNS[state]
		if sum == nil {
			sum = make([]int64, len(per))
			a.OffCPUNS[state] = sum
		}
		for i, v := range per {
			sum[i] += v
		}
		a.Total.OffCPUNS[state] += o.Total.OffCPUNS[state]
	}
	a.Total.Samples += o.Total.Samples
	a.Total.CPUNS += o.Total.CPUNS
}
