package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/klauspost/compress/zstd"

	"github.com/flightrec/flightrec/internal/testenv"
	"github.com/flightrec/flightrec/internal/testworkload"
)

// splitDuration at 499 Hz gives ~4000 samples of a single-threaded
// workload that has a CPU to itself: enough for ±3 points on a 60% share
// (README: ≥ 3000; recordEnough records again when there are fewer).
const (
	splitFreq     = 499
	splitDuration = 8 * time.Second
	minSplitN     = 3000
	shareTol      = 3.0
)

// recordSplit runs workload name and records its pid.
func recordSplit(t *testing.T, name string, args ...string) (bin string, prof *profile.Profile, ss []*profile.Sample) {
	t.Helper()
	bin = testworkload.Build(t, name)
	p := testworkload.Start(t, bin, args...)
	prof, ss = recordEnough(t, p.Pid, splitDuration, minSplitN)
	return bin, prof, ss
}

// recordEnough records pid for d until it has min samples, at most three
// times: the cores are shared with other work (builds on this VM), and a
// workload that got half a CPU must not turn a share assertion into noise.
// It returns the first profile and the pid's samples of all of them.
func recordEnough(t *testing.T, pid int, d time.Duration, min int64) (*profile.Profile, []*profile.Sample) {
	t.Helper()
	var first *profile.Profile
	var ss []*profile.Sample
	for range 3 {
		prof := recordPID(t, pid, d)
		if first == nil {
			first = prof
		}
		if ss = append(ss, pidSamples(prof, pid)...); weight(ss) >= min {
			return first, ss
		}
		t.Logf("%d samples of pid %d so far, want ≥ %d: recording again", weight(ss), pid, min)
	}
	t.Fatalf("%d samples of pid %d after 3 recordings of %v, want ≥ %d", weight(ss), pid, d, min)
	return nil, nil
}

// checkGoSplit asserts what any Go build of gosplit must show: the split,
// symbolized leaves, main.mix as an inlined frame, and the binary's build ID.
func checkGoSplit(t *testing.T, name string) *profile.Profile {
	t.Helper()
	bin, prof, ss := recordSplit(t, name)
	n := weight(ss)
	checkShares(t, ss, testworkload.Split(name), shareTol)
	atLeast(t, "symbolized leaf", percent(ss, symbolizedLeaf), 99, n)

	burners := map[string]bool{}
	for _, s := range testworkload.Split(name) {
		burners[s.Function] = true
	}
	inlined := func(s *profile.Sample) bool {
		for _, loc := range s.Location {
			if len(loc.Line) > 1 && loc.Line[0].Function.Name == testworkload.GoInlinedHelper &&
				slices.ContainsFunc(loc.Line[1:], func(l profile.Line) bool { return burners[l.Function.Name] }) {
				return true
			}
		}
		return false
	}
	atLeast(t, testworkload.GoInlinedHelper+" inlined into a burner", percent(ss, inlined), 50, n)
	checkBuildID(t, prof, ss, bin)
	return prof
}

// checkBuildID: the executable's mapping and the build_id label both carry
// the binary's GNU build ID (Go's linker writes one too).
func checkBuildID(t *testing.T, prof *profile.Profile, ss []*profile.Sample, bin string) {
	t.Helper()
	want := gnuBuildID(t, bin)
	if want == "" {
		t.Fatalf("%s has no GNU build ID note: nothing to compare with", bin)
	}
	exe := realPath(t, bin)
	var files []string
	found := false
	for _, m := range prof.Mapping {
		files = append(files, m.File)
		if m.File == exe {
			found = true
			if m.BuildID != want {
				t.Errorf("mapping %s has build ID %q, want %q", exe, m.BuildID, want)
			}
		}
	}
	if !found {
		t.Errorf("no mapping of %s among %q", exe, files)
	}
	for _, s := range ss {
		if got := label(s, "build_id"); got != want {
			t.Fatalf("build_id label %q, want %q (GNU build ID of %s)", got, want, bin)
		}
	}
	t.Logf("build ID %s on the mapping and every sample", want)
}

