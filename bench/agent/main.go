// Command bench-agent measures what flightrec-agent costs the node it runs
// on, as the targets define it: with both cores busy in a CPU-bound
// workload it runs the agent node-wide for -duration at each configured
// frequency, -runs times, and prints the median and spread of agent CPU (%
// of one core, start-up included), peak RSS, start-up CPU, samples/s,
// samples lost, BPF program run time and BPF map memory as a markdown
// table, followed by a PASS/FAIL line per target.
//
// It needs root (BPF, kernel.bpf_stats_enabled) and the repository as the
// working directory (it builds the workloads in testdata/workloads):
//
//	make bench-agent
//	bin/bench-agent -agent bin/flightrec-agent [-configs 19,99,99churn] [-duration 60s] [-runs 3] [-out FILE]
//	bin/bench-agent -agent bin/flightrec-agent -quick   # 10 s, 1 run: smoke test
//
// Configurations are "<Hz>" or "<Hz>churn" (plus 100 new processes per
// second from testdata/workloads/churn), e.g. "19,99,99churn".
//
// Exit status: 0 when every run completed (targets may still FAIL; read the
// lines), 1 when a run failed or a sanity check did not hold (the agent did
// not exit 0 within 10 s of SIGTERM, the sink got too few profiles, ...),
// 2 on bad usage.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/flightrec/flightrec/internal/testworkload"
)

// config is one measured configuration.
type config struct {
	Name  string // as given to -configs
	Hz    int
	Churn int // new processes per second, 0 for none
}

// Label is the configuration as the table shows it.
func (c config) Label() string {
	if c.Churn > 0 {
		return fmt.Sprintf("%d Hz + %d proc/s", c.Hz, c.Churn)
	}
	return fmt.Sprintf("%d Hz", c.Hz)
}

var configRE = regexp.MustCompile(`^([0-9]+)(churn)?$`)

// churnRate is the process start rate of the "churn" configurations.
const churnRate = 100

