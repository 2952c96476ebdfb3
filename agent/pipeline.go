package agent

import (
	"time"

	"github.com/flightrec/flightrec/agent/events"
	"github.com/flightrec/flightrec/agent/recorder"
	"github.com/flightrec/flightrec/agent/unwind"
)

// handle processes one drained batch. The batch holds each kind of record
// in ring order but not interleaved, so the order here is chosen: execs
// first (re-read the new image before its samples are attributed), then
// blocking stacks (an interval may name a stack of the same batch), samples
// and intervals, and exits last (a sample of the batch may be what first
// names the process).
func (a *Agent) handle(b *events.Batch) {
	start := time.Now()
	a.handleExecs(b.Events)
	for i := range b.Stacks {
		a.handleStack(&b.Stacks[i])
	}
	for i := range b.Samples {
		a.handleSample(&b.Samples[i])
	}
	for i := range b.OffCPU {
		a.handleOffCPU(&b.OffCPU[i])
	}
	for i := range b.Events {
		a.handleEvent(&b.Events[i])
	}
	a.drained.Store(start.UnixNano())
	a.m.samples.Add(float64(len(b.Samples)))
	a.m.offCPU.Add(float64(len(b.OffCPU)))
	a.m.drain.Observe(time.Since(start).Seconds())
}

// handleExecs re-reads each process that exec'd, once per batch however
// often it did, and makes sure a crashing or OOM-killed process is read
// while it may still be there, for the labels its event is reported with.
func (a *Agent) handleExecs(evs []events.ProcEvent) {
	clear(a.execs)
	for i := range evs {
		switch e := &evs[i]; e.Kind {
		case events.KindExec:
			a.execs[e.PID] = i
		case events.KindSignal, events.KindOOMKill:
			if _, ok := a.procs.byPID[e.PID]; !ok {
				a.procs.observe(e.PID, e.Comm, e.Time, nil)
			}
		}
	}
	for _, i := range a.execs {
		a.procs.exec(&evs[i])
	}
}

// fixLeaf completes a user stack whose innermost function had not set up
// its frame (see unwind.FixLeaf).
func fixLeaf(p *process, user []uint64, spWords [2]uint64) []uint64 {
	if p.space != nil && len(user) > 0 {
		if slot, ok := p.space.ReturnSlot(user[0]); ok {
			return unwind.FixLeaf(user, spWords, slot)
		}
	}
	return user
}

func (a *Agent) handleSample(s *events.Sample) {
	p := a.procs.observe(s.PID, s.CommString(), s.Time, s.User)
	user := fixLeaf(p, s.User, s.SPWords)
	a.agg.Add(s.PID, user, s.Kernel)
	if a.cpu != nil {
		a.cpu.samples[s.PID]++
	}
	if r := a.cfg.Recorder; r != nil {
		r.AddSample(a.wall(s.Time), s.PID, s.TID, s.CPU, user, s.Kernel)
	}
}

// handleStack keeps a blocking (or crashing) stack for the intervals and
// events that will name it.
func (a *Agent) handleStack(s *events.Stack) {
	p := a.procs.observe(s.PID, "", s.Time, s.User)
	user := fixLeaf(p, s.User, s.SPWords)
	kernel := a.tracing.trim(s.Kernel)
	a.procs.stacks.put(s.PID, s.Hash, user, kernel, s.Time)
	if r := a.cfg.Recorder; r != nil {
		r.AddStack(a.wall(s.Time), s.PID, s.Hash, user, kernel)
	}
}

// handleOffCPU attributes an interval's whole duration to the reporting
// interval in which it ended, under its blocking stack, or under the
// unknown stack when that was lost or evicted.
func (a *Agent) handleOffCPU(o *events.OffCPU) {
	a.procs.observe(o.PID, "", o.End, nil)
	state, d := o.State.String(), int64(o.End-o.Start)
	if user, kernel, ok := a.procs.stacks.get(o.PID, o.StackHash, o.End); ok {
		a.agg.AddOffCPU(o.PID, state, user, kernel, d)
	} else {
		a.m.unknownStacks.Inc()
		a.agg.AddUnknownOffCPU(o.PID, state, d)
	}
	if r := a.cfg.Recorder; r != nil {
		r.AddOffCPU(a.wall(o.Start), a.wall(o.End), o.PID, o.TID, o.StackHash, state)
	}
}

// handleEvent updates the table for an exit and passes the event on.
func (a *Agent) handleEvent(e *events.ProcEvent) {
	a.m.events.WithLabelValues(eventKind(e.Kind)).Inc()
	if e.Kind == events.KindExit {
		a.procs.exit(e)
	} else {
		a.procs.touch(e.PID, e.Time)
	}
	if r := a.cfg.Recorder; r != nil {
		r.AddEvent(a.recorderEvent(e))
	}
	if a.hook != nil {
		a.hook.offer(*e, a.procs.eventLabels(e))
	}
}

func (a *Agent) recorderEvent(e *events.ProcEvent) recorder.Event {
	return recorder.Event{
		TimeNS: a.wall(e.Time), Kind: eventKind(e.Kind), PID: e.PID, TID: e.TID, Comm: e.Comm,
		ExitStatus: e.ExitCode, Signal: e.Signal, SiCode: e.SiCode, Addr: e.Addr,
		StackHash: e.StackHash, Filename: e.Filename,
	}
}

// eventKind names a process event as snapshots do (docs/snapshot.md).
func eventKind(k events.Kind) string {
	switch k {
	case events.KindExec:
		return "exec"
	case events.KindExit:
		return "exit"
	case events.KindSignal:
		return "signal"
	case events.KindOOMKill:
		return "oom_kill"
	}
	return "unknown"
}

// wall converts a BPF timestamp to Unix nanoseconds.
func (a *Agent) wall(boot uint64) int64 { return a.clock.Wall(boot).UnixNano() }