// checkShape: sample types, period and values as docs/wire.md specifies.
func checkShape(t *testing.T, p *profile.Profile, freq int, d time.Duration) {
	t.Helper()
	if len(p.SampleType) != 3 || p.SampleType[0].Type != "off_cpu" || p.SampleType[0].Unit != "nanoseconds" ||
		p.SampleType[1].Type != "samples" || p.SampleType[1].Unit != "count" ||
		p.SampleType[2].Type != "cpu" || p.SampleType[2].Unit != "nanoseconds" {
		t.Errorf("sample types %v, want [off_cpu/nanoseconds samples/count cpu/nanoseconds]", p.SampleType)
	}
	if want := int64(time.Second) / int64(freq); p.Period != want || p.PeriodType == nil || p.PeriodType.Type != "cpu" {
		t.Errorf("period %d %v, want %d cpu/nanoseconds", p.Period, p.PeriodType, want)
	}
	for _, s := range p.Sample {
		cpu := len(s.Value) == 3 && s.Value[0] == 0 && s.Value[2] == s.Value[1]*p.Period
		off := len(s.Value) == 3 && s.Value[0] > 0 && s.Value[1] == 0 && s.Value[2] == 0
		if !cpu && !off {
			t.Fatalf("sample values %v, want [0, n, n×%d] or [d, 0, 0]", s.Value, p.Period)
		}
	}
	if got := time.Duration(p.DurationNanos); got < d-time.Second || got > d+2*time.Second {
		t.Errorf("profile duration %v, want ≈ %v", got, d)
	}
}

func TestGoSplit(t *testing.T) {
	testenv.RequireBPF(t)
	prof := checkGoSplit(t, "gosplit")
	checkShape(t, prof, splitFreq, splitDuration)
}

// TestStrippedGo: without .symtab, names and inlining come from .gopclntab.
func TestStrippedGo(t *testing.T) {
	testenv.RequireBPF(t)
	if bin := testworkload.Build(t, "gosplit-stripped"); hasSymtab(t, bin) {
		t.Fatalf("%s has a .symtab: the test would not exercise pclntab symbolization", bin)
	}
	checkGoSplit(t, "gosplit-stripped")
}

func TestCSplit(t *testing.T) {
	testenv.RequireBPF(t)
	checkNativeSplit(t, "csplit")
}

// TestCPPSplit also checks demangling: the shares are looked up by the
// demangled names testworkload lists (nm -C spelling).
func TestCPPSplit(t *testing.T) {
	testenv.RequireBPF(t)
	ss := checkNativeSplit(t, "cppsplit")
	atLeast(t, testworkload.CPPDriver, percent(ss, hasFunction(testworkload.CPPDriver)), 95, weight(ss))
}

func checkNativeSplit(t *testing.T, name string) []*profile.Sample {
	t.Helper()
	_, _, ss := recordSplit(t, name)
	checkShares(t, ss, testworkload.Split(name), shareTol)
	atLeast(t, "symbolized leaf", percent(ss, symbolizedLeaf), 99, weight(ss))
	return ss
}

// TestGoLeafCaller: hotLeaf has no frame, so only the agent's leaf fix-up
// (return address at [sp]) puts leafCaller under it.
func TestGoLeafCaller(t *testing.T) {
	testenv.RequireBPF(t)
	bin := testworkload.Build(t, "gosplit")
	p := testworkload.Start(t, bin, "-mode", "leaf")
	_, ss := recordEnough(t, p.Pid, 4*time.Second, 1000)
	n := weight(ss)
	inLeaf := filter(ss, func(s *profile.Sample) bool {
		f := frames(s)
		return len(f) > 0 && f[0] == testworkload.GoLeaf
	})
	atLeast(t, "leaf is "+testworkload.GoLeaf, 100*float64(weight(inLeaf))/float64(n), 80, n)
	callerOK := func(s *profile.Sample) bool {
		f := frames(s)
		return len(f) > 1 && f[1] == testworkload.GoLeafCaller
	}
	atLeast(t, testworkload.GoLeaf+" called by "+testworkload.GoLeafCaller, percent(inLeaf, callerOK), 99, weight(inLeaf))
	if bad := filter(inLeaf, func(s *profile.Sample) bool { return !callerOK(s) }); len(bad) > 0 {
		t.Logf("e.g. a hotLeaf stack without leafCaller: %q", frames(bad[0]))
	}
}

