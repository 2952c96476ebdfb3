package testworkload

import (
	"bufio"
	"bytes"
	"math"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// These tests cross-check the ground truth with Linux perf, where it is
// installed and allowed to sample: an independent profiler should see the
// documented split. They are an optional extra; the calibration tests above
// are what must hold everywhere.

func perfPath(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("perf cross-check skipped in -short mode")
	}
	perf, err := exec.LookPath("perf")
	if err != nil {
		t.Skip("perf not installed")
	}
	if out, err := exec.Command(perf, "stat", "-e", "task-clock", "true").CombinedOutput(); err != nil {
		t.Skipf("perf stat does not work here: %v\n%s", err, out)
	}
	return perf
}

// perfStacks samples bin at 997 Hz with frame-pointer call chains and
// returns each sample's symbols, innermost first.
func perfStacks(t *testing.T, perf, bin string, args ...string) [][]string {
	t.Helper()
	data := filepath.Join(t.TempDir(), "perf.data")
	rec := append([]string{"record", "-q", "-g", "-e", "cpu-clock", "-F", "997", "-o", data, "--", bin}, args...)
	if out, err := exec.Command(perf, rec...).CombinedOutput(); err != nil {
		t.Skipf("perf record failed: %v\n%s", err, out)
	}
	out, err := exec.Command(perf, "script", "-i", data, "-F", "ip,sym").Output()
	if err != nil {
		t.Skipf("perf script failed: %v", err)
	}
	var stacks [][]string
	var cur []string
	flush := func() {
		if len(cur) > 0 {
			stacks = append(stacks, cur)
		}
		cur = nil
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			flush()
			continue
		}
		// "ADDR SYMBOL+0xOFF" or "ADDR [unknown]"; C++ symbols contain spaces.
		_, sym, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if i := strings.LastIndex(sym, "+0x"); i > 0 {
			sym = sym[:i]
		}
		cur = append(cur, sym)
	}
	flush()
	if len(stacks) < 500 {
		t.Skipf("perf gave only %d samples", len(stacks))
	}
	return stacks
}

// perfName is how perf script spells a symbol that nm -C prints in full:
// perf drops the parameter list and a template function's return type.
func perfName(nm string) string {
	if i := strings.LastIndex(nm, "("); i > 0 && strings.HasSuffix(nm, ")") {
		nm = nm[:i]
	}
	depth, cut := 0, -1
	for i, r := range nm {
		switch r {
		case '<':
			depth++
		case '>':
			depth--
		case ' ':
			if depth == 0 {
				cut = i
			}
		}
	}
	return nm[cut+1:]
}

func contains(stack []string, fn string) bool {
	for _, s := range stack {
		if s == fn {
			return true
		}
	}
	return false
}

func TestPerfSplit(t *testing.T) {
	perf := perfPath(t)
	cases := []struct {
		name, caller string
		args         []string
		extra        int
	}{
		{"gosplit", "main.burnSplit", nil, 0},
		{"gosplit", "main.burnSplit", []string{"-mode", "extra"}, 50},
		{"csplit", "burn_split", nil, 0},
		{"cppsplit", perfName(CPPDriver), nil, 0},
	}
	for _, c := range cases {
		t.Run(strings.Join(append([]string{c.name}, c.args...), "_"), func(t *testing.T) {
			t.Parallel()
			stacks := perfStacks(t, perf, Build(t, c.name), append(c.args, "-duration", "3s")...)
			want := SplitOf(c.name, DefaultSplit, c.extra)
			for i := range want {
				want[i].Function = perfName(want[i].Function)
			}
			count := map[string]int{}
			withCaller, in := 0, 0
			for _, st := range stacks {
				for _, w := range want {
					if st[0] == w.Function {
						count[w.Function]++
						in++
						if c.caller != "" && contains(st, c.caller) {
							withCaller++
						}
					}
				}
			}
			if frac := float64(in) / float64(len(stacks)); frac < 0.95 {
				t.Errorf("only %.1f%% of %d samples in the burners", 100*frac, len(stacks))
			}
			for _, w := range want {
				got := 100 * float64(count[w.Function]) / float64(in)
				// Observed scatter on this VM is up to ~1.5x binomial, so
				// allow 5 binomial sigmas (≈4.5 points at 3000 samples).
				p := w.Percent / 100
				tol := math.Max(3, 5*100*math.Sqrt(p*(1-p)/float64(in)))
				t.Logf("%-36s %5.2f%% (want %5.2f%% ± %.1f, %d samples)", w.Function, got, w.Percent, tol, in)
				if math.Abs(got-w.Percent) > tol {
					t.Errorf("%s: perf sees %.2f%%, want %.2f%% ± %.1f", w.Function, got, w.Percent, tol)
				}
			}
			if c.caller != "" {
				frac := float64(withCaller) / float64(in)
				t.Logf("%.1f%% of burner samples have %s on the frame-pointer stack", 100*frac, c.caller)
				if frac < 0.95 {
					t.Errorf("burners are not frame-pointer unwindable to %s: %.1f%%", c.caller, 100*frac)
				}
			}
		})
	}
}

func TestPerfLeaf(t *testing.T) {
	perf := perfPath(t)
	t.Parallel()
	stacks := perfStacks(t, perf, Build(t, "gosplit"), "-mode", "leaf", "-duration", "3s")
	leaf, withCaller := 0, 0
	for _, st := range stacks {
		if st[0] == GoLeaf {
			leaf++
			if contains(st, GoLeafCaller) {
				withCaller++
			}
		}
	}
	frac := float64(leaf) / float64(len(stacks))
	t.Logf("%s: %.1f%% of %d samples; perf's frame-pointer walk finds %s in %.1f%% of them (a correct unwinder: 100%%)",
		GoLeaf, 100*frac, len(stacks), GoLeafCaller, 100*float64(withCaller)/float64(max(leaf, 1)))
	if frac < 0.80 {
		t.Errorf("%s has %.1f%% of samples, want ≥ 80%%", GoLeaf, 100*frac)
	}
}

func TestPerfKernelHeavy(t *testing.T) {
	perf := perfPath(t)
	for _, raw := range []bool{false, true} {
		args := []string{"-duration", "2s"}
		name := "libc"
		if raw {
			args, name = append(args, "-raw"), "raw"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			stacks := perfStacks(t, perf, Build(t, "kernelheavy"), args...)
			frames := map[string]int{}
			loop := 0
			for _, st := range stacks {
				seen := map[string]bool{}
				for _, s := range st {
					if !seen[s] {
						seen[s] = true
						frames[s]++
					}
				}
				if contains(st, KernelHeavyLoop) {
					loop++
				}
			}
			for _, f := range KernelHeavyFrames {
				t.Logf("%-32s on %5.1f%% of stacks", f, 100*float64(frames[f])/float64(len(stacks)))
			}
			t.Logf("%-32s on %5.1f%% of stacks", KernelHeavyLoop, 100*float64(loop)/float64(len(stacks)))
			for _, f := range []string{"vfs_read", "read_zero"} {
				if frac := float64(frames[f]) / float64(len(stacks)); frac < 0.8 {
					t.Errorf("%s on only %.1f%% of stacks", f, 100*frac)
				}
			}
			// Through libc's frameless read() a frame-pointer walk skips
			// read_zero_loop; with -raw it must be there.
			if frac := float64(loop) / float64(len(stacks)); raw && frac < 0.8 {
				t.Errorf("-raw: %s on only %.1f%% of stacks", KernelHeavyLoop, 100*frac)
			}
		})
	}
}
