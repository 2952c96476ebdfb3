package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/sys/unix"
)

// Agent metric names (agent/metrics.go).
const (
	metricSamples = "flightrec_agent_bpf_samples_total"
	metricLost    = "flightrec_agent_bpf_samples_lost_total"
	metricDrained = "flightrec_agent_samples_drained_total"
	metricShipped = "flightrec_agent_shipped_profiles_total"
)

// churnNice is churn's nice value: it must win the CPU from the burners to
// start its processes on schedule.
const churnNice = -10

// unshippedRE matches the agent's exit log line.
var unshippedRE = regexp.MustCompile(`msg="agent stopped".*unshipped_profiles=([0-9]+)`)

// readyMessage is what the agent logs once the sampler is attached.
const readyMessage = `msg="agent running"`

// agentStopGrace is how long the agent may take to exit after SIGTERM.
const agentStopGrace = 10 * time.Second

// result is one run of one configuration.
type result struct {
	Config config
	Run    int

	Wall        time.Duration // exec to the end of the measurement
	CPU         time.Duration // user+sys over Wall, start-up included
	CPUTicks    time.Duration // the same from /proc/PID/stat (10 ms resolution)
	StartupCPU  time.Duration // user+sys when "agent running" was logged
	StartupWall time.Duration // exec to "agent running"
	PeakRSS     uint64        // VmHWM, bytes

	SteadyCPU    time.Duration // user+sys over SteadyWindow
	SteadyWindow time.Duration // from interval+5s after ready to the end
	RSSAnon      uint64        // RssAnon at the end, bytes
	RSSFile      uint64        // RssFile at the end: mapped files (symbolized objects, own text)
	RSSShmem     uint64        // RssShmem at the end (includes the ring buffer's mapping)
	LoadAvg      float64       // 1-minute load average at the end
	OtherAgents  []int         // other flightrec-agent processes seen at the end

	Window        time.Duration // ready to end
	Samples       float64       // bpf_samples_total over Window
	Lost          float64       // bpf_samples_lost_total at the end
	Drained       float64       // samples_drained_total at the end
	ShippedMetric float64       // shipped_profiles_total at the end

	BPF      bpfUsage // at the end
	BPFRunNs uint64   // run_time_ns over Window
	BPFRuns  uint64   // run_cnt over Window

	Sink          sinkStats // received before SIGTERM
	SinkAfterExit sinkStats // including the final partial interval

	ExitCode  int
	ExitClean bool // exited within agentStopGrace
	ExitTook  time.Duration
	Unshipped int     // unshipped_profiles the agent logged at exit
	Warnings  int     // WARN/ERROR log lines
	Churn     string  // churn's exit summary
	ChurnRate float64 // processes churn started per second
	// Problems are sanity failures: the numbers may not mean what they
	// say, and the bench exits 1. Notes are worth knowing but do not
	// invalidate the measurement.
	Problems []string
	Notes    []string
}

// CPUPercent is agent CPU as % of one core over its whole life so far.
func (r *result) CPUPercent() float64 { return 100 * r.CPU.Seconds() / r.Wall.Seconds() }

// SamplesPerSec is the BPF program's sample rate from ready to the end.
func (r *result) SamplesPerSec() float64 { return r.Samples / r.Window.Seconds() }

// BPFNsPerRun is the mean cost of one run of the BPF program(s).
func (r *result) BPFNsPerRun() float64 {
	if r.BPFRuns == 0 {
		return 0
	}
	return float64(r.BPFRunNs) / float64(r.BPFRuns)
}

// BPFCorePercent is BPF program run time as % of one core.
func (r *result) BPFCorePercent() float64 {
	return 100 * float64(r.BPFRunNs) / float64(r.Window.Nanoseconds())
}

type bench struct {
	agent    string
	duration time.Duration
	interval time.Duration
	churn    string // churn binary
	sink     *sink
	extra    []string // more agent flags (-agent-args)
}

// agentArgv is the agent's command line for frequency hz.
func (b *bench) agentArgv(hz int, admin string) []string {
	return append([]string{b.agent, "run",
		"--server", b.sink.url,
		"--frequency", strconv.Itoa(hz),
		"--interval", b.interval.String(),
		"--admin", admin,
		"--log-level", "info",
		"--snapshot-dir", filepath.Join(os.TempDir(), "bench-agent-snapshots"),
	}, b.extra...)
}