func TestKernelFrames(t *testing.T) {
	testenv.RequireBPF(t)
	bin := testworkload.Build(t, "kernelheavy")
	for _, tc := range []struct {
		name    string
		args    []string
		minLoop float64 // percent of samples with KernelHeavyLoop; 0: not asserted
	}{
		// Through libc's frameless read wrapper a frame-pointer walk skips
		// read_zero_loop; that is the leaf-unwinding case, not asserted here.
		{"libc", nil, 0},
		// With -raw the syscall is inline in read_zero_loop.
		{"raw", []string{"-raw"}, 90},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testworkload.Start(t, bin, tc.args...)
			_, ss := recordEnough(t, p.Pid, 4*time.Second, 1000)
			n := weight(ss)
			kernel := filter(ss, hasKernelFrame)
			atLeast(t, "with kernel frames", 100*float64(weight(kernel))/float64(n), 80, n)
			// Other kernels differ in the middle of KernelHeavyFrames;
			// vfs_read and read_zero are on every read of /dev/zero.
			for _, fn := range []string{"vfs_read", "read_zero"} {
				if !slices.Contains(testworkload.KernelHeavyFrames, fn) {
					t.Fatalf("%s is not in testworkload.KernelHeavyFrames %q", fn, testworkload.KernelHeavyFrames)
				}
				atLeast(t, fn+" among kernel samples", percent(kernel, hasFunction(fn)), 90, weight(kernel))
			}
			loop := percent(ss, hasFunction(testworkload.KernelHeavyLoop))
			if tc.minLoop > 0 {
				atLeast(t, testworkload.KernelHeavyLoop, loop, tc.minLoop, n)
			} else {
				t.Logf("%s (not asserted): %.2f%% of %d samples", testworkload.KernelHeavyLoop, loop, n)
			}
		})
	}
}

// TestShortLived: processes that exit long before the profile is built
// must still be symbolized (objects are opened at first sight).
func TestShortLived(t *testing.T) {
	testenv.RequireBPF(t)
	bin := testworkload.Build(t, "shortlived")
	wait := startRecord(t, "--frequency", "499", "--duration", "6s")
	time.Sleep(time.Second) // let the agent load and attach
	pids := map[string]bool{}
	for range 5 {
		p := testworkload.Start(t, bin)
		if _, err := p.Wait(); err != nil {
			t.Fatalf("shortlived: %v\n%s", err, p.Stderr())
		}
		pids[strconv.Itoa(p.Pid)] = true
	}
	prof := readProfile(t, wait())

	exe := realPath(t, bin)
	ss := filter(prof.Sample, func(s *profile.Sample) bool {
		return label(s, "comm") == "shortlived" || label(s, "exe") == exe
	})
	n := weight(ss)
	perPID := map[string]int64{}
	for _, s := range ss {
		perPID[label(s, "pid")] += count(s)
	}
	t.Logf("shortlived samples per pid: %v (expected ~%.0f each: 200 ms × %d Hz)", perPID, 0.2*splitFreq, splitFreq)
	if n < 40 {
		t.Fatalf("%d shortlived samples, want ≥ 40", n)
	}
	// Each run spends ~0.5% of its CPU in exec, ld.so, libc start-up and
	// exit_group, all correctly symbolized but without short_burn: ~2.5 of
	// ~500 samples, observed 0-5. 98% keeps that Poisson tail (P(≥ 11) ≈
	// 1e-5) from failing the test; an agent that lost an exited process's
	// symbols would miss short_burn in nearly every sample, and the check
	// below catches even one unsymbolized frame of the binary.
	atLeast(t, testworkload.ShortBurn+" on the stack", percent(ss, hasFunction(testworkload.ShortBurn)), 98, n)
	for _, s := range ss {
		for _, loc := range s.Location {
			if loc.Mapping != nil && loc.Mapping.File == exe && len(loc.Line) == 0 {
				t.Fatalf("unsymbolized frame %#x of %s (pid %s): %q", loc.Address, exe, label(s, "pid"), frames(s))
			}
		}
	}
	for pid := range pids {
		if perPID[pid] == 0 {
			t.Errorf("no samples of shortlived pid %s", pid)
		}
	}
}

