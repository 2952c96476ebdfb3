package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

const mib = 1 << 20

// Targets from the issue.
const (
	targetRSS     = 48 * mib
	targetMaps    = 16 * mib
	targetStartup = 500 * time.Millisecond
)

// cpuTargets is the agent CPU budget, % of one core, by configuration.
var cpuTargets = map[string]float64{"19": 0.2, "99": 0.5, "99churn": 1.0}

// spread is the median and range of one metric over the runs.
type spread struct{ Med, Min, Max float64 }

func summarize(xs []float64) spread {
	if len(xs) == 0 {
		return spread{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return spread{med, s[0], s[len(s)-1]}
}

func (s spread) format(prec int, runs int) string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', prec, 64) }
	if runs <= 1 {
		return f(s.Med)
	}
	return fmt.Sprintf("%s [%s–%s]", f(s.Med), f(s.Min), f(s.Max))
}

// over summarizes metric over the results.
func over(rs []*result, metric func(*result) float64) spread {
	xs := make([]float64, len(rs))
	for i, r := range rs {
		xs[i] = metric(r)
	}
	return summarize(xs)
}

type report struct {
	CommandLine string
	Date        time.Time
	Kernel      string
	CPU         string
	CPUs        int
	AgentBuild  string
	Duration    time.Duration
	Interval    time.Duration
	Runs        int
	Configs     []config
	Results     map[string][]*result // by config name, in run order
}

// header is what goes above the table: enough to reproduce the numbers.
func (rp *report) header(w io.Writer) {
	fmt.Fprintf(w, "Command: `%s` (what `make bench-agent` runs)\n\n", rp.CommandLine)
	fmt.Fprintf(w, "- date %s, kernel %s, %d × %s\n", rp.Date.UTC().Format("2006-01-02 15:04 UTC"), rp.Kernel, rp.CPUs, rp.CPU)
	fmt.Fprintf(w, "- agent %s: `flightrec-agent run --frequency F --interval %v --admin 127.0.0.1:PORT`, node-wide, shipping to an in-process sink on 127.0.0.1\n", rp.AgentBuild, rp.Interval)
	fmt.Fprintf(w, "- load: 2 × `csplit` (one CPU-bound process per core) throughout; \"+ N proc/s\" adds `churn -rate N` (fork + exec of /bin/true) at nice %d, so that it keeps its rate against the burners\n", churnNice)
	fmt.Fprintf(w, "- each run: %v after the agent logs \"agent running\", %d run(s) per configuration, configurations interleaved; values are median [min–max] over the runs\n", rp.Duration, rp.Runs)
	fmt.Fprintf(w, "- agent CPU: user+sys of all its threads over its whole life (start-up included) / wall time since exec; start-up CPU: user+sys when it logged \"agent running\"; peak RSS: VmHWM\n")
	fmt.Fprintf(w, "- samples/s: rise of flightrec_agent_bpf_samples_total (BPF program output); lost: flightrec_agent_bpf_samples_lost_total\n")
	fmt.Fprintf(w, "- BPF run time: run_time_ns/run_cnt of the agent's BPF programs (kernel.bpf_stats_enabled=1; charged to the sampled tasks, not to the agent's CPU); BPF maps: memlock of the agent's maps (kernel memory, not in RSS)\n\n")
}

func (rp *report) table(w io.Writer) {
	fmt.Fprintln(w, "| config | agent CPU % of one core | peak RSS MiB | start-up CPU s | samples/s | lost | BPF run time (ns/sample; % of a core) | BPF map MiB |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, c := range rp.Configs {
		rs := rp.Results[c.Name]
		if len(rs) == 0 {
			continue
		}
		n := len(rs)
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s ns; %s %% | %s |\n",
			c.Label(),
			over(rs, (*result).CPUPercent).format(3, n),
			over(rs, func(r *result) float64 { return float64(r.PeakRSS) / mib }).format(1, n),
			over(rs, func(r *result) float64 { return r.StartupCPU.Seconds() }).format(3, n),
			over(rs, (*result).SamplesPerSec).format(1, n),
			over(rs, func(r *result) float64 { return r.Lost }).format(0, n),
			over(rs, (*result).BPFNsPerRun).format(0, n),
			over(rs, (*result).BPFCorePercent).format(4, n),
			over(rs, func(r *result) float64 { return float64(r.BPF.MapBytes) / mib }).format(2, n),
		)
	}
	fmt.Fprintln(w)
}

// verdict is one PASS/FAIL line.
type verdict struct {
	Pass bool
	Text string
}

