// Package procevents attaches the process event programs (bpf/events.bpf.c):
// exec, exit, fatal signals with the crashing stack, and OOM kills.
package procevents

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"

	"github.com/flightrec/flightrec/agent/sampler"
	"github.com/flightrec/flightrec/bpf"
)

// Config holds no filter: process events are node-wide even when the sampler
// records one pid, because a crash elsewhere can be what matters.
type Config struct {
	Types *btf.Cache // the kernel's BTF, parsed once per agent (see sampler.Config.Types); nil: for this load
}

// Tracer is the loaded and attached programs.
type Tracer struct {
	objs  bpf.EventsObjects
	links []link.Link
}

// Open loads the programs into the sampler's ring, counters and known_pids
// map, and attaches them. The caller must Close it (before the sampler).
func Open(cfg Config, shared sampler.Shared) (*Tracer, error) {
	spec, err := bpf.LoadEvents()
	if err != nil {
		return nil, fmt.Errorf("load process event spec: %w", err)
	}
	if err := spec.Variables[bpf.EventsVarWakeupBytes].Set(shared.WakeupBytes); err != nil {
		return nil, fmt.Errorf("set %s: %w", bpf.EventsVarWakeupBytes, err)
	}
	t := &Tracer{}
	opts := &ebpf.CollectionOptions{Cache: cfg.Types, MapReplacements: map[string]*ebpf.Map{
		bpf.EventsMapEvents:    shared.Events,
		bpf.EventsMapCounters:  shared.Counters,
		bpf.EventsMapKnownPids: shared.KnownPIDs,
	}}
	sampler.Resize(spec, opts.MapReplacements)
	if err := spec.LoadAndAssign(&t.objs, opts); err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			return nil, fmt.Errorf("load process event programs: %+v", verr)
		}
		return nil, fmt.Errorf("load process event programs: %w", err)
	}
	if err := t.attach(); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

func (t *Tracer) attach() error {
	for name, prog := range map[string]*ebpf.Program{
		"sched_process_exec": t.objs.OnExec,
		"sched_process_exit": t.objs.OnExit,
		"signal_generate":    t.objs.OnSignal,
		"mark_victim":        t.objs.OnOomKill,
	} {
		l, err := link.AttachTracing(link.TracingOptions{Program: prog})
		if err != nil {
			return fmt.Errorf("attach process event program to %s: %w", name, err)
		}
		t.links = append(t.links, l)
	}
	return nil
}

// Close detaches and unloads the programs.
func (t *Tracer) Close() error {
	var errs []error
	for _, l := range t.links {
		errs = append(errs, l.Close())
	}
	t.links = nil
	errs = append(errs, t.objs.Close())
	return errors.Join(errs...)
}

// Code is where the programs' code lives: the leading frames of the crash
// stacks they take are their own.
func (t *Tracer) Code() ([]sampler.CodeRange, error) {
	return sampler.ProgramCode(t.objs.OnExec, t.objs.OnExit, t.objs.OnSignal, t.objs.OnOomKill)
}