// TestPIDFilter: a --pid recording has that process only, and all of it.
// On 2 shared cores A does not get a whole CPU, so its sample count is
// checked against the CPU time it actually got: the cpu-clock event fires
// on a CPU every period, so A gets one sample per period it ran.
func TestPIDFilter(t *testing.T) {
	testenv.RequireBPF(t)
	bin := testworkload.Build(t, "gosplit")
	a := testworkload.Start(t, bin)
	b := testworkload.Start(t, bin)
	const d = 4 * time.Second
	before := cpuTime(t, a.Pid)
	prof := recordPID(t, a.Pid, d)
	ran := cpuTime(t, a.Pid) - before
	others := map[string]int64{}
	for _, s := range prof.Sample {
		if pid := label(s, "pid"); pid != strconv.Itoa(a.Pid) {
			others[pid] += count(s)
		}
	}
	if len(others) > 0 {
		t.Errorf("recording --pid %d (B is %d) has samples of other pids: %v", a.Pid, b.Pid, others)
	}
	n := weight(prof.Sample)
	expected := ran.Seconds() * splitFreq
	t.Logf("%d samples of pid %d: %.1f%% of %d Hz × %v wall, %.1f%% of %d Hz × %v on CPU",
		n, a.Pid, 100*float64(n)/(splitFreq*d.Seconds()), splitFreq, d, 100*float64(n)/expected, splitFreq, ran)
	if float64(n) < 0.9*expected {
		t.Errorf("%d samples of pid %d, want ≥ 90%% of the %.0f its %v on CPU at %d Hz make", n, a.Pid, expected, ran, splitFreq)
	}
}

// cpuTime is the user+system time of process pid so far (all threads), in
// clock ticks of 10 ms (USER_HZ is 100 on Linux).
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after "(comm)": state is field 3, utime 14, stime 15.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatalf("/proc/%d/stat: %v", pid, err)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// checkLabels asserts every sample's labels; an empty want means absent.
func checkLabels(t *testing.T, ss []*profile.Sample, want map[string]string) {
	t.Helper()
	if len(ss) == 0 {
		t.Fatal("no samples")
	}
	for _, s := range ss {
		for k, v := range want {
			if got := label(s, k); got != v {
				t.Fatalf("label %s=%q, want %q; labels: %v", k, got, v, s.Label)
			}
		}
	}
	t.Logf("labels of %d samples: %v", weight(ss), ss[0].Label)
}

func TestLabels(t *testing.T) {
	testenv.RequireBPF(t)
	bin := testworkload.Build(t, "gosplit")
	exe := realPath(t, bin)
	const node = "e2e-node-7"
	// The workload inherits the test's environment: clear what a CI
	// environment might set so only each subtest's settings count.
	t.Setenv("OTEL_SERVICE_NAME", "")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "")
	rec := func(t *testing.T, pid int) []*profile.Sample {
		return pidSamples(recordPID(t, pid, 2*time.Second, "--node", node), pid)
	}

	t.Run("otel", func(t *testing.T) {
		t.Setenv("OTEL_SERVICE_NAME", "checkout")
		t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "service.version=1.8.2,deployment.environment=canary,k8s.pod.name=checkout-7d9,k8s.namespace.name=shop")
		p := testworkload.Start(t, bin)
		checkLabels(t, rec(t, p.Pid), map[string]string{
			"service": "checkout", "version": "1.8.2", "environment": "canary",
			"pod": "checkout-7d9", "namespace": "shop", "container": "",
			"exe": exe, "comm": "gosplit", "node": node, "pid": strconv.Itoa(p.Pid),
			"build_id": gnuBuildID(t, bin), "container_id": "",
		})
	})

	t.Run("plain", func(t *testing.T) {
		p := testworkload.Start(t, bin)
		id := gnuBuildID(t, bin)
		checkLabels(t, rec(t, p.Pid), map[string]string{
			"service": "gosplit", "version": id, "build_id": id,
			"environment": "", "pod": "", "namespace": "", "container_id": "",
			"exe": exe, "comm": "gosplit", "node": node,
		})
	})

	t.Run("container_id", func(t *testing.T) {
		root := cgroup2Root(t)
		var b [32]byte
		_, _ = rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		dir := filepath.Join(root, "flightrec-e2e.slice", "docker-"+id+".scope")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		// Registered before Start, so it runs after the workload's Stop.
		t.Cleanup(func() { removeCgroup(t, root, dir) })
		p := testworkload.Start(t, bin)
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(p.Pid)), 0); err != nil {
			t.Fatalf("move pid %d into %s: %v", p.Pid, dir, err)
		}
		cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", p.Pid))
		if !strings.Contains(string(cg), id) {
			t.Fatalf("pid %d is not in the new cgroup:\n%s", p.Pid, cg)
		}
		checkLabels(t, rec(t, p.Pid), map[string]string{"container_id": id, "service": "gosplit"})
	})
}

