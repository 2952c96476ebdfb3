// Command bench-diff times a canary diff on the embedded store: one hour of
// 100 baseline and 100 canary instances over 20,000 functions, end to end.
//
//	make bench-diff
//	bin/bench-diff [-instances 100] [-functions 20000] [-profiles 6] [-stacks 3000] [-runs 5] [-target 1s]
//
// It opens a DuckDB store in a temporary directory, appends the fleet (per
// instance, -profiles profiles 10 minutes apart of -stacks distinct stacks
// each, drawn with skewed popularity from a universe of random call paths
// whose leaves cover every function), runs maintenance as the server would,
// then times GET /api/v1/diff through the real API handler on loopback:
// the store reads (MergeByTable per instance, both sides at once), the
// statistics of functions and call paths, and the JSON. The canary spends 2 points more in one function;
// the run fails if the diff does not find it first. It prints the median of
// -runs runs against -target: PASS or FAIL.
//
// Exit status: 0 when the median meets the target, 1 when it does not or
// the run failed, 2 on bad usage.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime/pprof"
	"slices"
	"syscall"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/api"
	"github.com/flightrec/flightrec/server/diff"
	"github.com/flightrec/flightrec/server/store"
	"github.com/flightrec/flightrec/server/store/duckdb"
)

type options struct {
	instances, functions, profiles, stacks, runs int
	target                                       time.Duration
	cpuProfile                                   string
}

func main() {
	var o options
	fs := flag.NewFlagSet("bench-diff", flag.ContinueOnError)
	fs.IntVar(&o.instances, "instances", 100, "instances a side")
	fs.IntVar(&o.functions, "functions", 20000, "distinct functions")
	fs.IntVar(&o.profiles, "profiles", 6, "profiles an instance, 10 minutes apart")
	fs.IntVar(&o.stacks, "stacks", 3000, "distinct stacks a profile")
	fs.IntVar(&o.runs, "runs", 5, "timed diffs")
	fs.DurationVar(&o.target, "target", time.Second, "the median must be at most this")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the timed diffs to `FILE`")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if o.instances < 3 || o.functions < 100 || o.profiles < 1 || o.stacks < 10 || o.runs < 1 || o.target <= 0 {
		fmt.Fprintln(os.Stderr, "bench-diff: want -instances ≥ 3, -functions ≥ 100, -profiles ≥ 1, -stacks ≥ 10, -runs ≥ 1, -target > 0")
		os.Exit(2)
	}
	pass, err := run(context.Background(), o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-diff:", err)
		os.Exit(1)
	}
	if !pass {
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) (bool, error) {
	dir, err := os.MkdirTemp("", "bench-diff-")
	if err != nil {
		return false, fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	st, err := duckdb.Open(dir, duckdb.Options{})
	if err != nil {
		return false, fmt.Errorf("open store: %w", err)
	}
	defer st.Close()

	hour := time.Now().Truncate(time.Hour).Add(-2 * time.Hour)
	f := newFleet(o.functions)
	fmt.Printf("fleet: %d baseline + %d canary instances × %d profiles × %d stacks, %d functions, %d stacks in the universe\n",
		o.instances, o.instances, o.profiles, o.stacks, o.functions, len(f.stacks))
	start := time.Now()
	values, err := f.load(ctx, st, hour, o)
	if err != nil {
		return false, err
	}
	if err := st.Maintain(ctx, time.Now()); err != nil {
		return false, fmt.Errorf("maintain: %w", err)
	}
	fmt.Printf("stored %d stack values in %.1fs\n", values, time.Since(start).Seconds())

	srv := httptest.NewServer(apiMux(st))
	defer srv.Close()
	u := srv.URL + api.DiffPath + "?" + url.Values{
		"base":   {`cpu{service="api",track="baseline"}`},
		"target": {`cpu{service="api",track="canary"}`},
		"from":   {hour.Format(time.RFC3339)}, "to": {hour.Add(time.Hour).Format(time.RFC3339)},
		"fail_on": {"self>1pp"},
	}.Encode()
	pass, err := timeDiffs(ctx, u, f.slowName(), o)
	if err != nil {
		return false, err
	}
	if err := timeStoreReads(ctx, st, hour, o.runs); err != nil {
		return false, err
	}
	return pass, nil
}

// timeStoreReads times what the diff asks of the store alone, both sides'
// reads at once as diff.Run does: MergeByTable, which the diff uses, and
// MergeBy, which it used before, interleaved so that the machine's noise
// falls on both alike. CPU is the process's user+sys over the reads.
func timeStoreReads(ctx context.Context, st *duckdb.Store, hour time.Time, runs int) error {
	reads := []struct {
		name string
		read func(store.Query) error
	}{
		{"MergeByTable", func(q store.Query) error {
			_, err := st.MergeByTable(ctx, q, []string{"pod", "pid", "node"})
			return err
		}},
		{"MergeBy", func(q store.Query) error {
			_, err := st.MergeBy(ctx, q, []string{"pod", "pid", "node"})
			return err
		}},
	}
	wall := make([][]time.Duration, len(reads))
	cpu := make([][]time.Duration, len(reads))
	for range runs {
		for i, r := range reads {
			start, startCPU := time.Now(), cpuTime()
			errs := make(chan error, 2)
			for _, track := range []string{"baseline", "canary"} {
				go func() {
					errs <- r.read(store.Query{Type: "cpu", Start: hour, End: hour.Add(time.Hour), Matchers: []*labels.Matcher{
						labels.MustNewMatcher(labels.MatchEqual, "service", "api"), labels.MustNewMatcher(labels.MatchEqual, "track", track)}})
				}()
			}
			if err := errors.Join(<-errs, <-errs); err != nil {
				return fmt.Errorf("%s by instance: %w", r.name, err)
			}
			wall[i] = append(wall[i], time.Since(start))
			cpu[i] = append(cpu[i], cpuTime()-startCPU)
		}
	}
	for i, r := range reads {
		fmt.Printf("store reads alone (%s of both sides, median of %d): %.3fs, CPU %.3fs\n",
			r.name, runs, median(wall[i]).Seconds(), median(cpu[i]).Seconds())
	}
	return nil
}

func median(d []time.Duration) time.Duration {
	d = slices.Clone(d)
	slices.Sort(d)
	return d[len(d)/2]
}

// cpuTime is the process's user+sys time: on a shared machine a fairer
// measure of work than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func apiMux(st *duckdb.Store) *http.ServeMux {
	mux := http.NewServeMux()
	api.New(st, api.Options{}).Register(mux)
	return mux
}

