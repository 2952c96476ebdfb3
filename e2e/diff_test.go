package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/flightrec/flightrec/internal/testenv"
	"github.com/flightrec/flightrec/internal/testworkload"
)

// TestDiffGate runs a canary gate as a pipeline would: pods of two tracks
// upload pprof files through `flightrec upload`, then `flightrec diff`
// exits 1 on the canary's slower function, 0 when the threshold is above
// the change, and writes profiles pprof can diff.
func TestDiffGate(t *testing.T) {
	srv := startServer(t, t.TempDir())
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(6, 6))
	for _, track := range []string{"baseline", "canary"} {
		for pod := range 5 {
			var files []string
			for k := range 3 {
				f := filepath.Join(dir, fmt.Sprintf("%s-%d-%d.pb.gz", track, pod, k))
				writeShopProfile(t, f, rng, track == "canary", time.Now().Add(-5*time.Minute+time.Duration(k)*10*time.Second))
				files = append(files, f)
			}
			labels := fmt.Sprintf(`{service="shop",track=%q,pod="shop-%s-%d"}`, track, track, pod)
			up := startCmd(t, serverBin, append([]string{"upload", "--server", srv.url, "--labels", labels}, files...)...)
			if up.wait(t, time.Minute) != 0 {
				t.Fatalf("upload: %s", up)
			}
		}
	}
	out := filepath.Join(dir, "diff.pb.gz")
	gate := func(failOn string, extra ...string) *agentProc {
		args := append([]string{"diff", "--server", srv.url, "--from", "-15m", "--fail-on", failOn,
			"--base", `cpu{service="shop",track="baseline"}`, "--target", `cpu{service="shop",track="canary"}`}, extra...)
		p := startCmd(t, serverBin, args...)
		p.wait(t, time.Minute)
		return p
	}
	p := gate("self>2pp", "--json", "-o", out)
	var d struct {
		Status  string
		Changes []struct {
			Function, Metric, Verdict string
			Delta                     float64
		}
		Paths []struct {
			Frames  []string
			Verdict string
			Delta   float64
		}
	}
	if p.code != 1 || json.Unmarshal([]byte(p.stdout.String()), &d) != nil || d.Status != "ok" || len(d.Changes) == 0 {
		t.Fatalf("self>2pp: want exit 1 and JSON: %s", p)
	}
	if c := d.Changes[0]; c.Function != "shop.compress" || c.Metric != "self" || c.Verdict != "regression" || c.Delta < 0.03 {
		t.Errorf("top change %+v, want shop.compress self regression of ~4 points", c)
	}
	if len(d.Paths) == 0 || strings.Join(d.Paths[0].Frames, ";") != "main.main;shop.handle;shop.compress" || d.Paths[0].Verdict != "regression" {
		t.Errorf("call paths %+v, want main.main;shop.handle;shop.compress first, a regression", d.Paths)
	}
	for _, f := range []string{out, strings.TrimSuffix(out, ".pb.gz") + ".base.pb.gz"} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("-o: %v", err)
		}
	}
	if p := gate("self>10pp"); p.code != 0 || !strings.Contains(p.stdout.String(), "gate self>10pp: pass") {
		t.Errorf("self>10pp: want exit 0: %s", p)
	}
}

// writeShopProfile writes a 10 s CPU profile of a shop pod: handle calls
// parse (50%) and compress (10%, 14% on the canary), with a few percent of
// jitter per stack.
func writeShopProfile(t *testing.T, path string, rng *rand.Rand, canary bool, at time.Time) {
	t.Helper()
	fn := func(id uint64, name string) *profile.Function {
		return &profile.Function{ID: id, Name: name, SystemName: name, Filename: "shop.go"}
	}
	main, handle, parse, compress := fn(1, "main.main"), fn(2, "shop.handle"), fn(3, "shop.parse"), fn(4, "shop.compress")
	loc := func(id uint64, f *profile.Function) *profile.Location {
		return &profile.Location{ID: id, Line: []profile.Line{{Function: f, Line: 1}}}
	}
	lm, lh, lp, lc := loc(1, main), loc(2, handle), loc(3, parse), loc(4, compress)
	share := []float64{0.5, 0.1, 0.4} // parse, compress, handle itself
	if canary {
		share = []float64{0.5 * 0.86 / 0.9, 0.14, 0.4 * 0.86 / 0.9}
	}
	const ms10 = int64(10 * time.Millisecond)
	sample := func(s float64, locs ...*profile.Location) *profile.Sample {
		n := int64(1000 * s * (1 + 0.03*rng.NormFloat64()))
		return &profile.Sample{Location: locs, Value: []int64{n * ms10}}
	}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"}, Period: ms10,
		TimeNanos: at.UnixNano(), DurationNanos: int64(10 * time.Second),
		Sample: []*profile.Sample{
			sample(share[0], lp, lh, lm), sample(share[1], lc, lh, lm), sample(share[2], lh, lm),
		},
		Location: []*profile.Location{lm, lh, lp, lc},
		Function: []*profile.Function{main, handle, parse, compress},
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := p.Write(f); err != nil {
		t.Fatal(err)
	}
}

