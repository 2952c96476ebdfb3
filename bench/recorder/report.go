package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const mib = 1 << 20

// Targets.
const (
	targetCPU     = 2.0 // % of one core, off-CPU tracing on, at the highest rate
	targetLatency = 2 * time.Second
)

type report struct {
	b        *bench
	Command  string
	Date     time.Time
	Kernel   string
	CPUs     int
	Load     string
	CPU      []cpuWindow
	Recorder *recorderResult
}

func newReport(b *bench) *report {
	rp := &report{b: b, Command: commandLine(), Date: time.Now(), CPUs: runtime.NumCPU()}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		rp.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	if l, err := os.ReadFile("/proc/loadavg"); err == nil {
		rp.Load = strings.Join(strings.Fields(string(l))[:3], " ")
	}
	return rp
}

// commandLine is how the bench was invoked; under go run, as go run.
func commandLine() string {
	args := os.Args[1:]
	name := os.Args[0]
	if strings.Contains(name, "go-build") {
		name = "go run ./bench/recorder"
	}
	return strings.TrimSpace(name + " " + strings.Join(args, " "))
}

func (rp *report) write(w io.Writer) {
	rp.header(w)
	rp.cpuTable(w)
	rp.ringTable(w)
	rp.latencyTable(w)
	rp.verdicts(w)
}

func (rp *report) header(w io.Writer) {
	o := rp.b.opt
	fmt.Fprintf(w, "\nCommand: `%s` (what `make bench-recorder` runs)\n\n", rp.Command)
	fmt.Fprintf(w, "- %s, kernel %s, %d CPUs, load average at the start %s (the machine may be shared)\n", rp.Date.UTC().Format("2006-01-02 15:04 UTC"), rp.Kernel, rp.CPUs, rp.Load)
	fmt.Fprintf(w, "- server: `flightrec server --data TMP --listen 127.0.0.1:PORT --trigger-rate-limit 1000/1m`; the agents ship to it\n")
	fmt.Fprintf(w, "- agents: `flightrec-agent run --server URL --admin 127.0.0.1:PORT --snapshot-dir TMP --cache-dir TMP --crash-trigger=false ...`, everything else default (19 Hz, 10 s interval, ring 60 s within 64 MiB, --off-cpu-min 1ms); "+
		"crash triggers are off so that other processes crashing on a shared machine do not make the agents build snapshots%s\n", envNote(o.agentEnv))
	fmt.Fprintf(w, "- load: testdata/workloads/pingpong `-rate N` (two threads bouncing a byte through two pipes, paced every 1 ms: N switches/s of its own; the node sees more, idle-task switches and everything else on it included)\n\n")
	fmt.Fprintf(w, "## 1. Agent CPU with off-CPU tracing\n\n")
	fmt.Fprintf(w, "Two agents run side by side through the same windows, one `--off-cpu=true`, one `--off-cpu=false`, after a %v warm-up (the ring fills in 60 s; its size drives the agent's GC work). "+
		"Then %d round(s) of one %v window per rate (rate order alternating by round). Agent CPU: user+sys of all its threads over the window / the window. "+
		"Values: median [min–max] over the rounds; the off-CPU cost is on − off per window, then the median.\n\n", o.warmup, o.rounds, o.window)
}

func envNote(env []string) string {
	if len(env) == 0 {
		return ""
	}
	return "; agent environment: `" + strings.Join(env, " ") + "`"
}