func parseConfigs(s string) ([]config, error) {
	var out []config
	seen := map[string]bool{}
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		m := configRE.FindStringSubmatch(name)
		if m == nil {
			return nil, fmt.Errorf("bad configuration %q: want <Hz> or <Hz>churn, e.g. 19,99,99churn", name)
		}
		hz, err := strconv.Atoi(m[1])
		if err != nil || hz < 1 || hz > 1000 {
			return nil, fmt.Errorf("bad configuration %q: frequency must be 1-1000 Hz", name)
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		c := config{Name: name, Hz: hz}
		if m[2] != "" {
			c.Churn = churnRate
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no configuration in -configs")
	}
	return out, nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench-agent: "+format+"\n", args...)
}

func main() {
	os.Exit(mainCode())
}

// errUsage marks errors that are the invocation's.
type errUsage struct{ error }

func mainCode() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	err := run(ctx, os.Args[1:])
	var uerr errUsage
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &uerr):
		logf("%v", err)
		return 2
	case ctx.Err() != nil:
		logf("interrupted; everything the bench started is stopped")
		return 1
	default:
		logf("%v", err)
		return 1
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench-agent", flag.ContinueOnError)
	agentPath := fs.String("agent", "", "flightrec-agent binary to measure (required)")
	duration := fs.Duration("duration", 60*time.Second, "how long each run lasts once the agent is running")
	runs := fs.Int("runs", 3, "runs per configuration")
	configs := fs.String("configs", "19,99,99churn", `configurations: "<Hz>" or "<Hz>churn" (plus `+strconv.Itoa(churnRate)+` new processes/s), comma-separated`)
	out := fs.String("out", "", "also write the markdown report to this file")
	quick := fs.Bool("quick", false, "smoke test: -duration 10s -runs 1 unless given")
	interval := fs.Duration("interval", 10*time.Second, "the agent's reporting interval")
	agentArgs := fs.String("agent-args", "", "more flags for the agent, space-separated, e.g. --off-cpu=false")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage{err}
	}
	if fs.NArg() > 0 {
		return errUsage{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	if *quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["duration"] {
			*duration = 10 * time.Second
		}
		if !set["runs"] {
			*runs = 1
		}
	}
	if *agentPath == "" {
		return errUsage{errors.New("-agent is required, e.g. -agent bin/flightrec-agent")}
	}
	if fi, err := os.Stat(*agentPath); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return errUsage{fmt.Errorf("-agent %s is not an executable file", *agentPath)}
	}
	if *runs < 1 || *duration < time.Second || *interval < time.Second {
		return errUsage{errors.New("-runs must be ≥ 1, -duration and -interval ≥ 1s")}
	}
	cfgs, err := parseConfigs(*configs)
	if err != nil {
		return errUsage{err}
	}
	if os.Geteuid() != 0 {
		return errors.New("must run as root (BPF, kernel.bpf_stats_enabled); try sudo")
	}

	rp := &report{
		CommandLine: shellQuote(os.Args),
		Date:        time.Now(),
		Kernel:      kernelRelease(),
		CPU:         cpuModel(),
		CPUs:        runtime.NumCPU(),
		AgentBuild:  agentBuild(*agentPath),
		Duration:    *duration,
		Interval:    *interval,
		Runs:        *runs,
		Configs:     cfgs,
		Results:     map[string][]*result{},
	}
	if rp.CPUs != 2 {
		logf("warning: %d CPUs; the bench runs 2 burners, so the node is not fully busy unless it has 2", rp.CPUs)
	}

	// Workloads (built once, cached under $TMPDIR like the tests' builds).
	csplit, err := testworkload.BuildBinary("csplit")
	if err != nil {
		return err
	}
	b := &bench{agent: *agentPath, duration: *duration, interval: *interval, extra: strings.Fields(*agentArgs)}
	for _, c := range cfgs {
		if c.Churn > 0 {
			if b.churn, err = testworkload.BuildBinary("churn"); err != nil {
				return err
			}
			break
		}
	}

	restore, err := enableBPFStats()
	if err != nil {
		return err
	}
	defer func() {
		if err := restore(); err != nil {
			logf("restoring kernel.bpf_stats_enabled: %v", err)
		}
	}()

	if b.sink, err = startSink(); err != nil {
		return err
	}
	defer b.sink.close()

	// Two CPU burners, one per core, for the whole bench.
	var burners []*child
	defer func() {
		for _, c := range burners {
			c.stop(5 * time.Second)
		}
	}()
	for i := range 2 {
		var readyLine string
		c, err := startChild(ctx, fmt.Sprintf("csplit#%d", i+1), []string{csplit}, syscall.SIGKILL, "ready ", func(_ *child, line string) { readyLine = line })
		if err != nil {
			return err
		}
		burners = append(burners, c)
		if err := burnerReady(c, readyLine); err != nil {
			return err
		}
	}
	time.Sleep(time.Second) // let the burners settle on their cores

	total := *runs * len(cfgs)
	eta := time.Duration(total) * (*duration + 5*time.Second)
	logf("%d configuration(s) × %d run(s) of %v: about %v", len(cfgs), *runs, *duration, eta.Round(time.Minute))
	n := 0
	// Interleave the configurations so slow drifts in machine load spread
	// over all of them instead of biasing one.
	for run := 1; run <= *runs; run++ {
		for _, c := range cfgs {
			n++
			for _, bn := range burners {
				if bn.exited() {
					return fmt.Errorf("%s exited: %v\n%s", bn.name, bn.exitState(), bn.Output())
				}
			}
			logf("[%d/%d] %s, run %d of %d ...", n, total, c.Label(), run, *runs)
			r, err := b.runOnce(ctx, c, run)
			if err != nil {
				return fmt.Errorf("%s run %d: %w", c.Label(), run, err)
			}
			rp.Results[c.Name] = append(rp.Results[c.Name], r)
			logf("[%d/%d] %s, run %d: %s", n, total, c.Label(), run, runLine(r))
			for _, p := range r.Problems {
				logf("[%d/%d]   problem: %s", n, total, p)
			}
			for _, note := range r.Notes {
				logf("[%d/%d]   note: %s", n, total, note)
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}

	var buf bytes.Buffer
	rp.write(&buf)
	os.Stdout.Write(buf.Bytes())
	if *out != "" {
		if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	if cs := rp.checks(); len(cs) > 0 {
		return fmt.Errorf("%d sanity problem(s), see Problems above", len(cs))
	}
	return nil
}

// agentBuild describes the agent binary: its VCS revision if it has one,
// else its hash and modification time, so a result can be tied to a build.
func agentBuild(path string) string {
	id := "binary"
	if f, err := os.Open(path); err == nil {
		h := sha256.New()
		if _, err := io.Copy(h, f); err == nil {
			id = "sha256 " + hex.EncodeToString(h.Sum(nil))[:12]
		}
		if fi, err := f.Stat(); err == nil {
			id += ", built " + fi.ModTime().UTC().Format("2006-01-02 15:04 UTC")
		}
		f.Close()
	}
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return "(" + id + ")"
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return "(" + id + ", " + bi.GoVersion + ", no VCS revision)"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified == "true" {
		rev += "+dirty"
	}
	return rev + " (" + bi.GoVersion + ")"
}

// shellQuote renders argv as a shell command line.
func shellQuote(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
		}) < 0 {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}
