package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// readyMessage is what the agent logs once it is attached and running.
const readyMessage = `msg="agent running"`

// cpuWindow is one agent over one measurement window at one rate.
type cpuWindow struct {
	Round  int
	Rate   int // pingpong -rate
	OffCPU bool

	Wall      time.Duration
	AgentCPU  time.Duration // user+sys of the agent over Wall
	NodeSw    uint64        // /proc/stat ctxt delta
	PingSw    uint64        // pingpong's threads' switches delta
	Intervals float64       // off-CPU intervals the BPF program sent (≥ --off-cpu-min)
	Short     float64       // off-CPU intervals counted only (shorter)
	Lost      float64       // off-CPU intervals and samples lost
	BPFRunNs  uint64        // run time of the agent's BPF programs
	GCs       float64       // Go GC cycles of the agent
	RingBytes float64       // flightrec_agent_recorder_bytes at the end
	Snapshots float64       // snapshots the agent built (there should be none)
}

func (w cpuWindow) perSec(v float64) float64 { return v / w.Wall.Seconds() }

// CPUPercent is the agent's CPU as % of one core.
func (w cpuWindow) CPUPercent() float64 { return 100 * w.AgentCPU.Seconds() / w.Wall.Seconds() }

// BPFPercent is the agent's BPF programs' run time as % of one core; it is
// charged to the tasks they run in (every switching task), not the agent.
func (w cpuWindow) BPFPercent() float64 {
	return 100 * float64(w.BPFRunNs) / float64(w.Wall.Nanoseconds())
}

// runningAgent is an agent of part 1.
type runningAgent struct {
	*child
	admin  string
	offCPU bool
}

// probe is what one end of a window reads of one agent.
type probe struct {
	at      time.Time
	cpu     time.Duration
	metrics map[string]float64
	bpfNs   uint64
}

func (a *runningAgent) probe(ctx context.Context) (probe, error) {
	p := probe{at: time.Now()}
	var err error
	if p.cpu, err = processCPU(a.pid()); err != nil {
		return p, err
	}
	p.bpfNs, _ = bpfRunNs(a.pid())
	p.metrics, err = scrape(ctx, "http://"+a.admin+"/metrics")
	return p, err
}

// node reads the switch counters shared by the agents' windows.
func node(ping *child) (nodeSw, pingSw uint64, err error) {
	if nodeSw, err = nodeSwitches(); err != nil {
		return 0, 0, err
	}
	pingSw, err = taskSwitches(ping.pid())
	return nodeSw, pingSw, err
}

// window measures every agent over the same b.opt.window.
func (b *bench) window(ctx context.Context, agents []*runningAgent, ping *child, round, rate int) ([]cpuWindow, error) {
	n0, s0, err := node(ping)
	p0 := make([]probe, len(agents))
	for i, a := range agents {
		if err == nil {
			p0[i], err = a.probe(ctx)
		}
	}
	if err == nil {
		err = sleepWatching(ctx, b.opt.window, append([]*child{ping}, children(agents)...)...)
	}
	if err != nil {
		return nil, err
	}
	out := make([]cpuWindow, len(agents))
	for i, a := range agents {
		p1, err := a.probe(ctx)
		if err != nil {
			return nil, err
		}
		out[i] = delta(p0[i], p1, cpuWindow{Round: round, Rate: rate, OffCPU: a.offCPU})
	}
	n1, s1, err := node(ping)
	for i := range out {
		out[i].NodeSw, out[i].PingSw = n1-n0, s1-s0
	}
	return out, err
}

func delta(p0, p1 probe, w cpuWindow) cpuWindow {
	d := func(name string) float64 { return p1.metrics[name] - p0.metrics[name] }
	w.Wall, w.AgentCPU, w.BPFRunNs = p1.at.Sub(p0.at), p1.cpu-p0.cpu, p1.bpfNs-p0.bpfNs
	w.Intervals, w.Short = d(metricOffCPU), d(metricOffCPUShort)
	w.Lost = d(metricOffCPULost) + d(metricSamplesLost)
	w.GCs, w.Snapshots = d(metricGCs), d(metricSnapshots)
	w.RingBytes = p1.metrics[metricRingBytes]
	return w
}

func children(agents []*runningAgent) []*child {
	out := make([]*child, len(agents))
	for i, a := range agents {
		out[i] = a.child
	}
	return out
}

