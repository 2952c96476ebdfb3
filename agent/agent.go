// Package agent runs flightrec's node agent: it samples stacks with BPF,
// drains them in batches, completes and attributes them to processes, and
// emits one labelled, symbolized pprof per reporting interval.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf/rlimit"
	"github.com/google/pprof/profile"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flightrec/flightrec/agent/aggregate"
	"github.com/flightrec/flightrec/agent/events"
	"github.com/flightrec/flightrec/agent/preflight"
	"github.com/flightrec/flightrec/agent/procinfo"
	"github.com/flightrec/flightrec/agent/sampler"
	"github.com/flightrec/flightrec/agent/symbolize"
	"github.com/flightrec/flightrec/agent/unwind"
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
}

// Defaults for Config fields left zero.
const (
	DefaultFrequency = 19
	DefaultInterval  = 10 * time.Second
	// DefaultDrainInterval is how often queued samples are collected when
	// nothing wakes the reader sooner (a new process, a filling ring).
	DefaultDrainInterval = time.Second
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
	if c.Interval < time.Second {
		return fmt.Errorf("interval %v is shorter than 1s", c.Interval)
	}
	return sampler.Config{Frequency: c.Frequency, RingBytes: c.RingBytes}.Validate()
}

// Consumer receives every drained batch, in order; the flight recorder is
// one. A batch is only valid during the call.
type Consumer interface {
	Consume(*events.Batch, *events.Clock)
}

// Agent is a running pipeline.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	m       *metrics
	sampler *sampler.Sampler
	drainer *events.Drainer
	clock   *events.Clock
	sym     *symbolize.Symbolizer
	procs   *processTable
	agg     *aggregate.Aggregator
	extra   []Consumer
	next    time.Time    // end of the current interval
	drained atomic.Int64 // unix nanoseconds of the last drain, for health
}

// New checks the host, loads and attaches the sampler. The caller must
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
	s, err := sampler.Open(sampler.Config{Frequency: cfg.Frequency, PID: cfg.PID, RingBytes: cfg.RingBytes})
	if err != nil {
		return nil, err
	}
	d, err := events.NewDrainer(s.Events(), cfg.DrainInterval)
	if err != nil {
		s.Close()
		return nil, err
	}
	sym := symbolize.New(symbolize.Options{CacheDir: cfg.CacheDir}, log, reg)
	return &Agent{
		cfg:     cfg,
		log:     log,
		m:       newMetrics(reg, s),
		sampler: s,
		drainer: d,
		clock:   events.NewClock(),
		sym:     sym,
		procs:   newProcessTable(cfg.Node, procinfo.Reader{}, sym, s),
	}, nil
}

// AddConsumer registers c to see every batch; call before Run.
func (a *Agent) AddConsumer(c Consumer) { a.extra = append(a.extra, c) }

// Run samples until ctx is done, calling emit with each interval's profile
// and once more with the last, partial interval. Intervals without samples
// emit nothing.
func (a *Agent) Run(ctx context.Context, emit func(*profile.Profile)) error {
	now := time.Now()
	a.agg = aggregate.New(now)
	a.next = now.Add(a.cfg.Interval)
	err := a.drainer.Run(ctx, func(b *events.Batch) {
		a.handle(b)
		if now := time.Now(); !now.Before(a.next) {
			a.report(now, emit)
			a.next = a.next.Add(a.cfg.Interval)
			if a.next.Before(now) { // we fell behind (suspend): realign
				a.next = now.Add(a.cfg.Interval)
			}
		}
	})
	a.report(time.Now(), emit)
	return err
}

// handle processes one drained batch: attribute, complete, count.
func (a *Agent) handle(b *events.Batch) {
	start := time.Now()
	for i := range b.Samples {
		s := &b.Samples[i]
		p := a.procs.observe(s)
		user := s.User
		if p.space != nil && len(user) > 0 {
			if slot, ok := p.space.ReturnSlot(user[0]); ok {
				user = unwind.FixLeaf(user, s.SPWords, slot)
			}
		}
		a.agg.Add(s.PID, user, s.Kernel)
	}
	for _, c := range a.extra {
		c.Consume(b, a.clock)
	}
	a.drained.Store(start.UnixNano())
	a.m.samples.Add(float64(len(b.Samples)))
	a.m.drain.Observe(time.Since(start).Seconds())
}

// report closes the interval, builds its profile and forgets processes that
// have exited: their samples are in this profile, so their objects can go.
func (a *Agent) report(now time.Time, emit func(*profile.Profile)) {
	iv := a.agg.Take(now)
	a.clock.Sync()
	if iv.Samples > 0 {
		start := time.Now()
		p := aggregate.Build(iv, a.procs, aggregate.ProfileOptions{Period: int64(time.Second) / int64(a.cfg.Frequency)})
		a.m.build.Observe(time.Since(start).Seconds())
		emit(p)
	}
	a.procs.sweep()
	a.sym.Trim()
	a.m.processes.Set(float64(a.procs.len()))
}

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
	errs = append(errs, a.drainer.Close(), a.sampler.Close())
	if a.procs != nil {
		a.procs.releaseAll()
	}
	return errors.Join(errs...)
}