// targets judges the targets: CPU budgets on the median over the
// runs (the machine is shared, single runs are noisy), memory and losses on
// the worst run.
func (rp *report) targets() []verdict {
	var vs []verdict
	add := func(pass bool, format string, args ...any) {
		vs = append(vs, verdict{pass, fmt.Sprintf(format, args...)})
	}
	var all []*result
	for _, c := range rp.Configs {
		rs := rp.Results[c.Name]
		if len(rs) == 0 {
			continue
		}
		all = append(all, rs...)
		if t, ok := cpuTargets[c.Name]; ok {
			s := over(rs, (*result).CPUPercent)
			add(s.Med <= t, "agent CPU at %s ≤ %.1f%% of one core: median %.3f%% (max %.3f%%)", c.Label(), t, s.Med, s.Max)
		}
	}
	if len(all) == 0 {
		return vs
	}
	rss := over(all, func(r *result) float64 { return float64(r.PeakRSS) })
	add(rss.Max <= targetRSS, "peak RSS ≤ %d MiB: worst run %.1f MiB", targetRSS/mib, rss.Max/mib)
	maps := over(all, func(r *result) float64 { return float64(r.BPF.MapBytes) })
	add(maps.Max <= targetMaps, "BPF maps ≤ %d MiB: worst run %.2f MiB", targetMaps/mib, maps.Max/mib)
	st := over(all, func(r *result) float64 { return r.StartupCPU.Seconds() })
	add(st.Med <= targetStartup.Seconds(), "start-up ≤ %.1f s CPU: median %.3f s (max %.3f s)", targetStartup.Seconds(), st.Med, st.Max)
	var at99 []*result
	for _, r := range all {
		if r.Config.Hz == 99 {
			at99 = append(at99, r)
		}
	}
	if len(at99) > 0 {
		lost := over(at99, func(r *result) float64 { return r.Lost })
		add(lost.Max == 0, "zero samples lost at 99 Hz: worst run %.0f lost", lost.Max)
	}
	return vs
}

// checks are the bench's own sanity conditions; a failure means the numbers
// above may not mean what they say.
func (rp *report) checks() []verdict {
	var vs []verdict
	for _, c := range rp.Configs {
		for _, r := range rp.Results[c.Name] {
			for _, p := range r.Problems {
				vs = append(vs, verdict{false, fmt.Sprintf("%s run %d: %s", c.Label(), r.Run, p)})
			}
		}
	}
	return vs
}

func (rp *report) verdicts(w io.Writer) {
	for _, v := range rp.targets() {
		word := "PASS"
		if !v.Pass {
			word = "FAIL"
		}
		fmt.Fprintf(w, "- %s %s\n", word, v.Text)
	}
	fmt.Fprintln(w)
}

// diagnostics is a second table that helps read the first: how much of the
// CPU is one-time cost, what the RSS is made of, what the sink got, and how
// busy the shared machine was.
func (rp *report) diagnostics(w io.Writer) {
	fmt.Fprintf(w, "Diagnostics (median [min–max]): CPU after the first report = user+sys from %v after \"agent running\" to the end; "+
		"RSS at the end split into anon (Go heap, stacks), file (mapped executables: the agent's own text and the objects it symbolizes) and shmem (the BPF ring buffer's mapping); "+
		"profiles received and samples shipped count distinct profiles (by Idempotency-Key; retried duplicates are not counted twice), samples drained are counted before SIGTERM, so the ratio is a little above 1 when everything arrived; load = 1-min load average at the end (the burners make 2).\n\n",
		rp.Interval+5*time.Second)
	fmt.Fprintln(w, "| config | CPU % after the first report | RSS at end: anon / file / shmem MiB | profiles received (KiB) | samples shipped / drained | start-up wall s | load | exit code, s to exit, unshipped |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, c := range rp.Configs {
		rs := rp.Results[c.Name]
		if len(rs) == 0 {
			continue
		}
		n := len(rs)
		steady := "–"
		var st []*result
		for _, r := range rs {
			if r.SteadyPercent() >= 0 {
				st = append(st, r)
			}
		}
		if len(st) > 0 {
			steady = over(st, (*result).SteadyPercent).format(3, len(st))
		}
		exits := make([]string, 0, n)
		for _, r := range rs {
			exits = append(exits, fmt.Sprintf("%d, %.1f, %d", r.ExitCode, r.ExitTook.Seconds(), r.Unshipped))
		}
		fmt.Fprintf(w, "| %s | %s | %s / %s / %s | %s (%s) | %s | %s | %s | %s |\n",
			c.Label(), steady,
			over(rs, func(r *result) float64 { return float64(r.RSSAnon) / mib }).format(1, n),
			over(rs, func(r *result) float64 { return float64(r.RSSFile) / mib }).format(1, n),
			over(rs, func(r *result) float64 { return float64(r.RSSShmem) / mib }).format(1, n),
			over(rs, func(r *result) float64 { return float64(r.SinkAfterExit.Profiles) }).format(0, n),
			over(rs, func(r *result) float64 { return float64(r.SinkAfterExit.Bytes) / 1024 }).format(0, n),
			over(rs, func(r *result) float64 {
				if r.Drained == 0 {
					return 0
				}
				return float64(r.SinkAfterExit.Samples) / r.Drained
			}).format(2, n),
			over(rs, func(r *result) float64 { return r.StartupWall.Seconds() }).format(2, n),
			over(rs, func(r *result) float64 { return r.LoadAvg }).format(1, n),
			strings.Join(exits, "; "),
		)
	}
	fmt.Fprintln(w)
	var churn []string
	for _, c := range rp.Configs {
		if c.Churn == 0 {
			continue
		}
		for _, r := range rp.Results[c.Name] {
			churn = append(churn, fmt.Sprintf("%s run %d: %s (%.0f/s)", c.Label(), r.Run, r.Churn, r.ChurnRate))
		}
	}
	if len(churn) > 0 {
		fmt.Fprintf(w, "Churn (processes spawned, reaped, ticks late; rate achieved): %s\n\n", strings.Join(churn, "; "))
	}
	if cs := rp.checks(); len(cs) > 0 {
		fmt.Fprintln(w, "Problems (the bench's sanity checks failed):")
		fmt.Fprintln(w)
		for _, v := range cs {
			fmt.Fprintf(w, "- %s\n", v.Text)
		}
		fmt.Fprintln(w)
	}
	if ns := rp.notes(); len(ns) > 0 {
		fmt.Fprintln(w, "Notes:")
		fmt.Fprintln(w)
		for _, n := range ns {
			fmt.Fprintf(w, "- %s\n", n)
		}
		fmt.Fprintln(w)
	}
}