// cgroup2Root finds where cgroup v2 is mounted: /sys/fs/cgroup/unified on
// this hybrid machine, else any cgroup2 mount.
func cgroup2Root(t *testing.T) string {
	t.Helper()
	mounts, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[2] == "cgroup2" {
			found = append(found, f[1])
		}
	}
	if slices.Contains(found, "/sys/fs/cgroup/unified") {
		return "/sys/fs/cgroup/unified"
	}
	if len(found) > 0 {
		return found[0]
	}
	if os.Getenv("FLIGHTREC_REQUIRE_BPF") == "1" {
		t.Fatal("FLIGHTREC_REQUIRE_BPF=1 but no cgroup2 file system is mounted")
	}
	t.Skip("no cgroup2 file system is mounted")
	return ""
}

// removeCgroup moves whatever is left in dir to the root cgroup and removes
// dir and its parent slice.
func removeCgroup(t *testing.T, root, dir string) {
	if procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs")); err == nil {
		for _, pid := range strings.Fields(string(procs)) {
			_ = os.WriteFile(filepath.Join(root, "cgroup.procs"), []byte(pid), 0)
		}
	}
	for _, d := range []string{dir, filepath.Dir(dir)} {
		// A just-reaped process may keep the cgroup busy for a moment.
		if !waitFor(5*time.Second, func() bool { err := os.Remove(d); return err == nil || errors.Is(err, os.ErrNotExist) }) {
			t.Errorf("cannot remove cgroup %s", d)
		}
	}
}

// TestPprofTool: the file the agent writes is one the real pprof reads.
func TestPprofTool(t *testing.T) {
	testenv.RequireBPF(t)
	p := testworkload.Start(t, testworkload.Build(t, "gosplit"))
	path := startRecord(t, "--pid", strconv.Itoa(p.Pid), "--frequency", "499", "--duration", "2s")()
	cmd := exec.Command(goTool(), "tool", "pprof", "-top", path)
	cmd.Env = append(os.Environ(), "PPROF_TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof -top: %v\n%s", err, out)
	}
	if cpuA := testworkload.Split("gosplit")[0].Function; !strings.Contains(string(out), cpuA) {
		t.Errorf("go tool pprof -top output lacks %s:\n%s", cpuA, out)
	}
}

// TestRecordInterrupt: SIGINT ends a recording early with the samples so far.
func TestRecordInterrupt(t *testing.T) {
	testenv.RequireBPF(t)
	p := testworkload.Start(t, testworkload.Build(t, "gosplit"))
	out := filepath.Join(t.TempDir(), "cpu.pb.gz")
	a := startAgent(t, "record", "--pid", strconv.Itoa(p.Pid), "--frequency", "499", "--duration", "60s", "-o", out)
	time.Sleep(2 * time.Second)
	if err := a.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if code := a.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGINT, want 0: %v", code, a)
	}
	n := weight(pidSamples(readProfile(t, out), p.Pid))
	t.Logf("%d samples of pid %d in ~2 s", n, p.Pid)
	if n < 100 {
		t.Errorf("%d samples of pid %d after ~2 s at 499 Hz, want ≥ 100", n, p.Pid)
	}
}

