package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flightrec/flightrec/agent"
	"github.com/flightrec/flightrec/agent/events"
	"github.com/flightrec/flightrec/agent/recorder"
	"github.com/flightrec/flightrec/agent/ship"
	"github.com/flightrec/flightrec/agent/trigger"
	"github.com/flightrec/flightrec/wire/snapshot"
)

// recorderFlags configure the flight recorder and its triggers on `run`.
type recorderFlags struct {
	on          *bool
	window      *time.Duration
	bytes       *int64
	dir         *string
	spoolBytes  *int64
	before      *time.Duration
	after       *time.Duration
	cooldown    *time.Duration
	rateLimit   *string
	watch       *string
	crash       *bool
	cpu         *float64
	cpuSustain  *time.Duration
	rate        int
	rateWindow  time.Duration
	watchParsed trigger.Selector
}

func newRecorderFlags(fs *flag.FlagSet) *recorderFlags {
	return &recorderFlags{
		on:         fs.Bool("recorder", true, "keep the flight recorder's ring and take snapshots on triggers"),
		window:     fs.Duration("recorder-window", 60*time.Second, "history the ring keeps at least (within --recorder-bytes)"),
		bytes:      fs.Int64("recorder-bytes", 64<<20, "bound on the ring's memory, in bytes; it wins over --recorder-window"),
		dir:        fs.String("snapshot-dir", "/var/lib/flightrec-agent/snapshots", "where snapshots wait until the server has them"),
		spoolBytes: fs.Int64("snapshot-spool-bytes", 256<<20, "bound on --snapshot-dir, in bytes"),
		before:     fs.Duration("snapshot-before", 60*time.Second, "default window before a trigger"),
		after:      fs.Duration("snapshot-after", 10*time.Second, "default window after a trigger"),
		cooldown:   fs.Duration("trigger-cooldown", time.Minute, "per trigger key (kind, or process for crashes and CPU); 0 for none"),
		rateLimit:  fs.String("trigger-rate-limit", "6/10m", "snapshots per window across all triggers"),
		watch:      fs.String("watch", "", `local triggers only for processes matching this selector, e.g. '{service="api"}'; empty: all`),
		crash:      fs.Bool("crash-trigger", true, "snapshot on fatal signals (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS) and OOM kills"),
		cpu:        fs.Float64("cpu-trigger", 0, "snapshot when a watched process uses more than this many CPUs (e.g. 0.9) for --cpu-trigger-for; 0 disables"),
		cpuSustain: fs.Duration("cpu-trigger-for", 10*time.Second, "how long --cpu-trigger's threshold must hold"),
	}
}

func (f *recorderFlags) validate() error {
	if !*f.on {
		return nil
	}
	switch {
	case *f.window < time.Second:
		return usagef("--recorder-window %v is shorter than 1s", *f.window)
	case *f.bytes < 1<<20:
		return usagef("--recorder-bytes %d is below 1 MiB", *f.bytes)
	case *f.spoolBytes < 1<<20:
		return usagef("--snapshot-spool-bytes %d is below 1 MiB", *f.spoolBytes)
	case *f.dir == "":
		return usagef("--snapshot-dir is required with --recorder")
	case *f.before <= 0 || *f.after <= 0:
		return usagef("--snapshot-before %v and --snapshot-after %v must both be positive (1ms for next to nothing)", *f.before, *f.after)
	case *f.before > *f.window:
		return usagef("--snapshot-before %v reaches past --recorder-window %v", *f.before, *f.window)
	case *f.cooldown < 0:
		return usagef("--trigger-cooldown %v is negative", *f.cooldown)
	case *f.cpu < 0:
		return usagef("--cpu-trigger %v is negative", *f.cpu)
	}
	var err error
	if f.rate, f.rateWindow, err = parseRate(*f.rateLimit); err != nil {
		return usagef("--trigger-rate-limit: %v", err)
	}
	if f.watchParsed, err = trigger.ParseSelector(*f.watch); err != nil {
		return usagef("--watch: %v", err)
	}
	return nil
}