// TestDiffGateOnKernel is the gate end to end on real processes: gosplit
// instances profiled by the agent, the canary run to spend twice the work
// per unit in main.cpuB (its share ~30% → ~46%). `flightrec diff` exits 1
// naming main.cpuB; identical builds under another version pass.
//
// main.cpuB's samples fall mostly on its inlined main.mix, which is their
// leaf (docs/diff.md: inlined functions count as frames), so the change
// shows in cpuB's total share; its self share stays small.
func TestDiffGateOnKernel(t *testing.T) {
	testenv.RequireBPF(t)
	start := time.Now()
	bin := testworkload.Build(t, "gosplit")
	srv := startServer(t, t.TempDir())
	const service = "diffe2e"
	// Three instances a side, the minimum diff tests (docs/diff.md).
	tracks := []struct {
		version string
		args    []string
	}{{"base", nil}, {"canary", []string{"-mode", "extra", "-extra", "100"}}, {"twin", nil}}
	for _, tr := range tracks {
		for range 3 {
			startLabelled(t, bin, service, tr.version, tr.args...)
		}
	}
	t.Logf("server and 9 gosplit processes up after %v", time.Since(start).Round(time.Millisecond))

	node := uniqueNode("e2e-diff")
	agentStart := time.Now()
	agent := startAgent(t, "run", "--server", srv.url, "--interval", "2s", "--frequency", "499",
		"--admin", "", "--cache-dir", "", "--snapshot-dir", t.TempDir(), "--crash-trigger=false", "--node", node)

	// Every instance must have shipped before the gate runs; then let the
	// profiles accumulate for ~35 s of agent intervals. At 499 Hz that is
	// thousands of samples an instance, the 9 processes sharing the
	// machine's CPUs: at 99 Hz and 20 s the instance-to-instance noise of 3
	// instances a side, over ~50 Benjamini–Hochberg tests, hid even a
	// 5-point change (q 0.94), and at 20 s one run in three missed a
	// 16-point one. The doubled cpuB work keeps the change well above that
	// noise.
	query := fmt.Sprintf(`{service=%q,node=%q}`, service, node)
	var pids string
	if !waitFor(30*time.Second, func() bool {
		p := startCmd(t, serverBin, "labels", "pid", "--server", srv.url, "--query", query, "--from", "-5m")
		p.wait(t, 30*time.Second)
		pids = p.stdout.String()
		return len(strings.Fields(pids)) >= 9 || agent.exited()
	}) || agent.exited() {
		t.Fatalf("want 9 pids of %s on the server, got %q: agent %s", query, pids, agent)
	}
	t.Logf("all 9 instances on the server %v after the agent started", time.Since(agentStart).Round(time.Millisecond))
	if d := 35*time.Second - time.Since(agentStart); d > 0 {
		time.Sleep(d)
	}

	sel := func(version string) string { return fmt.Sprintf(`cpu{service=%q,version=%q}`, service, version) }
	diff := func(target string, extra ...string) *agentProc {
		t.Helper()
		args := append([]string{"diff", "--server", srv.url, "--from", "-5m", "--base", sel("base"), "--target", sel(target)}, extra...)
		began := time.Now()
		p := startCmd(t, serverBin, args...)
		p.wait(t, time.Minute)
		t.Logf("flightrec diff --target %s %s: exit %d in %v", sel(target), strings.Join(extra, " "), p.code, time.Since(began).Round(time.Millisecond))
		return p
	}

	logInstanceShares(t, srv, service, "base", "canary", "twin")

	// Canary: exit 1, and main.cpuB's share is among the failing regressions.
	p := diff("canary", "--json")
	var d struct {
		Status, Message string
		Base, Target    struct{ Instances int }
		Paths           []struct {
			Frames  []string
			Verdict string
			Delta   float64
		}
		Gate struct {
			Failed  bool
			Failing []struct {
				Function, Metric, Verdict string
				BaseShare                 float64 `json:"base_share"`
				TargetShare               float64 `json:"target_share"`
				Delta, Q                  float64
			}
		}
	}
	if err := json.Unmarshal([]byte(p.stdout.String()), &d); err != nil {
		t.Fatalf("canary: %v: %s", err, p)
	}
	if p.code != 1 || d.Status != "ok" || !d.Gate.Failed {
		t.Errorf("canary: want exit 1, status ok, gate failed; got exit %d, status %q (%s), %d/%d instances: %s",
			p.code, d.Status, d.Message, d.Base.Instances, d.Target.Instances, p)
	}
	cpuB := testworkload.Split("gosplit")[1].Function
	named := false
	for _, c := range d.Gate.Failing {
		t.Logf("failing: %s %s %s: %.2f%% → %.2f%% (%+.2f points, q %.3g)", c.Function, c.Metric, c.Verdict, 100*c.BaseShare, 100*c.TargetShare, 100*c.Delta, c.Q)
		named = named || c.Function == cpuB && c.Delta > 0
	}
	if !named {
		t.Errorf("canary: no failing regression of %s in %+v", cpuB, d.Gate.Failing)
	}
	if !strings.Contains(p.stderr.String(), cpuB) {
		t.Errorf("canary: the exit message does not name %s: %s", cpuB, p.stderr.String())
	}
	// The call paths through cpuB carry the change too: one is flagged.
	pathNamed := false
	for _, c := range d.Paths {
		if slices.Contains(c.Frames, cpuB) && c.Verdict == "regression" && c.Delta > 0 {
			t.Logf("call path flagged: %s %+.2f points", strings.Join(c.Frames, ";"), 100*c.Delta)
			pathNamed = true
		}
	}
	if !pathNamed {
		t.Errorf("canary: no call path through %s flagged as a regression among %d", cpuB, len(d.Paths))
	}
	if p := diff("canary"); p.code != 1 {
		t.Errorf("canary table: want exit 1: %s", p)
	} else {
		t.Logf("table:\n%s%s", p.stdout.String(), p.stderr.String())
	}

	// A/A: identical builds. The 5-point threshold is what a CD pipeline
	// would configure: it keeps a rare false positive of a tiny change (at
	// q < 0.05 some A/A comparisons flag something) from failing the gate.
	if p := diff("twin", "--fail-on", "self>5pp"); p.code != 0 || !strings.Contains(p.stdout.String(), "gate self>5pp: pass") {
		t.Errorf("A/A: want exit 0 and a pass: %s", p)
	} else {
		t.Logf("A/A table:\n%s", p.stdout.String())
	}
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

// startLabelled starts a gosplit process labelled service and version
// through the OpenTelemetry environment the agent reads, and waits for its
// "ready" line as testworkload.Start does (which sets no environment).
func startLabelled(t *testing.T, bin, service, version string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "OTEL_SERVICE_NAME="+service, "OTEL_RESOURCE_ATTRIBUTES=service.version="+version)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ok := false
		for !ok && sc.Scan() {
			ok = strings.HasPrefix(sc.Text(), "ready ")
		}
		ready <- ok
		_, _ = io.Copy(io.Discard, out) // keep the pipe drained
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("%s %q exited before ready", bin, args)
		}
	case <-time.After(testworkload.ReadyTimeout):
		t.Fatalf("%s %q not ready after %v", bin, args, testworkload.ReadyTimeout)
	}
}

// logInstanceShares logs each instance's CPU time and gosplit split (total
// shares), the replicates the diff tests across.
func logInstanceShares(t *testing.T, srv *serverProc, service string, versions ...string) {
	t.Helper()
	split := testworkload.Split("gosplit")
	for _, v := range versions {
		q := fmt.Sprintf(`{service=%q,version=%q}`, service, v)
		p := startCmd(t, serverBin, "labels", "pid", "--server", srv.url, "--query", q, "--from", "-5m")
		p.wait(t, 30*time.Second)
		for _, pid := range strings.Fields(p.stdout.String()) {
			prof := fetchPprof(t, srv, fmt.Sprintf(`cpu{service=%q,version=%q,pid=%q}`, service, v, pid))
			line := fmt.Sprintf("%-6s pid %-7s %6.2f s CPU:", v, pid, float64(weight(prof.Sample))/1e9)
			for _, sh := range split {
				line += fmt.Sprintf(" %s %5.2f%%", sh.Function, percent(prof.Sample, hasFunction(sh.Function)))
			}
			t.Log(line)
		}
	}
}