// TestUsageErrors needs no privileges: the agent validates its flags before
// it looks at the host.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"record", "--frequency", "0"}, "--frequency 0"},
		{[]string{"record", "--frequency", "100000"}, "--frequency 100000"},
		{[]string{"record", "--duration", "-1s"}, "--duration -1s"},
		{[]string{"record", "--pid"}, "-pid"},
		{[]string{"record", "--pid", "99999999"}, "--pid 99999999"},
		{[]string{"record", "--pid", "4000000"}, "--pid 4000000"},
		{[]string{"bogus-command"}, "bogus-command"},
		{[]string{"run"}, "--server"},
		{[]string{"run", "--server", "x", "--interval", "0s"}, "--interval 0s"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			if slices.Contains(tc.args, "4000000") {
				if _, err := os.Stat("/proc/4000000"); err == nil {
					t.Skip("process 4000000 exists")
				}
			}
			a := runAgent(t, tc.args...)
			if a.code != 2 || !strings.Contains(a.stderr.String(), tc.want) {
				t.Errorf("want exit 2 and %q on stderr, got %v", tc.want, a)
			}
		})
	}
	t.Run("version", func(t *testing.T) {
		a := runAgent(t, "version")
		if a.code != 0 || !strings.HasPrefix(a.stdout.String(), "flightrec-agent ") {
			t.Errorf("want exit 0 and a version line, got %v", a)
		}
	})
}

// TestUnprivileged: without CAP_BPF/CAP_PERFMON the agent says what is
// missing and exits 1 before touching BPF.
func TestUnprivileged(t *testing.T) {
	// The binary must be reachable by uid 65534: t.TempDir is 0700.
	dir, err := os.MkdirTemp("", "flightrec-e2e-unpriv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "flightrec-agent")
	data, err := os.ReadFile(agentBin)
	if err == nil {
		err = os.WriteFile(bin, data, 0o755)
	}
	if err == nil {
		err = os.Chmod(dir, 0o777) // world-writable too, so nobody could write -o if it got that far
	}
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "x.pb.gz")
	args := []string{"record", "--duration", "1s", "-o", out}
	var a *agentProc
	if os.Geteuid() == 0 {
		a = startCmd(t, "setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups",
			"--inh-caps=-all", "--bounding-set=-all", "--", bin}, args...)...)
	} else {
		a = startCmd(t, bin, args...) // already unprivileged
	}
	a.wait(t, time.Minute)
	stderr := a.stderr.String()
	for _, want := range []string{"flightrec-agent record: cannot start:", "not privileged", "CAP_BPF"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if a.code != 1 {
		t.Errorf("exit %d, want 1", a.code)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("an unprivileged run wrote %s", out)
	}
	t.Logf("%v", a)
}

// TestRunServerAway: with the server unreachable and a tiny spool the
// agent drops old profiles, stays healthy, and still exits cleanly.
func TestRunServerAway(t *testing.T) {
	testenv.RequireBPF(t)
	testworkload.Start(t, testworkload.Build(t, "gosplit"))
	admin := "http://" + freeAddr(t)
	start := time.Now()
	a := startAgent(t, "run", "--server", "http://"+freeAddr(t), "--interval", "1s", "--spool-bytes", "2048",
		"--admin", strings.TrimPrefix(admin, "http://"), "--frequency", "99", "--node", "e2e-away")
	var metrics string
	dropped := func() float64 { v, _ := metricValue(metrics, "flightrec_agent_spool_dropped_total"); return v }
	ok := waitFor(15*time.Second, func() bool {
		if a.exited() {
			return true
		}
		_, body, err := httpGet(admin + "/metrics")
		if err == nil {
			metrics = body
		}
		return time.Since(start) > 6*time.Second && dropped() >= 1
	})
	if a.exited() {
		t.Fatalf("agent exited while the server was away: %v", a)
	}
	if !ok {
		t.Fatalf("flightrec_agent_spool_dropped_total = %v after %v, want ≥ 1\n%s", dropped(), time.Since(start).Round(time.Second), a.stderr.String())
	}
	samples, _ := metricValue(metrics, "flightrec_agent_bpf_samples_total")
	shipped, _ := metricValue(metrics, "flightrec_agent_shipped_profiles_total")
	t.Logf("after %v: spool_dropped_total=%v bpf_samples_total=%v shipped_profiles_total=%v", time.Since(start).Round(100*time.Millisecond), dropped(), samples, shipped)
	if samples == 0 || shipped != 0 {
		t.Errorf("bpf_samples_total=%v shipped_profiles_total=%v, want > 0 and 0", samples, shipped)
	}
	if code, body, err := httpGet(admin + "/healthz"); err != nil || code != http.StatusOK {
		t.Errorf("/healthz: %d %q %v, want 200", code, body, err)
	}
	stop := time.Now()
	if code := a.terminate(t, 10*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0: %v", code, a)
	}
	t.Logf("exited %v after SIGTERM", time.Since(stop).Round(10*time.Millisecond))
}

