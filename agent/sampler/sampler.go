// Package sampler loads the on-CPU BPF sampler (bpf/sampler.bpf.c) and
// attaches it to a software cpu-clock perf event on every online CPU.
package sampler

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/flightrec/flightrec/bpf"
)

// Frequency bounds, in samples per second per CPU.
const (
	MinFrequency = 1
	MaxFrequency = 1000
)

// Config selects what the sampler records.
type Config struct {
	Frequency int    // samples per second on each CPU
	PID       uint32 // only this process; 0 records every process
	RingBytes uint32 // ring buffer size, a power of two multiple of the page size
	// WakeupBytes is how much must be queued before the reader is woken
	// early; below it the reader collects on its own schedule.
	WakeupBytes uint64
	// Types caches the kernel's BTF, which loading needs (CO-RE, attach
	// targets) and which takes more CPU to parse than the verifier takes:
	// share one across the agent's loads. Nil parses it for this load.
	Types *btf.Cache
}

// DefaultRingBytes holds ~5 s of 99 Hz samples of deep stacks on 2 CPUs
// (the reader drains it every second, and at once past a quarter full). It
// costs twice its size in the agent's RSS from the start: the kernel maps
// every data page at mmap, twice over for reads across the wrap-around.
const DefaultRingBytes = 2 << 20

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	if c.Frequency < MinFrequency || c.Frequency > MaxFrequency {
		return fmt.Errorf("frequency %d Hz is out of range [%d, %d]", c.Frequency, MinFrequency, MaxFrequency)
	}
	if c.RingBytes != 0 && (c.RingBytes&(c.RingBytes-1) != 0 || c.RingBytes < uint32(os.Getpagesize())) {
		return fmt.Errorf("ring size %d is not a power of two of at least one page", c.RingBytes)
	}
	return nil
}

// Sampler owns the loaded BPF objects and the per-CPU perf events.
type Sampler struct {
	objs   bpf.SamplerObjects
	links  []link.Link
	wakeup uint64 // wakeup_bytes as loaded
}

// Open loads the sampler and attaches it on every online CPU. The caller
// drains Events() and must Close the sampler.
func Open(cfg Config) (*Sampler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	spec, err := bpf.LoadSampler()
	if err != nil {
		return nil, fmt.Errorf("load sampler spec: %w", err)
	}
	wakeup, err := configure(spec, cfg)
	if err != nil {
		return nil, err
	}
	s := &Sampler{wakeup: wakeup}
	if err := spec.LoadAndAssign(&s.objs, &ebpf.CollectionOptions{Cache: cfg.Types}); err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			return nil, fmt.Errorf("load sampler program: %+v", verr)
		}
		return nil, fmt.Errorf("load sampler program: %w", err)
	}
	if err := s.attach(cfg.Frequency); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// configure sizes the ring and sets the tunables; it returns wakeup_bytes.
func configure(spec *ebpf.CollectionSpec, cfg Config) (uint64, error) {
	ring := cfg.RingBytes
	if ring == 0 {
		ring = DefaultRingBytes
	}
	spec.Maps[bpf.SamplerMapEvents].MaxEntries = ring
	wake := cfg.WakeupBytes
	if wake == 0 {
		wake = uint64(ring) / 4
	}
	for name, v := range map[string]any{
		bpf.SamplerVarFilterTgid:  cfg.PID,
		bpf.SamplerVarWakeupBytes: wake,
	} {
		if err := spec.Variables[name].Set(v); err != nil {
			return 0, fmt.Errorf("set %s: %w", name, err)
		}
	}
	return wake, nil
}

// attach opens one event per CPU, their first ticks spread over a period.
// A perf event's timer starts when it is opened and keeps its phase, so
// events opened together tick together: a sample on one CPU that wakes a
// thread (the agent's own reader, above all) would put that thread under
// the other CPUs' ticks at once, and sample it far beyond the CPU it uses.
func (s *Sampler) attach(freq int) error {
	cpus, err := OnlineCPUs()
	if err != nil {
		return err
	}
	step := time.Second / time.Duration(freq) / time.Duration(len(cpus))
	start := time.Now()
	for i, cpu := range cpus {
		// Against the start, not the previous open: a late wakeup shifts
		// one CPU's phase instead of every later one's.
		sleepUntil(start.Add(time.Duration(i) * step))
		l, err := attachCPU(s.objs.SampleCpu, cpu, freq)
		if err != nil {
			return err
		}
		s.links = append(s.links, l)
	}
	return nil
}

// sleepUntil sleeps in the kernel: Go's timers may overshoot by a
// millisecond, half the period at the highest rate.
func sleepUntil(t time.Time) {
	for d := time.Until(t); d > 0; d = time.Until(t) {
		ts := unix.NsecToTimespec(d.Nanoseconds())
		if unix.Nanosleep(&ts, nil) == nil {
			return
		}
	}
}

// attachCPU opens a cpu-clock event in period mode: a period in nanoseconds
// samples exactly at the requested rate, unlike frequency mode which adapts.
func attachCPU(prog *ebpf.Program, cpu, freq int) (link.Link, error) {
	attr := unix.PerfEventAttr{
		Type:   unix.PERF_TYPE_SOFTWARE,
		Config: unix.PERF_COUNT_SW_CPU_CLOCK,
		Sample: uint64(1e9 / freq),
	}
	attr.Size = uint32(unsafe.Sizeof(attr))
	fd, err := unix.PerfEventOpen(&attr, -1, cpu, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("open cpu-clock perf event on cpu %d: %w", cpu, err)
	}
	l, err := link.AttachRawLink(link.RawLinkOptions{Target: fd, Program: prog, Attach: ebpf.AttachPerfEvent})
	// The link holds its own reference to the event.
	unix.Close(fd)
	if err != nil {
		return nil, fmt.Errorf("attach sampler to perf event on cpu %d: %w", cpu, err)
	}
	return l, nil
}

// Events is the ring buffer the sampler writes into.
func (s *Sampler) Events() *ebpf.Map { return s.objs.Events }

// Counters is the map of per-CPU counters (see enum counter in flightrec.h).
func (s *Sampler) Counters() *ebpf.Map { return s.objs.Counters }

// Know marks pid as read by user space: its samples no longer wake the
// reader at once. Forget undoes it, for a process that exited or exec'd.
func (s *Sampler) Know(pid uint32) error {
	return s.objs.KnownPids.Update(pid, uint8(1), ebpf.UpdateAny)
}

// Forget is the inverse of Know; forgetting an unknown pid is not an error.
func (s *Sampler) Forget(pid uint32) error {
	err := s.objs.KnownPids.Delete(pid)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil
	}
	return err
}

// Close detaches from every CPU and unloads the programs.
func (s *Sampler) Close() error {
	var errs []error
	for _, l := range s.links {
		errs = append(errs, l.Close())
	}
	s.links = nil
	errs = append(errs, s.objs.Close())
	return errors.Join(errs...)
}

// OnlineCPUs parses /sys/devices/system/cpu/online ("0-3,5").
func OnlineCPUs() ([]int, error) {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return nil, fmt.Errorf("read online cpus: %w", err)
	}
	return parseCPUList(strings.TrimSpace(string(b)))
}

func parseCPUList(s string) ([]int, error) {
	var cpus []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("parse cpu list %q: %w", s, err)
		}
		last := first
		if isRange {
			if last, err = strconv.Atoi(hi); err != nil || last < first {
				return nil, fmt.Errorf("parse cpu list %q: bad range %q", s, part)
			}
		}
		for c := first; c <= last; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}
