package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/pprof/profile"

	"github.com/flightrec/flightrec/agent"
	"github.com/flightrec/flightrec/agent/aggregate"
	"github.com/flightrec/flightrec/agent/offcpu"
	"github.com/flightrec/flightrec/agent/sampler"
)

func record(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("record", stderr)
	duration := fs.Duration("duration", 30*time.Second, "how long to record")
	pid := fs.Int("pid", 0, "record only this process (default: every process)")
	freq := fs.Int("frequency", 99, "samples per second on each CPU (1-1000)")
	out := fs.String("o", "cpu.pb.gz", "output pprof file")
	node := fs.String("node", defaultNode(), "node label")
	cacheDir := fs.String("cache-dir", defaultCacheDir, "directory for what survives restarts (kernel symbols); empty disables")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	offCPU := offCPUFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := offCPU.validate(); err != nil {
		return err
	}
	if *duration <= 0 {
		return usagef("--duration %v must be positive", *duration)
	}
	if *freq < sampler.MinFrequency || *freq > sampler.MaxFrequency {
		return usagef("--frequency %d is out of range [%d, %d]", *freq, sampler.MinFrequency, sampler.MaxFrequency)
	}
	if *pid < 0 || *pid > 1<<22 {
		return usagef("--pid %d is not a process id", *pid)
	}
	if *pid > 0 {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", *pid)); err != nil {
			return usagef("--pid %d: no such process", *pid)
		}
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}

	// One interval spanning the whole recording: one profile comes out.
	a, err := agent.New(agent.Config{
		Frequency: *freq,
		Interval:  max(*duration, time.Second),
		PID:       uint32(*pid),
		Node:      *node,
		CacheDir:  *cacheDir,
		OffCPU:    *offCPU.on,
		MinOffCPU: *offCPU.min,
	}, log, nil)
	if err != nil {
		return err
	}
	defer a.Close()

	ctx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()
	var profiles []*profile.Profile
	if err := a.Run(ctx, func(p *profile.Profile) { profiles = append(profiles, p) }); err != nil {
		return err
	}
	if len(profiles) == 0 {
		return fmt.Errorf("no samples recorded in %v", *duration)
	}
	merged, err := profile.Merge(profiles)
	if err != nil {
		return fmt.Errorf("merge interval profiles: %w", err)
	}
	if err := writeProfile(*out, merged); err != nil {
		return err
	}
	c, _ := a.Counters()
	fmt.Fprintf(stdout, "wrote %s: %d samples (%d lost), %v off-CPU (%d intervals lost)\n", *out,
		sum(merged, aggregate.SamplesValue), c.Lost, time.Duration(sum(merged, aggregate.OffCPUValue)).Round(time.Millisecond), c.OffCPULost)
	return nil
}

// offCPU holds the off-CPU flags record and run share.
type offCPU struct {
	on  *bool
	min *time.Duration
}

func offCPUFlags(fs *flag.FlagSet) offCPU {
	return offCPU{
		on:  fs.Bool("off-cpu", true, "also profile off-CPU time: where threads wait (sched_switch)"),
		min: fs.Duration("off-cpu-min", offcpu.DefaultMinOffCPU, "shortest off-CPU interval attributed; shorter ones are counted only"),
	}
}

func (o offCPU) validate() error {
	if *o.min <= 0 {
		return usagef("--off-cpu-min %v must be positive", *o.min)
	}
	return nil
}

func writeProfile(path string, p *profile.Profile) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create output: %w", err)
	}
	if err := p.Write(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// sum totals one of the values (aggregate.SamplesValue...) over p's samples.
func sum(p *profile.Profile, value int) int64 {
	var n int64
	for _, s := range p.Sample {
		n += s.Value[value]
	}
	return n
}

func defaultNode() string {
	if n := os.Getenv("NODE_NAME"); n != "" {
		return n // the Kubernetes downward API convention
	}
	h, _ := os.Hostname()
	return h
}
