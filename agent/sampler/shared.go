package sampler

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// Shared are the sampler's maps that the other BPF programs write into or
// update, so that one reader drains everything in order.
type Shared struct {
	Events    *ebpf.Map // the ring buffer
	Counters  *ebpf.Map // per-CPU counters, enum counter
	KnownPIDs *ebpf.Map // processes user space has read
	// WakeupBytes is the sampler's wakeup threshold; programs sharing the
	// ring use the same so the reader's batching stays as configured.
	WakeupBytes uint64
}

// Shared returns the maps to pass as MapReplacements when loading a
// program that shares the ring (agent/offcpu, agent/procevents).
func (s *Sampler) Shared() Shared {
	return Shared{Events: s.objs.Events, Counters: s.objs.Counters, KnownPIDs: s.objs.KnownPids, WakeupBytes: s.wakeup}
}

// Resize gives the maps of spec that replacements will replace the size of
// their replacement (the ring is sized at load), which loading requires.
func Resize(spec *ebpf.CollectionSpec, replacements map[string]*ebpf.Map) {
	for name, m := range replacements {
		if ms, ok := spec.Maps[name]; ok {
			ms.MaxEntries = m.MaxEntries()
		}
	}
}

// CodeRange is where a loaded program's JIT-compiled code lives in the
// kernel: the frames of stacks taken inside a BPF program that the reader
// drops.
type CodeRange struct{ Start, End uint64 }

// ProgramCode returns the code ranges of progs. Kernels that do not say
// (before 4.18, or without the privilege) yield none, and an error.
func ProgramCode(progs ...*ebpf.Program) ([]CodeRange, error) {
	var out []CodeRange
	for _, p := range progs {
		info, err := p.Info()
		if err != nil {
			return nil, fmt.Errorf("program info: %w", err)
		}
		addrs, ok1 := info.JitedKsymAddrs()
		lens, ok2 := info.JitedFuncLens()
		if !ok1 || !ok2 || len(addrs) != len(lens) {
			return nil, fmt.Errorf("program %s: the kernel does not tell where its code is", info.Name)
		}
		for i, a := range addrs {
			out = append(out, CodeRange{uint64(a), uint64(a) + uint64(lens[i])})
		}
	}
	return out, nil
}