func (rp *report) cpuTable(w io.Writer) {
	fmt.Fprintln(w, "| pingpong -rate | off-CPU | agent CPU % of one core | off-CPU cost (on − off) | agent GC/s | ring MiB | switches/s: node / pingpong | off-CPU intervals/s: recorded / short | lost | BPF programs % of a core (charged to the switching tasks) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, rate := range rp.b.opt.rates {
		for _, on := range []bool{true, false} {
			ws := rp.cells(rate, on)
			if len(ws) == 0 {
				continue
			}
			cost := "–"
			if on {
				cost = spreadOf(rp.costs(rate)).format(3)
			}
			fmt.Fprintf(w, "| %d | %v | %s | %s | %s | %s | %s / %s | %s / %s | %s | %s |\n", rate, on,
				over(ws, cpuWindow.CPUPercent).format(3), cost,
				over(ws, func(x cpuWindow) float64 { return x.perSec(x.GCs) }).format(1),
				over(ws, func(x cpuWindow) float64 { return x.RingBytes / mib }).format(1),
				over(ws, func(x cpuWindow) float64 { return x.perSec(float64(x.NodeSw)) }).format(0),
				over(ws, func(x cpuWindow) float64 { return x.perSec(float64(x.PingSw)) }).format(0),
				over(ws, func(x cpuWindow) float64 { return x.perSec(x.Intervals) }).format(0),
				over(ws, func(x cpuWindow) float64 { return x.perSec(x.Short) }).format(0),
				over(ws, func(x cpuWindow) float64 { return x.Lost }).format(0),
				over(ws, cpuWindow.BPFPercent).format(3))
		}
	}
	fmt.Fprintln(w)
	var snaps float64
	for _, x := range rp.CPU {
		snaps += x.Snapshots
	}
	if snaps > 0 {
		fmt.Fprintf(w, "Note: the agents built %.0f snapshots during the windows (nothing should trigger them): their CPU is in the figures.\n\n", snaps)
	}
}

// cells are the windows at rate with off-CPU tracing on or off.
func (rp *report) cells(rate int, on bool) []cpuWindow {
	var out []cpuWindow
	for _, x := range rp.CPU {
		if x.Rate == rate && x.OffCPU == on {
			out = append(out, x)
		}
	}
	return out
}

// costs are on − off agent CPU at rate, paired by window.
func (rp *report) costs(rate int) []float64 {
	var out []float64
	for _, on := range rp.cells(rate, true) {
		for _, off := range rp.cells(rate, false) {
			if off.Round == on.Round {
				out = append(out, on.CPUPercent()-off.CPUPercent())
			}
		}
	}
	return out
}

func (rp *report) ringTable(w io.Writer) {
	r := rp.Recorder
	fmt.Fprintf(w, "## 2. Ring memory at default settings\n\n")
	fmt.Fprintf(w, "The agent of part 3 (default ring: `--recorder-window 60s --recorder-bytes 64MiB`, 19 Hz, off-CPU on) with pingpong at %d switches/s, read at the agent's age below; "+
		"max = the largest of %d scrapes of %s, one a second.\n\n", r.Rate, r.Scrapes, metricRingBytes)
	fmt.Fprintln(w, "| agent age | ring MiB (max over the run) | byte bound MiB | records | evicted records | agent RSS MiB (peak) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	fmt.Fprintf(w, "| %.0f s | %.2f (%.2f) | %d | %.0f | %.0f | %.1f (%.1f) |\n\n", r.Age.Seconds(), r.RingBytes/mib, r.RingMax/mib,
		defaultRingBytes/mib, r.Records, r.Evicted, float64(r.RSS)/mib, float64(r.HWM)/mib)
}

func (rp *report) latencyTable(w io.Writer) {
	r, o := rp.Recorder, rp.b.opt
	fmt.Fprintf(w, "## 3. Trigger → stored snapshot\n\n")
	fmt.Fprintf(w, "Agent: `%s`. "+
		"%d triggers, one at a time: `POST /trigger?reason=bench-N&after=%v` on the agent's admin endpoint; stored = listed by the server's `GET /api/v1/snapshots` (polled every 10 ms), timed from just before the POST. "+
		"By design the latency includes the window's end (after = %v): the agent builds the snapshot at its first drain (once a second) after the window has ended (+50 ms commit slack), then spools and uploads it. "+
		"p99 is nearest-rank: under 100 triggers, the largest.\n\n",
		shellJoin(r.Argv), o.triggers, o.after, o.after)
	stored := durations(r.Lat, func(l trigLatency) time.Duration { return l.Stored })
	recv := durations(r.Lat, func(l trigLatency) time.Duration { return l.Received })
	fmt.Fprintln(w, "| stored / fired | p50 | p99 | max | p50 − after | p99 − after | fire → received by the server p50 / p99 |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	fmt.Fprintf(w, "| %d / %d | %s | %s | %s | %s | %s | %s / %s |\n\n", len(r.Lat), o.triggers,
		ms(pct(stored, 50)), ms(pct(stored, 99)), ms(pct(stored, 100)),
		ms(pct(stored, 50)-o.after), ms(pct(stored, 99)-o.after), ms(pct(recv, 50)), ms(pct(recv, 99)))
	for _, f := range r.Failed {
		fmt.Fprintf(w, "- failed: %s\n", f)
	}
}

