// Package agent runs flightrec's node agent: it samples on- and off-CPU stacks
// with BPF, attributes them to processes and emits a pprof per interval.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/rlimit"
	"github.com/google/pprof/profile"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flightrec/flightrec/agent/aggregate"
	"github.com/flightrec/flightrec/agent/events"
	"github.com/flightrec/flightrec/agent/offcpu"
	"github.com/flightrec/flightrec/agent/preflight"
	"github.com/flightrec/flightrec/agent/procevents"
	"github.com/flightrec/flightrec/agent/procinfo"
	"github.com/flightrec/flightrec/agent/recorder"
	"github.com/flightrec/flightrec/agent/sampler"
	"github.com/flightrec/flightrec/agent/symbolize"
)

// Config is what a user sets.
type Config struct {
	Frequency     int           // samples per second per CPU
	Interval      time.Duration // reporting interval
	PID           uint32        // record only this process; 0 = every process
	Node          string        // node label
	DrainInterval time.Duration // how often the ring is collected
	RingBytes     uint32
	CacheDir      string // where to keep what survives restarts (kernel symbols); "" for nowhere

	OffCPU    bool          // also trace off-CPU time (sched_switch)
	MinOffCPU time.Duration // shortest off-CPU interval attributed; 0 = 1 ms
	// Retention is how long an exited process (its labels, its symbols, its
	// blocking stacks) is kept after its last sample or event, so that a
	// flight recorder window reaching back that far can be symbolized.
	Retention time.Duration
	// Recorder, if set, receives every sample, stack, off-CPU interval and
	// process event, and builds the snapshots RequestSnapshot asks for.
	Recorder *recorder.Recorder
	// OnEvent, if set, is called with every process event (exec, exit,
	// fatal signal, OOM kill) and its process's labels (a copy), in order,
	// from a goroutine of its own: a slow consumer does not stall the
	// pipeline, it loses events instead (counted in
	// flightrec_agent_event_hook_dropped_total). The local triggers use it.
	OnEvent func(events.ProcEvent, map[string]string)
	// OnCPU, if set, is called after each drain with the CPU use of every
	// process sampled in it or in the drain before (as zero), on the drain
	// goroutine: it must be quick. The CPU-spike trigger uses it.
	OnCPU func(now time.Time, use []ProcessCPU)
}

// ProcessCPU is one process's CPU use over a drain.
type ProcessCPU struct {
	PID      uint32
	Fraction float64           // of one CPU, estimated from samples
	Labels   map[string]string // the process's labels; do not modify
}

// Defaults for Config fields left zero.
const (
	DefaultFrequency = 19
	DefaultInterval  = 10 * time.Second
	// DefaultDrainInterval is how often queued samples are collected when
	// nothing wakes the reader sooner (a new process, a filling ring).
	DefaultDrainInterval = time.Second
	// DefaultRetention covers the flight recorder's default window (60 s
	// before a trigger) with a reporting interval to spare.
	DefaultRetention = 70 * time.Second
)

// Validate reports invalid settings in a user's terms.
func (c *Config) Validate() error {
	if c.Frequency == 0 {
		c.Frequency = DefaultFrequency
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.DrainInterval == 0 {
		c.DrainInterval = DefaultDrainInterval
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	switch {
	case c.Interval < time.Second:
		return fmt.Errorf("interval %v is shorter than 1s", c.Interval)
	case c.Retention < 0:
		return fmt.Errorf("process retention %v is negative", c.Retention)
	}
	if err := (offcpu.Config{PID: c.PID, MinOffCPU: c.MinOffCPU}).Validate(); err != nil {
		return err
	}
	return sampler.Config{Frequency: c.Frequency, RingBytes: c.RingBytes}.Validate()
}

// Agent is a running pipeline.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	m       *metrics
	sampler *sampler.Sampler
	offCPU  *offcpu.Tracer     // nil when off
	events  *procevents.Tracer // nil when it could not attach
	drainer *events.Drainer
	clock   *events.Clock
	sym     *symbolize.Symbolizer
	procs   *processTable
	agg     *aggregate.Aggregator
	hook    *eventHook // nil without Config.OnEvent
	tracing *tracingFrames
	snaps   snapshotQueue
	execs   map[uint32]int // scratch: the last exec event of each pid in a batch
	cpu     *cpuUse        // nil without Config.OnCPU
	next    time.Time      // end of the current interval
	drained atomic.Int64   // unix nanoseconds of the last drain, for health
}

// New checks the host, loads and attaches the BPF programs. The caller must
// Close the agent.
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	report := preflight.Host().Check()
	for _, w := range report.Warnings {
		log.Warn(w)
	}
	if err := report.Err(); err != nil {
		return nil, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		// Kernels >= 5.11 charge BPF memory to the cgroup instead.
		log.Warn("cannot raise RLIMIT_MEMLOCK; loading may fail on kernels before 5.11", "err", err)
	}
	a := &Agent{cfg: cfg, log: log, clock: events.NewClock(), execs: map[uint32]int{}}
	if err := a.open(); err != nil {
		a.Close()
		return nil, err
	}
	a.m = newMetrics(reg, a.sampler)
	a.sym = symbolize.New(symbolize.Options{CacheDir: cfg.CacheDir}, log, reg)
	a.procs = newProcessTable(cfg.Node, procinfo.Reader{}, a.sym, a.sampler, cfg.Retention)
	a.tracing = newTracingFrames(a.programCode(), a.sym.Kernel)
	if cfg.OnEvent != nil {
		a.hook = newEventHook(cfg.OnEvent, a.m.hookDropped)
	}
	if cfg.OnCPU != nil {
		a.cpu = newCPUUse()
	}
	return a, nil
}