// runOnce starts the agent, lets it run for the bench duration and
// measures it. Every process it starts is stopped before it returns.
func (b *bench) runOnce(ctx context.Context, cfg config, run int) (*result, error) {
	r := &result{Config: cfg, Run: run}
	b.sink.reset()

	if cfg.Churn > 0 {
		churn, err := startChild(ctx, "churn", []string{b.churn, "-rate", strconv.Itoa(cfg.Churn)}, syscall.SIGKILL, "ready ", func(c *child, _ string) {
			// Ahead of the burners, so the rate holds on a busy node; its
			// children inherit the priority.
			if err := unix.Setpriority(unix.PRIO_PROCESS, c.pid(), churnNice); err != nil {
				logf("renice churn: %v", err)
			}
		})
		if err != nil {
			return nil, err
		}
		defer func() {
			life := time.Since(churn.started)
			churn.stop(5 * time.Second)
			r.Churn = lastLine(churn.Output())
			var spawned, reaped, late int
			if _, err := fmt.Sscanf(r.Churn, "spawned %d reaped %d late %d", &spawned, &reaped, &late); err != nil {
				r.Problems = append(r.Problems, fmt.Sprintf("churn summary %q: %v", r.Churn, err))
				return
			}
			r.ChurnRate = float64(spawned) / life.Seconds()
			if r.ChurnRate < 0.9*float64(cfg.Churn) {
				r.Problems = append(r.Problems, fmt.Sprintf("churn started only %.0f processes/s of %d (%s): the node is too busy for this configuration to mean what it says",
					r.ChurnRate, cfg.Churn, r.Churn))
			} else if late > 0 {
				r.Notes = append(r.Notes, fmt.Sprintf("churn fell behind its schedule at times (%s), %.0f processes/s overall", r.Churn, r.ChurnRate))
			}
		}()
	}

	admin, err := freeAddr()
	if err != nil {
		return nil, err
	}
	var readyCPU time.Duration
	var readyAt time.Time
	var readyErr error
	agent, err := startChild(ctx, "agent", b.agentArgv(cfg.Hz, admin), syscall.SIGTERM, readyMessage, func(c *child, _ string) {
		// Called by the stderr reader the moment the line arrives.
		readyCPU, readyErr = processCPU(c.pid())
		readyAt = time.Now()
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		if !agent.exited() {
			agent.stop(agentStopGrace)
		}
	}()
	if readyErr != nil {
		return nil, readyErr
	}
	pid := agent.pid()
	r.StartupCPU = readyCPU
	r.StartupWall = readyAt.Sub(agent.started)

	metricsURL := "http://" + admin + "/metrics"
	m0, err := scrape(ctx, metricsURL)
	if err != nil {
		return nil, fmt.Errorf("agent /metrics after start: %w\n%s", err, agent.Output())
	}
	u0, err := readBPFUsage(pid)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()

	// Steady state: from after the first report (which loads kernel
	// symbols and opens the objects of every process seen so far) to the
	// end. A diagnostic that shows how much of the total is one-time cost.
	steadyAt := b.interval + 5*time.Second
	var steadyCPU time.Duration
	var steadyStart time.Time
	if steadyAt+5*time.Second <= b.duration {
		if err := wait(ctx, agent, t0.Add(steadyAt)); err != nil {
			return nil, err
		}
		if steadyCPU, err = processCPU(pid); err != nil {
			return nil, err
		}
		steadyStart = time.Now()
	}
	if err := wait(ctx, agent, t0.Add(b.duration)); err != nil {
		return nil, err
	}

	// The end of the run, read while the agent is still running.
	u1, err := readBPFUsage(pid)
	if err != nil {
		return nil, err
	}
	m1, err := scrape(ctx, metricsURL)
	if err != nil {
		return nil, fmt.Errorf("agent /metrics at the end: %w", err)
	}
	if err := healthz(ctx, "http://"+admin+"/healthz"); err != nil {
		r.Problems = append(r.Problems, err.Error())
	}
	cpu, err := processCPU(pid)
	end := time.Now()
	if err != nil {
		return nil, err
	}
	r.CPU = cpu
	r.Wall = end.Sub(agent.started)
	r.Window = end.Sub(t0)
	if !steadyStart.IsZero() {
		r.SteadyCPU = cpu - steadyCPU
		r.SteadyWindow = end.Sub(steadyStart)
	}
	if r.CPUTicks, err = statCPU(pid); err != nil {
		return nil, err
	}
	if r.PeakRSS, err = statusKB(pid, "VmHWM"); err != nil {
		return nil, err
	}
	r.RSSAnon, _ = statusKB(pid, "RssAnon")
	r.RSSFile, _ = statusKB(pid, "RssFile")
	r.RSSShmem, _ = statusKB(pid, "RssShmem")
	r.LoadAvg = loadAvg()
	if r.LoadAvg > 3.5 {
		r.Notes = append(r.Notes, fmt.Sprintf("the machine was busy besides the bench: 1-min load average %.1f at the end of the run (the burners make 2)", r.LoadAvg))
	}
	r.OtherAgents = otherAgents(pid)
	if len(r.OtherAgents) > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("other flightrec agents were running on the node at the end of the run (pids %v): they add load and BPF programs", r.OtherAgents))
	}
	r.Sink = b.sink.snapshot()

	r.Samples = m1[metricSamples] - m0[metricSamples]
	r.Lost = m1[metricLost]
	r.Drained = m1[metricDrained]
	r.ShippedMetric = m1[metricShipped]
	r.BPF = u1
	r.BPFRunNs = u1.RunTimeNs - u0.RunTimeNs
	r.BPFRuns = u1.RunCnt - u0.RunCnt
	if u1.Progs == 0 {
		r.Problems = append(r.Problems, "no BPF program among the agent's file descriptors")
	} else if r.BPFRuns == 0 || r.BPFRunNs == 0 {
		r.Problems = append(r.Problems, "BPF run_cnt/run_time_ns did not move: is kernel.bpf_stats_enabled on?")
	}

	// Stop: SIGTERM, exit 0 within agentStopGrace.
	r.ExitClean, r.ExitTook = agent.stop(agentStopGrace)
	r.ExitCode = -1
	if st := agent.exitState(); st != nil {
		r.ExitCode = st.ExitCode()
	}
	if !r.ExitClean {
		r.Problems = append(r.Problems, fmt.Sprintf("agent did not exit within %v of SIGTERM (killed)", agentStopGrace))
	} else if r.ExitCode != 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("agent exited %d after SIGTERM", r.ExitCode))
	}
	r.SinkAfterExit = b.sink.snapshot()

	out := agent.Output()
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			r.Warnings++
			if r.Warnings <= 3 {
				r.Notes = append(r.Notes, "agent log: "+line)
			}
		}
	}
	if want := int(b.duration/b.interval) - 1; r.Sink.Profiles < want {
		r.Problems = append(r.Problems, fmt.Sprintf("sink received %d profiles before SIGTERM, want >= %d", r.Sink.Profiles, want))
	}
	// On SIGTERM the agent reports its last, partial interval and tries
	// for 5 s to send what is queued (docs/wire.md): then the profiles hold
	// every sample drained, and it logs unshipped_profiles=0.
	if m := unshippedRE.FindStringSubmatch(out); m != nil && m[1] != "0" {
		r.Unshipped, _ = strconv.Atoi(m[1])
		r.Notes = append(r.Notes, fmt.Sprintf("the agent exited with unshipped_profiles=%s although the sink was up (docs/wire.md: on SIGTERM it reports the last partial interval and tries for 5 s to send what is queued)", m[1]))
	}
	if r.Drained > 0 && float64(r.SinkAfterExit.Samples) < 0.97*r.Drained {
		r.Notes = append(r.Notes, fmt.Sprintf("the distinct profiles received hold %d samples, %.0f%% of the %.0f the agent drained before SIGTERM",
			r.SinkAfterExit.Samples, 100*float64(r.SinkAfterExit.Samples)/r.Drained, r.Drained))
	}
	if r.SinkAfterExit.Bad > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d profiles without Idempotency-Key or not decodable as pprof", r.SinkAfterExit.Bad))
	}
	return r, nil
}

// wait waits until deadline, failing if the agent exits first.
func wait(ctx context.Context, agent *child, deadline time.Time) error {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-agent.done:
		// Exit status 0 here means something signalled the agent.
		return fmt.Errorf("agent exited during the run, %v after exec: %v\n%s",
			time.Since(agent.started).Round(time.Millisecond), agent.exitState(), agent.Output())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SteadyPercent is agent CPU as % of one core after the first report, or
// -1 when the run was too short to tell.
func (r *result) SteadyPercent() float64 {
	if r.SteadyWindow <= 0 {
		return -1
	}
	return 100 * r.SteadyCPU.Seconds() / r.SteadyWindow.Seconds()
}

// scrape fetches Prometheus text metrics and returns each family's value,
// summed over its series (counters, gauges and untyped only).
func scrape(ctx context.Context, url string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", url, err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			switch {
			case m.Counter != nil:
				out[name] += m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[name] += m.GetGauge().GetValue()
			case m.Untyped != nil:
				out[name] += m.GetUntyped().GetValue()
			}
		}
	}
	return out, nil
}

func healthz(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("agent /healthz: %s", resp.Status)
	}
	return nil
}

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
