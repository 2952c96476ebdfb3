package agent

import (
	"strings"

	"github.com/flightrec/flightrec/agent/sampler"
	"github.com/flightrec/flightrec/agent/symbolize"
)

// tracingFrames recognizes the frames that a kernel stack taken inside a
// BPF tracing program starts with: the program itself and the kernel's
// dispatch to it. They are the same on every blocking and crash stack and
// say nothing about the process, so they are dropped: an off-CPU stack
// then starts at __schedule.
type tracingFrames struct {
	code   []sampler.CodeRange // our programs' JIT code
	kernel func(addr uint64, call bool) symbolize.Location
	known  map[uint64]bool // address → is a tracing frame
}

// Names of the kernel's BPF dispatch, and of BPF programs in kallsyms:
// with a kallsyms cache older than our programs, the code ranges catch those.
var tracingPrefixes = []string{"bpf_prog_", "bpf_trace_run", "__bpf_trace_", "__traceiter_", "bpf_trampoline_"}

// maxTracingFrames bounds the walk: program, dispatch, trampoline, iterator.
const maxTracingFrames = 4

// knownLimit bounds the address cache; the set of addresses seen at the top
// of these stacks is small, so hitting it means something odd: start over.
const knownLimit = 4096

func newTracingFrames(code []sampler.CodeRange, kernel func(uint64, bool) symbolize.Location) *tracingFrames {
	return &tracingFrames{code: code, kernel: kernel, known: map[uint64]bool{}}
}

// trim returns kernel without its leading tracing frames.
func (f *tracingFrames) trim(kernel []uint64) []uint64 {
	for i := 0; i < maxTracingFrames && len(kernel) > 0 && f.is(kernel[0], i > 0); i++ {
		kernel = kernel[1:]
	}
	return kernel
}

func (f *tracingFrames) is(addr uint64, call bool) bool {
	if v, ok := f.known[addr]; ok {
		return v
	}
	v := f.inCode(addr) || f.named(addr, call)
	if len(f.known) >= knownLimit {
		clear(f.known)
	}
	f.known[addr] = v
	return v
}

func (f *tracingFrames) inCode(addr uint64) bool {
	for _, r := range f.code {
		if addr >= r.Start && addr < r.End {
			return true
		}
	}
	return false
}

func (f *tracingFrames) named(addr uint64, call bool) bool {
	for _, fr := range f.kernel(addr, call).Frames {
		for _, p := range tracingPrefixes {
			if strings.HasPrefix(fr.Function, p) {
				return true
			}
		}
	}
	return false
}