// open loads and attaches the BPF programs and the ring reader.
func (a *Agent) open() error {
	// One parse of the kernel's BTF for the three loads; dropped after them.
	types := btf.NewCache()
	var err error
	a.sampler, err = sampler.Open(sampler.Config{Frequency: a.cfg.Frequency, PID: a.cfg.PID, RingBytes: a.cfg.RingBytes, Types: types})
	if err != nil {
		return err
	}
	shared := a.sampler.Shared()
	if a.events, err = procevents.Open(procevents.Config{Types: types}, shared); err != nil {
		// Profiling works without; exited processes are then noticed
		// only when their pid is gone.
		a.log.Warn("process events unavailable: no exec, exit, crash or OOM events", "err", err)
		a.events = nil
	}
	if a.cfg.OffCPU {
		if a.offCPU, err = offcpu.Open(offcpu.Config{PID: a.cfg.PID, MinOffCPU: a.cfg.MinOffCPU, Types: types}, shared); err != nil {
			return fmt.Errorf("%w (run with --off-cpu=false to profile CPU only)", err)
		}
	}
	a.drainer, err = events.NewDrainer(shared.Events, a.cfg.DrainInterval)
	return err
}

// programCode is where the programs that take stacks inside the kernel
// live, for trimming their frames off those stacks.
func (a *Agent) programCode() []sampler.CodeRange {
	var code []sampler.CodeRange
	add := func(c []sampler.CodeRange, err error) {
		if err != nil {
			a.log.Debug("BPF frames are trimmed by name only", "err", err)
		}
		code = append(code, c...)
	}
	if a.offCPU != nil {
		add(a.offCPU.Code())
	}
	if a.events != nil {
		add(a.events.Code())
	}
	return code
}

// Run samples until ctx is done, calling emit with each interval's profile
// and once more with the last, partial interval. Intervals without samples
// or off-CPU time emit nothing.
func (a *Agent) Run(ctx context.Context, emit func(*profile.Profile)) error {
	now := time.Now()
	a.agg = aggregate.New(now)
	a.next = now.Add(a.cfg.Interval)
	if a.hook != nil {
		go a.hook.run()
	}
	err := a.drainer.Run(ctx, func(b *events.Batch) {
		drained := time.Now()
		a.handle(b)
		if a.cpu != nil {
			a.cfg.OnCPU(drained, a.cpu.take(drained, a.period(), a.procs))
		}
		a.snaps.buildDue(drained, a.snapshot)
		if now := time.Now(); !now.Before(a.next) {
			a.report(now, emit)
			a.next = a.next.Add(a.cfg.Interval)
			if a.next.Before(now) { // we fell behind (suspend): realign
				a.next = now.Add(a.cfg.Interval)
			}
		}
	})
	a.snaps.stop(time.Now(), a.snapshot)
	a.report(time.Now(), emit)
	if a.hook != nil {
		a.hook.close()
	}
	return err
}

// report closes the interval, builds its profile and drops processes whose
// retention has passed: their samples are in this profile, so their
// objects can go.
func (a *Agent) report(now time.Time, emit func(*profile.Profile)) {
	iv := a.agg.Take(now)
	a.clock.Sync()
	if !iv.Empty() {
		start := time.Now()
		p := aggregate.Build(iv, a.procs, aggregate.ProfileOptions{Period: a.period()})
		a.m.build.Observe(time.Since(start).Seconds())
		emit(p)
	}
	a.procs.sweep(events.Now())
	a.sym.Trim()
	a.m.processes.Set(float64(a.procs.len()))
	a.m.observeStacks(a.procs.stacks)
}

// period is the CPU time one sample stands for.
func (a *Agent) period() int64 { return int64(time.Second) / int64(a.cfg.Frequency) }

// Healthy reports an error when the drain loop has stalled.
func (a *Agent) Healthy() error {
	last := time.Unix(0, a.drained.Load())
	if since := time.Since(last); since > 10*a.cfg.DrainInterval+5*time.Second {
		return fmt.Errorf("no drain of the ring buffer for %v", since.Round(time.Second))
	}
	return nil
}

// Counters returns the sampler's in-kernel counters.
func (a *Agent) Counters() (sampler.Counters, error) { return a.sampler.ReadCounters() }

// Close detaches the BPF programs and releases everything.
func (a *Agent) Close() error {
	var errs []error
	if a.offCPU != nil {
		errs = append(errs, a.offCPU.Close())
	}
	if a.events != nil {
		errs = append(errs, a.events.Close())
	}
	if a.drainer != nil {
		errs = append(errs, a.drainer.Close())
	}
	if a.sampler != nil {
		errs = append(errs, a.sampler.Close())
	}
	if a.procs != nil {
		a.procs.releaseAll()
	}
	return errors.Join(errs...)
}