// notes lists each distinct note once, with the runs it came from.
func (rp *report) notes() []string {
	var order []string
	runs := map[string][]string{}
	for _, c := range rp.Configs {
		for _, r := range rp.Results[c.Name] {
			for _, n := range r.Notes {
				// Numbers differ from run to run; group by the text before them.
				key := n
				if i := strings.IndexAny(n, "0123456789"); i > 0 {
					key = n[:i]
				}
				if _, ok := runs[key]; !ok {
					order = append(order, key)
				}
				runs[key] = append(runs[key], fmt.Sprintf("%s run %d: %s", c.Label(), r.Run, n))
			}
		}
	}
	var out []string
	for _, k := range order {
		rs := runs[k]
		if len(rs) > 1 {
			out = append(out, fmt.Sprintf("%s (and %d more run(s) like it)", rs[0], len(rs)-1))
		} else {
			out = append(out, rs[0])
		}
	}
	return out
}

func (rp *report) write(w io.Writer) {
	rp.header(w)
	rp.table(w)
	rp.verdicts(w)
	rp.diagnostics(w)
}

// runLine is the progress line printed after each run.
func runLine(r *result) string {
	return fmt.Sprintf("cpu %.3f%% (%.3f s / %.1f s; stat %.2f s; after the first report %s), start-up %.3f s CPU %.2f s wall, rss %.1f MiB (at end anon %.1f file %.1f shmem %.1f), %.1f samples/s, lost %.0f, drained %.0f, "+
		"bpf %d prog %.0f ns/run %.4f%%, %d maps %.2f MiB, sink %d profiles (+%d duplicates) %.0f KiB %d samples, exit %d in %.1fs (unshipped %d), load %.1f",
		r.CPUPercent(), r.CPU.Seconds(), r.Wall.Seconds(), r.CPUTicks.Seconds(), steadyText(r),
		r.StartupCPU.Seconds(), r.StartupWall.Seconds(), float64(r.PeakRSS)/mib,
		float64(r.RSSAnon)/mib, float64(r.RSSFile)/mib, float64(r.RSSShmem)/mib,
		r.SamplesPerSec(), r.Lost, r.Drained,
		r.BPF.Progs, r.BPFNsPerRun(), r.BPFCorePercent(), r.BPF.Maps, float64(r.BPF.MapBytes)/mib,
		r.SinkAfterExit.Profiles, r.SinkAfterExit.Duplicates, float64(r.SinkAfterExit.Bytes)/1024, r.SinkAfterExit.Samples,
		r.ExitCode, r.ExitTook.Seconds(), r.Unshipped, r.LoadAvg)
}

func steadyText(r *result) string {
	if r.SteadyPercent() < 0 {
		return "n/a, run too short"
	}
	return fmt.Sprintf("%.3f%%", r.SteadyPercent())
}
