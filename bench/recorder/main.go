// Command bench-recorder measures the flight recorder on this node: agent CPU with off-CPU tracing under
// context-switch load, ring memory against its byte bound, and trigger → stored snapshot latency.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the bench's flags.
type options struct {
	agent, server  string // prebuilt binaries; empty: build into the temp dir
	rates          []int  // pingpong context switches/s
	rounds         int
	warmup, window time.Duration
	settle         time.Duration
	triggers       int
	ringAfter      time.Duration
	before, after  time.Duration
	keep, quick    bool
	agentEnv       []string // added to the agents' environment
}

// bench is the state shared by the parts.
type bench struct {
	opt                          options
	tmp                          string
	agentBin, serverBin, pingBin string
	serverURL                    string
	agents                       int // agents started so far (for their spool dirs)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench-recorder: "+format+"\n", args...)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	err := run(ctx, os.Args[1:])
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, new(usageError)):
		logf("%v", err)
		os.Exit(2)
	default:
		logf("%v", err)
		os.Exit(1)
	}
}

type usageError struct{ error }

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench-recorder", flag.ContinueOnError)
	fs.StringVar(&o.agent, "agent", "", "flightrec-agent binary (default: go build ./cmd/flightrec-agent into a temp dir)")
	fs.StringVar(&o.server, "flightrec", "", "flightrec binary (default: go build ./cmd/flightrec into a temp dir)")
	rates := fs.String("rates", "2000,20000", "pingpong context switches per second, comma-separated")
	fs.IntVar(&o.rounds, "rounds", 3, "CPU rounds: one window per rate each")
	fs.DurationVar(&o.warmup, "warmup", 65*time.Second, "from \"agent running\" to the first CPU window: the ring fills (60 s) and the first reports are done")
	fs.DurationVar(&o.window, "window", 20*time.Second, "CPU measurement window per rate (a multiple of the 10 s report interval)")
	fs.DurationVar(&o.settle, "settle", 2*time.Second, "after a new pingpong starts, before its window")
	fs.IntVar(&o.triggers, "triggers", 50, "triggers fired one at a time for the latency")
	fs.DurationVar(&o.ringAfter, "ring-after", 75*time.Second, "agent age at which the ring is read (≥ 60 s: the ring's default window)")
	fs.DurationVar(&o.before, "snapshot-before", 10*time.Second, "the agent's --snapshot-before in the trigger run")
	fs.DurationVar(&o.after, "snapshot-after", 100*time.Millisecond, "the agent's --snapshot-after in the trigger run")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir (logs, server data)")
	env := fs.String("agent-env", "", "extra environment for every agent, space-separated, e.g. GOMEMLIMIT=1GiB")
	fs.BoolVar(&o.quick, "quick", false, "smoke test: 1 round, 10 s windows, 10 triggers, ring read at 30 s (figures are not the bench's)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, usageError{err}
	}
	if o.quick {
		o.rounds, o.warmup, o.window, o.triggers, o.ringAfter = 1, 11*time.Second, 10*time.Second, 10, 30*time.Second
	}
	o.agentEnv = strings.Fields(*env)
	for _, s := range strings.Split(*rates, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 10 || n > 500000 {
			return o, usageError{fmt.Errorf("-rates: bad rate %q (10-500000)", s)}
		}
		o.rates = append(o.rates, n)
	}
	if fs.NArg() > 0 || o.rounds < 1 || o.triggers < 1 || o.window < time.Second {
		return o, usageError{errors.New("unexpected arguments, or -rounds/-triggers < 1, or -window < 1s")}
	}
	return o, nil
}

func run(ctx context.Context, args []string) error {
	opt, err := parseFlags(args)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("must run as root (BPF, kernel.bpf_stats_enabled); try sudo, or make bench-recorder")
	}
	if _, err := os.Stat("testdata/workloads/pingpong/pingpong.c"); err != nil {
		return errors.New("run from the repository root (it builds testdata/workloads/pingpong)")
	}
	b := &bench{opt: opt}
	if b.tmp, err = os.MkdirTemp("", "bench-recorder-"); err != nil {
		return err
	}
	if opt.keep {
		logf("temp dir (kept): %s", b.tmp)
	} else {
		defer os.RemoveAll(b.tmp)
	}
	return b.run(ctx)
}

func (b *bench) run(ctx context.Context) error {
	if err := b.build(ctx); err != nil {
		return err
	}
	restore, err := enableBPFStats()
	if err != nil {
		return err
	}
	defer restore()
	server, err := b.startServer(ctx)
	if err != nil {
		return err
	}
	defer server.stop(10 * time.Second)

	rp := newReport(b)
	eta := b.opt.warmup + time.Duration(b.opt.rounds*len(b.opt.rates))*(b.opt.window+b.opt.settle) + b.opt.ringAfter + 20*time.Second
	logf("about %v in all", eta.Round(10*time.Second))
	if rp.CPU, err = b.cpuRounds(ctx); err != nil {
		return err
	}
	if rp.Recorder, err = b.recorderRun(ctx); err != nil {
		return err
	}
	if server.exited() {
		return fmt.Errorf("the server exited during the bench:\n%s", server.output())
	}
	rp.write(os.Stdout)
	return nil
}

// build compiles the agent and the server (unless given) and pingpong.
func (b *bench) build(ctx context.Context) error {
	b.agentBin, b.serverBin = b.opt.agent, b.opt.server
	b.pingBin = filepath.Join(b.tmp, "pingpong")
	steps := [][]string{{"gcc", "-O1", "-fno-omit-frame-pointer", "-g", "-pthread", "-I", "testdata/workloads/common",
		"-o", b.pingBin, "testdata/workloads/pingpong/pingpong.c"}}
	if b.agentBin == "" {
		b.agentBin = filepath.Join(b.tmp, "flightrec-agent")
		steps = append(steps, []string{"go", "build", "-o", b.agentBin, "./cmd/flightrec-agent"})
	}
	if b.serverBin == "" {
		b.serverBin = filepath.Join(b.tmp, "flightrec")
		steps = append(steps, []string{"go", "build", "-o", b.serverBin, "./cmd/flightrec"})
	}
	for _, argv := range steps {
		logf("building: %s", strings.Join(argv, " "))
		if out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, out)
		}
	}
	return nil
}

// startServer runs a real flightrec server on a loopback port; its trigger
// rate limit is raised so that the bench's own triggers are never refused.
func (b *bench) startServer(ctx context.Context) (*child, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	b.serverURL = "http://" + addr
	argv := []string{b.serverBin, "server", "--data", filepath.Join(b.tmp, "data"), "--listen", addr,
		"--trigger-rate-limit", "1000/1m", "--log-level", "warn"}
	logf("server: %s", strings.Join(argv, " "))
	c, err := startChild(ctx, "server", argv, nil, "")
	if err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var list snapshotList
		err := getJSON(ctx, b.serverURL+"/api/v1/snapshots?limit=1", &list)
		switch {
		case err == nil:
			return c, nil
		case c.exited() || time.Now().After(deadline) || ctx.Err() != nil:
			c.stop(5 * time.Second)
			return nil, fmt.Errorf("server not answering: %v\n%s", err, c.output())
		}
	}
}