// timeDiffs runs the diff o.runs times, checks that it finds the injected
// regression, and prints the times and the verdict.
func timeDiffs(ctx context.Context, u, slow string, o options) (bool, error) {
	if o.cpuProfile != "" {
		stop, err := startProfile(o.cpuProfile)
		if err != nil {
			return false, err
		}
		defer stop()
	}
	var times, cpu []time.Duration
	var d api.DiffResponse
	for i := range o.runs {
		start, startCPU := time.Now(), cpuTime()
		if err := getJSON(ctx, u, &d); err != nil {
			return false, err
		}
		times, cpu = append(times, time.Since(start)), append(cpu, cpuTime()-startCPU)
		fmt.Printf("run %d: %.3fs, CPU %.3fs\n", i+1, times[i].Seconds(), cpu[i].Seconds())
	}
	i := slices.IndexFunc(d.Gate.Failing, func(c diff.Change) bool { return c.Function == slow && c.Metric == diff.Self })
	if i < 0 {
		return false, fmt.Errorf("the diff did not flag %s: %d changes, gate %+v", slow, len(d.Changes), d.Gate)
	}
	c := d.Gate.Failing[i]
	fmt.Printf("diff: %d+%d instances, %d tests (%d function rows, %d call paths), %d regressions beyond %s; injected: %s %s %+.2f points, q %.2g\n",
		d.Base.Instances, d.Target.Instances, d.Tested, len(d.Changes), len(d.Paths), len(d.Gate.Failing), d.Gate.FailOn, c.Function, c.Metric, 100*c.Delta, c.Q)
	med := median(times)
	verdict := "PASS"
	if med > o.target {
		verdict = "FAIL"
	}
	fmt.Printf("median of %d: %.3fs, CPU %.3fs (target ≤ %v): %s\n", o.runs, med.Seconds(), median(cpu).Seconds(), o.target, verdict)
	return verdict == "PASS", nil
}

func startProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("diff request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("diff: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("diff: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("diff: %s: %s", resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("diff: decode answer: %w", err)
	}
	return nil
}