// receiver implements the receiving side of docs/wire.md. The real server
// comes in a later issue; this checks the agent against the document.
type receiver struct {
	failFirst int // answer 503 to this many requests, to exercise retries

	mu       sync.Mutex
	reqs     []ingest
	profiles []*profile.Profile
	keys     map[string]bool // accepted idempotency keys
	errs     []string        // protocol violations
}

type ingest struct {
	key, auth string
	status    int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method == http.MethodGet && req.URL.Path == "/api/v1/agent/triggers" {
		// The flight recorder's long poll: no triggers here.
		select {
		case <-req.Context().Done():
		case <-time.After(time.Second):
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	in := ingest{key: req.Header.Get("Idempotency-Key"), auth: req.Header.Get("Authorization"), status: http.StatusOK}
	defer func() { r.reqs = append(r.reqs, in) }()
	body, err := io.ReadAll(req.Body)
	reject := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		r.errs = append(r.errs, msg)
		in.status = http.StatusBadRequest
		http.Error(w, msg, in.status)
	}
	switch {
	case err != nil:
		reject("read body: %v", err)
	case req.Method != http.MethodPost || req.URL.Path != "/api/v1/ingest/agent":
		reject("%s %s, want POST /api/v1/ingest/agent", req.Method, req.URL.Path)
	case req.Header.Get("Content-Encoding") != "zstd" || !bytes.HasPrefix(body, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		reject("Content-Encoding %q, body starts %x: want zstd", req.Header.Get("Content-Encoding"), body[:min(4, len(body))])
	case req.Header.Get("Content-Type") != "application/vnd.google.protobuf":
		reject("Content-Type %q", req.Header.Get("Content-Type"))
	case in.key == "":
		reject("no Idempotency-Key")
	case len(r.reqs) < r.failFirst:
		in.status = http.StatusServiceUnavailable
		http.Error(w, "try later", in.status)
	case r.keys[in.key]:
		reject("Idempotency-Key %q reused for a second profile", in.key)
	default:
		raw, err := zstdDecode(body)
		if err != nil {
			reject("zstd: %v", err)
			return
		}
		p, err := profile.ParseData(raw)
		if err != nil {
			reject("parse profile: %v", err)
			return
		}
		if r.keys == nil {
			r.keys = map[string]bool{}
		}
		r.keys[in.key] = true
		r.profiles = append(r.profiles, p)
	}
}

func (r *receiver) snapshot() (reqs []ingest, profiles []*profile.Profile, errs []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs), slices.Clone(r.profiles), slices.Clone(r.errs)
}

// samplesOf gathers pid's samples over profiles.
func samplesOf(profiles []*profile.Profile, pid int) []*profile.Sample {
	var ss []*profile.Sample
	for _, p := range profiles {
		ss = append(ss, pidSamples(p, pid)...)
	}
	return ss
}

func TestRunShipsToReceiver(t *testing.T) {
	testenv.RequireBPF(t)
	bin := testworkload.Build(t, "gosplit")
	w := testworkload.Start(t, bin)
	checkGosplit := func(t *testing.T, profiles []*profile.Profile, node string) {
		t.Helper()
		ss := samplesOf(profiles, w.Pid)
		cpuA := testworkload.Split("gosplit")[0].Function
		t.Logf("%d profiles, %d samples of gosplit (pid %d), %s in %.1f%%", len(profiles), weight(ss), w.Pid, cpuA, percent(ss, hasFunction(cpuA)))
		if !slices.ContainsFunc(ss, hasFunction(cpuA)) {
			t.Errorf("no gosplit sample with %s among %d", cpuA, len(ss))
		}
		checkLabels(t, ss, map[string]string{"service": "gosplit", "comm": "gosplit", "node": node,
			"exe": realPath(t, bin), "build_id": gnuBuildID(t, bin)})
	}

	t.Run("intervals", func(t *testing.T) {
		const token, node = "e2e-s3cret", "e2e-ship"
		tokenFile := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		rcv := &receiver{failFirst: 2}
		srv := httptest.NewServer(rcv)
		defer srv.Close()
		a := startAgent(t, "run", "--server", srv.URL, "--interval", "1s", "--frequency", "99",
			"--token-file", tokenFile, "--admin", "", "--node", node)
		ok := waitFor(20*time.Second, func() bool { _, ps, _ := rcv.snapshot(); return len(ps) >= 3 || a.exited() })
		code := a.terminate(t, 10*time.Second)
		reqs, profiles, errs := rcv.snapshot()
		for _, e := range errs {
			t.Errorf("wire protocol: %s", e)
		}
		if !ok || len(profiles) < 3 {
			t.Fatalf("%d profiles received (%d requests), want ≥ 3: %v", len(profiles), len(reqs), a)
		}
		if code != 0 {
			t.Errorf("exit %d after SIGTERM, want 0", code)
		}
		// The profile refused twice is retried under the same key.
		if reqs[0].status != 503 || reqs[1].status != 503 || reqs[2].status != 200 ||
			reqs[1].key != reqs[0].key || reqs[2].key != reqs[0].key {
			t.Errorf("first requests %+v: want the same key answered 503, 503, 200", reqs[:3])
		}
		keyRE := regexp.MustCompile(`^` + regexp.QuoteMeta(node) + `-[0-9a-f]{12}-[0-9]+$`)
		for _, r := range reqs {
			if r.auth != "Bearer "+token || !keyRE.MatchString(r.key) {
				t.Errorf("request with Authorization %q, Idempotency-Key %q: want %q and <node>-<12 hex>-<seq>", r.auth, r.key, "Bearer "+token)
			}
		}
		t.Logf("%d requests, %d profiles accepted", len(reqs), len(profiles))
		checkGosplit(t, profiles, node)
	})

	t.Run("final_partial_interval_on_sigterm", func(t *testing.T) {
		const node = "e2e-final"
		rcv := &receiver{}
		srv := httptest.NewServer(rcv)
		defer srv.Close()
		// No interval ends within the run: only the flush on SIGTERM ships.
		a := startAgent(t, "run", "--server", srv.URL, "--interval", "60s", "--frequency", "99", "--admin", "", "--node", node)
		time.Sleep(3 * time.Second)
		stop := time.Now()
		code := a.terminate(t, 10*time.Second)
		t.Logf("exit %d %v after SIGTERM", code, time.Since(stop).Round(10*time.Millisecond))
		_, profiles, errs := rcv.snapshot()
		for _, e := range errs {
			t.Errorf("wire protocol: %s", e)
		}
		if code != 0 {
			t.Errorf("exit %d after SIGTERM, want 0", code)
		}
		if len(profiles) != 1 {
			// docs/wire.md: "On SIGTERM the agent reports the last partial
			// interval and tries for 5 s to send what is queued."
			t.Fatalf("receiver got %d profiles, want 1: the final partial interval, reported and shipped on SIGTERM\nagent stderr:\n%s", len(profiles), a.stderr.String())
		}
		t.Logf("final profile covers %v", time.Duration(profiles[0].DurationNanos).Round(time.Millisecond))
		checkGosplit(t, profiles, node)
	})
}

// zstdDecode inflates a body of the agent's wire format (docs/wire.md).
func zstdDecode(b []byte) ([]byte, error) {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.DecodeAll(b, nil)
}
