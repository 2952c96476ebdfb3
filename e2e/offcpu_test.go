package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/flightrec/flightrec/internal/testenv"
	"github.com/flightrec/flightrec/internal/testworkload"
)

// offCPUTruth is testdata/workloads/offcpu's split of its blocking thread's
// off-CPU time: 5, 3 and 2 units per round.
var offCPUTruth = []testworkload.Share{
	{Function: "main.sleepFn", Percent: 50},
	{Function: "main.futexFn", Percent: 30},
	{Function: "main.pipeFn", Percent: 20},
}

const offCPUSpin = "main.spin"

// buildGoWorkload builds testdata/workloads/<dir> (Go) into a temporary
// directory.
func buildGoWorkload(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), dir)
	cmd := exec.Command(goTool(), "build", "-o", bin, "./testdata/workloads/"+dir)
	cmd.Dir = testworkload.RepoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", dir, err, out)
	}
	return bin
}

// valueIndex is the index of sample type typ/unit in p, failing t if absent.
func valueIndex(t *testing.T, p *profile.Profile, typ, unit string) int {
	t.Helper()
	for i, st := range p.SampleType {
		if st.Type == typ && st.Unit == unit {
			return i
		}
	}
	t.Fatalf("profile has no %s/%s sample type: %v", typ, unit, p.SampleType)
	return -1
}

// sumValue totals value i over the samples of ss for which pred holds.
func sumValue(ss []*profile.Sample, i int, pred func(*profile.Sample) bool) int64 {
	var n int64
	for _, s := range ss {
		if pred(s) {
			n += s.Value[i]
		}
	}
	return n
}

func anyFunction(fns ...string) func(*profile.Sample) bool {
	return func(s *profile.Sample) bool {
		for _, fn := range fns {
			if hasFunction(fn)(s) {
				return true
			}
		}
		return false
	}
}

func and(preds ...func(*profile.Sample) bool) func(*profile.Sample) bool {
	return func(s *profile.Sample) bool {
		for _, p := range preds {
			if !p(s) {
				return false
			}
		}
		return true
	}
}

func hasLabel(key, value string) func(*profile.Sample) bool {
	return func(s *profile.Sample) bool { return label(s, key) == value }
}

// TestOffCPUSplit: the workload's one blocking thread waits in nanosleep,
// a futex and a pipe read for 50/30/20% of its blocked time. The recorded
// off_cpu values of the stacks through each function must match within 3
// points, all in state sleep; its CPU work (main.spin) has CPU samples and
// no off-CPU time; and off_cpu comes first among the sample types, so that
// pprof's default view stays CPU.
func TestOffCPUSplit(t *testing.T) {
	testenv.RequireBPF(t)
	bin := buildGoWorkload(t, "offcpu")
	w := testworkload.Start(t, bin, "-duration", "60s")
	const d = 8 * time.Second
	prof := record(t, "--pid", strconv.Itoa(w.Pid), "--duration", d.String(), "--frequency", "99")

	off := valueIndex(t, prof, "off_cpu", "nanoseconds")
	cpu := valueIndex(t, prof, "cpu", "nanoseconds")
	if off != 0 || cpu != len(prof.SampleType)-1 || prof.DefaultSampleType != "cpu" {
		t.Errorf("sample types %v (default %q): want off_cpu first and cpu last and default", prof.SampleType, prof.DefaultSampleType)
	}
	ss := pidSamples(prof, w.Pid)
	var fns []string
	for _, s := range offCPUTruth {
		fns = append(fns, s.Function)
	}
	blocked := sumValue(ss, off, anyFunction(fns...))
	t.Logf("off-CPU time in the three functions: %v of %v recorded", time.Duration(blocked), d)
	// The thread blocks ~94% of the time (the rest is spin); allow for a
	// slow start of the workload and the agent's attach time.
	if blocked < int64(d*6/10) {
		t.Fatalf("%v off-CPU time in %q over %v, want ≥ 60%% of it", time.Duration(blocked), fns, d)
	}
	for _, want := range offCPUTruth {
		in := hasFunction(want.Function)
		got := 100 * float64(sumValue(ss, off, in)) / float64(blocked)
		sleeping := 100 * float64(sumValue(ss, off, and(in, hasLabel("state", "sleep")))) / float64(max(sumValue(ss, off, in), 1))
		t.Logf("%s: %.2f%% of off-CPU time (truth %.0f%%), %.2f%% of it in state sleep", want.Function, got, want.Percent, sleeping)
		if got < want.Percent-shareTol || got > want.Percent+shareTol {
			t.Errorf("%s has %.2f%% of the blocked time, want %.0f%% ± %.0f", want.Function, got, want.Percent, shareTol)
		}
		if sleeping < 99 {
			t.Errorf("%s: %.2f%% of its off-CPU time in state sleep, want ≥ 99%% (nanosleep, futex and pipe waits are interruptible)", want.Function, sleeping)
		}
	}
	spinCPU := sumValue(ss, cpu, hasFunction(offCPUSpin))
	spinOff := sumValue(ss, off, hasFunction(offCPUSpin))
	t.Logf("%s: %v on CPU, %v off CPU", offCPUSpin, time.Duration(spinCPU), time.Duration(spinOff))
	if spinCPU == 0 {
		t.Errorf("%s has no CPU samples: the workload's CPU work was not seen", offCPUSpin)
	}
	if spinOff != 0 {
		t.Errorf("%s has %v of off-CPU time, want none (it never blocks, and runs SCHED_FIFO)", offCPUSpin, time.Duration(spinOff))
	}
	for _, s := range ss {
		if s.Value[off] > 0 && label(s, "state") == "" {
			t.Fatalf("off-CPU sample without a state label: %v %q", s.Label, frames(s))
		}
		if s.Value[off] > 0 && s.Value[cpu] != 0 {
			t.Fatalf("a sample with both off-CPU and CPU time: %v", s.Value)
		}
	}
}