// parseRate reads "N/duration", e.g. 6/10m.
func parseRate(s string) (int, time.Duration, error) {
	n, d, ok := strings.Cut(s, "/")
	if !ok {
		return 0, 0, fmt.Errorf("%q is not N/duration, e.g. 6/10m", s)
	}
	count, err := strconv.Atoi(n)
	if err != nil || count <= 0 {
		return 0, 0, fmt.Errorf("%q: %q is not a positive count", s, n)
	}
	window, err := time.ParseDuration(d)
	if err != nil || window <= 0 {
		return 0, 0, fmt.Errorf("%q: %q is not a positive duration", s, d)
	}
	return count, window, nil
}

// flightRecorder is the recorder, its triggers and the spool that ships
// its snapshots.
type flightRecorder struct {
	ring    *recorder.Recorder
	spool   *ship.SnapshotSpool
	manager *trigger.Manager
	local   *trigger.Local
}

// newFlightRecorder builds the ring and the spool; the manager needs the
// agent and is made by attach.
func newFlightRecorder(f *recorderFlags, server, token string, freq int, log *slog.Logger, reg prometheus.Registerer) (*flightRecorder, error) {
	if !*f.on {
		return nil, nil
	}
	spool, err := ship.NewSnapshotSpool(ship.SnapshotSpoolConfig{Server: server, Token: token, Dir: *f.dir, MaxBytes: *f.spoolBytes}, log, reg)
	if err != nil {
		return nil, fmt.Errorf("snapshot spool: %w", err)
	}
	ring := recorder.New(recorder.Config{MinAge: *f.window, MaxBytes: *f.bytes, PeriodNS: int64(time.Second) / int64(freq)}, reg)
	return &flightRecorder{ring: ring, spool: spool}, nil
}

// configure sets the agent's hooks for the recorder and local triggers.
func (fr *flightRecorder) configure(cfg *agent.Config, f *recorderFlags, node string, a **agent.Agent, log *slog.Logger, reg prometheus.Registerer) {
	if fr == nil {
		return
	}
	cfg.Recorder = fr.ring
	// Processes that exited must stay resolvable as long as the ring holds them.
	cfg.Retention = max(agent.DefaultRetention, *f.window+10*time.Second)
	snap := func(meta *snapshot.Snapshot, at time.Time, before, after time.Duration) <-chan trigger.Result {
		out := make(chan trigger.Result, 1)
		go func() {
			r := <-(*a).RequestSnapshot(meta, at, before, after)
			out <- trigger.Result{Snapshot: r.Snapshot, Err: r.Err}
		}()
		return out
	}
	cooldown := *f.cooldown
	if cooldown == 0 {
		cooldown = -1 // trigger.Config: zero is its default, negative is none
	}
	fr.manager = trigger.New(trigger.Config{Node: node, DefaultBefore: *f.before, DefaultAfter: *f.after,
		Cooldown: cooldown, RateLimit: f.rate, RateWindow: f.rateWindow}, snap, fr.spool, log, reg)
	fr.local = trigger.NewLocal(fr.manager, f.watchParsed, *f.cpu, *f.cpuSustain)
	if *f.crash || *f.cpu > 0 {
		crash := *f.crash
		cfg.OnEvent = func(e events.ProcEvent, labels map[string]string) {
			if crash {
				fr.local.OnEvent(e, labels)
			}
			if e.Kind == events.KindExit {
				fr.local.Forget(e.PID)
			}
		}
	}
	if *f.cpu > 0 {
		cfg.OnCPU = func(now time.Time, use []agent.ProcessCPU) {
			for _, u := range use {
				fr.local.ObserveCPU(now, u.PID, u.Fraction, u.Labels)
			}
		}
	}
}

// run polls the server for triggers until pollCtx ends and ships
// snapshots until shipCtx ends: the last snapshots, built as the agent
// stops, still go out (or stay spooled on disk for the next start).
func (fr *flightRecorder) run(pollCtx, shipCtx context.Context, ch trigger.ChannelConfig, log *slog.Logger) (done <-chan struct{}) {
	d := make(chan struct{})
	go func() {
		defer close(d)
		polled := make(chan struct{})
		go func() { fr.manager.Poll(pollCtx, ch, log); close(polled) }()
		fr.spool.Run(shipCtx)
		<-polled
	}()
	return d
}