func (rp *report) verdicts(w io.Writer) {
	fmt.Fprintf(w, "## Targets\n\n")
	top := slices.Max(rp.b.opt.rates)
	cpu := over(rp.cells(top, true), cpuWindow.CPUPercent)
	verdict(w, cpu.Med <= targetCPU, "agent CPU with off-CPU tracing at pingpong -rate %d ≤ %.0f%% of one core: median %.3f%% (max %.3f%%; off-CPU's share %.3f points)",
		top, targetCPU, cpu.Med, cpu.Max, spreadOf(rp.costs(top)).Med)
	r := rp.Recorder
	verdict(w, r.RingMax <= defaultRingBytes, "ring within its byte bound: max %.2f MiB of %d MiB (%.1f%%), %.0f records evicted by age or bytes",
		r.RingMax/mib, defaultRingBytes/mib, 100*r.RingMax/defaultRingBytes, r.Evicted)
	stored := durations(r.Lat, func(l trigLatency) time.Duration { return l.Stored })
	p99 := pct(stored, 99)
	verdict(w, len(r.Failed) == 0 && len(stored) > 0 && p99 <= targetLatency, "trigger → stored p99 ≤ %v: p99 %s (%s without the %v window end) over %d stored of %d fired",
		targetLatency, ms(p99), ms(p99-rp.b.opt.after), rp.b.opt.after, len(stored), rp.b.opt.triggers)
	if rp.b.opt.quick {
		fmt.Fprintln(w, "\n(-quick: a smoke test, too short for the targets)")
	}
}

func verdict(w io.Writer, pass bool, format string, args ...any) {
	word := "PASS"
	if !pass {
		word = "FAIL"
	}
	fmt.Fprintf(w, "- %s %s\n", word, fmt.Sprintf(format, args...))
}

// spread is the median and range of a metric over the rounds.
type spread struct{ Med, Min, Max float64 }

func spreadOf(xs []float64) spread {
	if len(xs) == 0 {
		return spread{math.NaN(), math.NaN(), math.NaN()}
	}
	s := slices.Sorted(slices.Values(xs))
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return spread{med, s[0], s[len(s)-1]}
}

func (s spread) format(prec int) string {
	if s.Min == s.Max {
		return fmt.Sprintf("%.*f", prec, s.Med)
	}
	return fmt.Sprintf("%.*f [%.*f–%.*f]", prec, s.Med, prec, s.Min, prec, s.Max)
}

func over(ws []cpuWindow, f func(cpuWindow) float64) spread {
	xs := make([]float64, len(ws))
	for i, x := range ws {
		xs[i] = f(x)
	}
	return spreadOf(xs)
}

func durations(ls []trigLatency, f func(trigLatency) time.Duration) []time.Duration {
	out := make([]time.Duration, len(ls))
	for i, l := range ls {
		out[i] = f(l)
	}
	slices.Sort(out)
	return out
}

// pct is the nearest-rank percentile p (0-100] of sorted ds.
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(ds)))) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

// shellJoin renders argv with the bench's temp paths and ports generic.
func shellJoin(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		switch {
		case i == 0:
			out[i] = "flightrec-agent"
		case strings.HasPrefix(a, os.TempDir()):
			out[i] = "TMP"
		case strings.HasPrefix(a, "http://127.0.0.1:"):
			out[i] = "http://127.0.0.1:PORT"
		case strings.HasPrefix(a, "127.0.0.1:"):
			out[i] = "127.0.0.1:PORT"
		default:
			out[i] = a
		}
	}
	return strings.Join(out, " ")
}