// sleepWatching sleeps d, failing early if one of the children exits.
func sleepWatching(ctx context.Context, d time.Duration, cs ...*child) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-timer.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			for _, c := range cs {
				if c.exited() {
					return fmt.Errorf("%s exited early: %v\n%s", c.name, c.cmd.ProcessState, lastLines(c.output(), 20))
				}
			}
		}
	}
}

// startPingpong starts the workload at rate switches/s.
func (b *bench) startPingpong(ctx context.Context, rate int) (*child, error) {
	return startChild(ctx, "pingpong", []string{b.pingBin, "-rate", strconv.Itoa(rate)}, nil, "ready ")
}

// startAgent starts an agent and waits for "agent running". Its command
// line is the defaults but for what the bench must own (server, admin
// port, spool and cache dirs) and crash triggers, plus extra.
func (b *bench) startAgent(ctx context.Context, extra ...string) (*child, string, error) {
	admin, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	b.agents++
	dir := filepath.Join(b.tmp, fmt.Sprintf("agent%d", b.agents))
	argv := append([]string{b.agentBin, "run", "--server", b.serverURL, "--admin", admin,
		"--snapshot-dir", filepath.Join(dir, "spool"), "--cache-dir", filepath.Join(dir, "cache"),
		"--crash-trigger=false"}, extra...)
	a, err := startChild(ctx, "agent", argv, b.opt.agentEnv, readyMessage)
	return a, admin, err
}

// cpuRounds runs an agent with off-CPU tracing and one without side by
// side, through the same windows: after a warm-up that fills the ring (its
// size drives the agent's GC work), -rounds rounds of one window per rate,
// the rate order alternating by round.
func (b *bench) cpuRounds(ctx context.Context) (out []cpuWindow, err error) {
	rate := b.opt.rates[0]
	ping, err := b.startPingpong(ctx, rate)
	if err != nil {
		return nil, err
	}
	defer func() { ping.stop(5 * time.Second) }()
	var agents []*runningAgent
	defer func() {
		for _, a := range agents {
			b.stopAgent(a.child)
		}
	}()
	for _, on := range []bool{true, false} {
		c, admin, err := b.startAgent(ctx, "--off-cpu="+strconv.FormatBool(on))
		if err != nil {
			return nil, err
		}
		agents = append(agents, &runningAgent{c, admin, on})
		logf("agent --off-cpu=%v: pid %d", on, c.pid())
	}
	logf("warm-up %v (the ring fills in 60 s)", b.opt.warmup)
	if err := sleepWatching(ctx, b.opt.warmup, append([]*child{ping}, children(agents)...)...); err != nil {
		return nil, err
	}
	for round := 1; round <= b.opt.rounds; round++ {
		rates := slices.Clone(b.opt.rates)
		if round%2 == 0 {
			slices.Reverse(rates)
		}
		for _, r := range rates {
			if r != rate {
				ping.stop(5 * time.Second)
				if ping, err = b.startPingpong(ctx, r); err != nil {
					return nil, err
				}
				rate = r
				if err := sleepWatching(ctx, b.opt.settle, ping); err != nil {
					return nil, err
				}
			}
			ws, err := b.window(ctx, agents, ping, round, r)
			if err != nil {
				return nil, fmt.Errorf("round %d, rate %d: %w", round, r, err)
			}
			logWindows(ws)
			out = append(out, ws...)
		}
	}
	return out, nil
}

func logWindows(ws []cpuWindow) {
	for _, w := range ws {
		logf("round %d, rate %6d, off-CPU %-5v: agent %.3f%% of a core, %.1f GC/s, ring %.1f MiB; node %.0f sw/s, pingpong %.0f sw/s; off-CPU intervals %.0f/s sent, %.0f/s short; BPF %.3f%% of a core",
			w.Round, w.Rate, w.OffCPU, w.CPUPercent(), w.perSec(w.GCs), w.RingBytes/mib, w.perSec(float64(w.NodeSw)), w.perSec(float64(w.PingSw)),
			w.perSec(w.Intervals), w.perSec(w.Short), w.BPFPercent())
	}
}

// stopAgent stops an agent, logging what went wrong with it.
func (b *bench) stopAgent(a *child) {
	if !a.stop(10 * time.Second) {
		logf("agent %d did not exit within 10 s of SIGTERM (killed)", a.pid())
	}
	for _, line := range strings.Split(a.output(), "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			logf("agent %d log: %s", a.pid(), line)
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
