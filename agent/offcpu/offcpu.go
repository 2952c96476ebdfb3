// Package offcpu attaches the off-CPU tracer (bpf/offcpu.bpf.c) to sched_switch:
// it writes blocking stacks and off-CPU intervals into the sampler's ring.
package offcpu

import (
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"

	"github.com/flightrec/flightrec/agent/sampler"
	"github.com/flightrec/flightrec/bpf"
)

// DefaultMinOffCPU is the shortest interval sent: shorter ones are counted
// only. A millisecond keeps context-switch-heavy nodes cheap while every
// wait a user would notice is attributed.
const DefaultMinOffCPU = time.Millisecond

// Config selects what is traced.
type Config struct {
	PID       uint32        // only this process; 0 traces every process
	MinOffCPU time.Duration // 0 means DefaultMinOffCPU
	Types     *btf.Cache    // the kernel's BTF, parsed once per agent (see sampler.Config.Types); nil: for this load
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	if c.MinOffCPU < 0 {
		return fmt.Errorf("minimum off-CPU interval %v is negative", c.MinOffCPU)
	}
	return nil
}

// Tracer is the loaded and attached program.
type Tracer struct {
	objs bpf.OffcpuObjects
	link link.Link
}

// Open loads the tracer into the sampler's ring and counters and attaches
// it. The caller must Close it (before the sampler).
func Open(cfg Config, shared sampler.Shared) (*Tracer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	spec, err := bpf.LoadOffcpu()
	if err != nil {
		return nil, fmt.Errorf("load off-CPU spec: %w", err)
	}
	minimum := cfg.MinOffCPU
	if minimum == 0 {
		minimum = DefaultMinOffCPU
	}
	for name, v := range map[string]any{
		bpf.OffcpuVarFilterTgid:  cfg.PID,
		bpf.OffcpuVarMinOffcpuNs: uint64(minimum.Nanoseconds()),
		bpf.OffcpuVarWakeupBytes: shared.WakeupBytes,
	} {
		if err := spec.Variables[name].Set(v); err != nil {
			return nil, fmt.Errorf("set %s: %w", name, err)
		}
	}
	t := &Tracer{}
	opts := &ebpf.CollectionOptions{Cache: cfg.Types, MapReplacements: map[string]*ebpf.Map{
		bpf.OffcpuMapEvents:   shared.Events,
		bpf.OffcpuMapCounters: shared.Counters,
	}}
	sampler.Resize(spec, opts.MapReplacements)
	if err := spec.LoadAndAssign(&t.objs, opts); err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			return nil, fmt.Errorf("load off-CPU program: %+v", verr)
		}
		return nil, fmt.Errorf("load off-CPU program: %w", err)
	}
	t.link, err = link.AttachTracing(link.TracingOptions{Program: t.objs.OnSwitch})
	if err != nil {
		t.objs.Close()
		return nil, fmt.Errorf("attach off-CPU program to sched_switch: %w", err)
	}
	return t, nil
}

// Close detaches and unloads the program.
func (t *Tracer) Close() error {
	var errs []error
	if t.link != nil {
		errs = append(errs, t.link.Close())
		t.link = nil
	}
	errs = append(errs, t.objs.Close())
	return errors.Join(errs...)
}

// Code is where the program's code lives: the leading frames of the
// blocking stacks it takes are its own.
func (t *Tracer) Code() ([]sampler.CodeRange, error) { return sampler.ProgramCode(t.objs.OnSwitch) }
