package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/pprof/profile"

	"github.com/flightrec/flightrec/agent"
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
	if err := parse(fs, args); err != nil {
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
	fmt.Fprintf(stdout, "wrote %s: %d samples (%d lost)\n", *out, sum(merged), c.Lost)
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

func sum(p *profile.Profile) int64 {
	var n int64
	for _, s := range p.Sample {
		n += s.Value[0]
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
