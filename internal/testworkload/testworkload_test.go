package testworkload

import (
	"bytes"
	"debug/elf"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestBuildAll(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			bin := Build(t, name)
			fi, err := os.Stat(bin)
			if err != nil || fi.Mode()&0o111 == 0 {
				t.Fatalf("%s: not an executable: %v", bin, err)
			}
			if again := Build(t, name); again != bin {
				t.Errorf("second Build = %s, want cached %s", again, bin)
			}
		})
	}
}

func TestBuildUnknown(t *testing.T) {
	ft := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Build(ft, "nope")
	}()
	<-done
	if !ft.failed {
		t.Fatal("Build of an unknown workload did not fail the test")
	}
}

// fatalRecorder catches Fatalf so a failure path can be tested.
type fatalRecorder struct {
	testing.TB
	failed bool
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.failed = true
	f.TB.Logf("(expected) "+format, args...)
	runtime.Goexit()
}

func (f *fatalRecorder) Helper() {}

// The split must come from work amounts: with equal per-unit costs the CPU
// shares equal the work ratio. Costs are measured per burner in isolation,
// with the thread CPU clock, so a busy machine does not skew them.
func TestSplitCalibration(t *testing.T) {
	cases := []struct {
		name  string
		args  []string
		extra int
	}{
		{"gosplit", nil, 0},
		{"gosplit-stripped", nil, 0},
		{"gosplit", []string{"-mode", "extra"}, 50},
		{"gosplit", []string{"-mode", "extra", "-extra", "20"}, 20},
		{"csplit", nil, 0},
		{"cppsplit", nil, 0},
	}
	for _, c := range cases {
		t.Run(strings.Join(append([]string{c.name}, c.args...), "_"), func(t *testing.T) {
			t.Parallel()
			bin := Build(t, c.name)
			cal := calibrateBest(t, bin, c.args...)
			want := SplitOf(c.name, DefaultSplit, c.extra)
			got := MeasuredSplit(cal, DefaultSplit)
			for i := range want {
				t.Logf("%-36s %9.1f ns/unit  share %5.2f%% (want %5.2f%%)", cal[i].Function, cal[i].NsPerUnit, got[i].Percent, want[i].Percent)
				if got[i].Function != want[i].Function {
					t.Errorf("calibration names %q, Split names %q", got[i].Function, want[i].Function)
				}
				if d := math.Abs(got[i].Percent - want[i].Percent); d > 1.5 {
					t.Errorf("%s: measured share %.2f%%, want %.2f%% ± 1.5", want[i].Function, got[i].Percent, want[i].Percent)
				}
			}
			// A unit must be fine-grained against any sampling period.
			if ns := cal[0].NsPerUnit; ns < 5e3 || ns > 100e3 {
				t.Errorf("unit costs %.0f ns; want 5-100 µs (aim 20-50 µs)", ns)
			}
		})
	}
}

// calibrateBest keeps each burner's lowest cost over three calibrations:
// interference from other work (parallel subtests, a busy CI machine) only
// ever adds to a unit's thread CPU time, through caches and frequency.
func calibrateBest(t *testing.T, bin string, args ...string) []Calibration {
	best := Calibrate(t, bin, 200, args...)
	for range 2 {
		for i, c := range Calibrate(t, bin, 200, args...) {
			if c.NsPerUnit < best[i].NsPerUnit {
				best[i] = c
			}
		}
	}
	return best
}

func TestSplitTables(t *testing.T) {
	for _, name := range []string{"gosplit", "gosplit-stripped", "csplit", "cppsplit"} {
		var sum float64
		for _, s := range Split(name) {
			sum += s.Percent
		}
		if len(Split(name)) != 3 || math.Abs(sum-100) > 1e-9 {
			t.Errorf("Split(%q) = %v", name, Split(name))
		}
	}
	if Split("churn") != nil || Split("nope") != nil {
		t.Error("Split of a workload without a split should be nil")
	}
	if SplitOf("csplit", DefaultSplit, 10) != nil {
		t.Error("-extra is gosplit-only")
	}
}

func goFuncLines(t *testing.T, fn string) (first, last int) {
	t.Helper()
	path := filepath.Join(RepoRoot(t), "testdata", "workloads", "gosplit", "main.go")
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil && fd.Name.Name == fn {
			return fset.Position(fd.Pos()).Line, fset.Position(fd.End()).Line
		}
	}
	t.Fatalf("func %s not found in %s", fn, path)
	return 0, 0
}

func TestGoInlining(t *testing.T) {
	root := RepoRoot(t)
	out := filepath.Join(t.TempDir(), "gosplit")
	cmd := exec.Command(goTool(), "build", "-gcflags=-m", "-o", out, "./testdata/workloads/gosplit")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	re := regexp.MustCompile(`(?m)gosplit/main\.go:(\d+):\d+: inlining call to mix$`)
	var lines []int
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		n, _ := strconv.Atoi(m[1])
		lines = append(lines, n)
	}
	for _, fn := range []string{"cpuA", "cpuB", "cpuC"} {
		first, last := goFuncLines(t, fn)
		found := false
		for _, n := range lines {
			found = found || (n >= first && n <= last)
		}
		if !found {
			t.Errorf("no 'inlining call to mix' inside %s (lines %d-%d); -m output:\n%s", fn, first, last, b)
		}
	}
}

type objLine struct {
	line int
	asm  string
}

// goObjdump disassembles one Go function: file line and instruction text.
func goObjdump(t *testing.T, bin, fn string) []objLine {
	t.Helper()
	b, err := exec.Command(goTool(), "tool", "objdump", "-s", "^"+regexp.QuoteMeta(fn)+"$", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("objdump %s: %v\n%s", fn, err, b)
	}
	var out []objLine
	for _, l := range strings.Split(string(b), "\n") {
		// "  file.go:LINE\t\tADDR\t\tHEX\t\t\tINSN\t"; tabs repeat.
		var f []string
		for _, x := range strings.Split(strings.TrimSpace(l), "\t") {
			if x != "" {
				f = append(f, x)
			}
		}
		if len(f) < 4 || !strings.HasPrefix(f[1], "0x") {
			continue
		}
		_, ln, _ := strings.Cut(f[0], ":")
		n, _ := strconv.Atoi(ln)
		out = append(out, objLine{n, strings.TrimSpace(f[3])})
	}
	if len(out) == 0 {
		t.Fatalf("objdump %s: no instructions:\n%s", fn, b)
	}
	return out
}

func hasInsn(code []objLine, prefix string) bool {
	for _, l := range code {
		if strings.HasPrefix(l.asm, prefix) {
			return true
		}
	}
	return false
}

// Only the unstripped binary: go tool objdump needs the symbol table. The
// stripped one is the same code (TestGoStripped checks its pclntab).
func TestGoFrames(t *testing.T) {
	for _, name := range []string{"gosplit"} {
		t.Run(name, func(t *testing.T) {
			bin := Build(t, name)
			leaf := goObjdump(t, bin, GoLeaf)
			for _, bad := range []string{"PUSHQ BP", "CALL", "SUBQ $", "ADJSP"} {
				if hasInsn(leaf, bad) {
					t.Errorf("%s has %q: not a frameless leaf: %v", GoLeaf, bad, leaf)
				}
			}
			if caller := goObjdump(t, bin, GoLeafCaller); !hasInsn(caller, "CALL main.hotLeaf") {
				t.Errorf("%s does not call %s", GoLeafCaller, GoLeaf)
			}
			mixFirst, mixLast := goFuncLines(t, "mix")
			for _, fn := range []string{"main.cpuA", "main.cpuB", "main.cpuC"} {
				code := goObjdump(t, bin, fn)
				// Burners keep a frame so a frame-pointer walk from them
				// reaches burnSplit; only hotLeaf is meant to be frameless.
				if !hasInsn(code, "PUSHQ BP") {
					t.Errorf("%s has no frame pointer", fn)
				}
				if hasInsn(code, "CALL main.mix") {
					t.Errorf("%s calls main.mix instead of inlining it", fn)
				}
				inMix := 0
				for _, l := range code {
					if l.line >= mixFirst && l.line <= mixLast {
						inMix++
					}
				}
				if inMix < 10 {
					t.Errorf("%s: only %d instructions on mix's lines %d-%d", fn, inMix, mixFirst, mixLast)
				}
			}
		})
	}
}

func TestGoStripped(t *testing.T) {
	stripped, err := elf.Open(Build(t, "gosplit-stripped"))
	if err != nil {
		t.Fatal(err)
	}
	defer stripped.Close()
	if syms, err := stripped.Symbols(); err == nil && len(syms) > 0 {
		t.Errorf("gosplit-stripped has %d ELF symbols", len(syms))
	}
	if stripped.Section(".gopclntab") == nil {
		t.Error("gosplit-stripped lost .gopclntab: Go symbolization would be impossible")
	}
	full, err := elf.Open(Build(t, "gosplit"))
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	syms := elfSymbols(t, full)
	for _, s := range Split("gosplit") {
		if _, ok := syms[s.Function]; !ok {
			t.Errorf("gosplit lacks symbol %s", s.Function)
		}
	}
}

func elfSymbols(t *testing.T, f *elf.File) map[string]elf.Symbol {
	t.Helper()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]elf.Symbol, len(syms))
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC {
			m[s.Name] = s
		}
	}
	return m
}

// symbolBytes returns the first n bytes of a function's code.
func symbolBytes(t *testing.T, f *elf.File, s elf.Symbol, n int) []byte {
	t.Helper()
	sec := f.Sections[s.Section]
	data, err := sec.Data()
	if err != nil {
		t.Fatal(err)
	}
	off := s.Value - sec.Addr
	return data[off : off+uint64(n)]
}

// GCC omits the frame pointer in leaves that need no stack even with
// -fno-omit-frame-pointer; the workloads are written so the functions on
// their ground-truth stacks are not such leaves.
func TestCFramePointers(t *testing.T) {
	pushRBPMovRSPRBP := []byte{0x55, 0x48, 0x89, 0xe5}
	cases := map[string][]string{
		"csplit":      {"cpu_a", "cpu_b", "cpu_c", "burn_split"},
		"cppsplit":    {"_ZN14flightrec_test6Burner5burnAEi", "_ZN14flightrec_test6Burner5burnBEi", "_ZN14flightrec_test6Burner5burnCEi", "_ZN14flightrec_test4spinImEET_S1_"},
		"kernelheavy": {KernelHeavyLoop},
		"shortlived":  {ShortBurn},
	}
	for name, fns := range cases {
		t.Run(name, func(t *testing.T) {
			f, err := elf.Open(Build(t, name))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			syms := elfSymbols(t, f)
			for _, fn := range fns {
				s, ok := syms[fn]
				if !ok {
					t.Errorf("no symbol %s", fn)
					continue
				}
				// An endbr64 may precede the frame setup on CET-enabled builds.
				code := symbolBytes(t, f, s, 8)
				if bytes.HasPrefix(code, []byte{0xf3, 0x0f, 0x1e, 0xfa}) {
					code = code[4:]
				}
				if !bytes.HasPrefix(code, pushRBPMovRSPRBP) {
					t.Errorf("%s does not start with push %%rbp; mov %%rsp,%%rbp: % x", fn, code)
				}
			}
		})
	}
}

func TestCPPDemangled(t *testing.T) {
	nm, err := exec.LookPath("nm")
	if err != nil {
		t.Skip("nm not installed")
	}
	out, err := exec.Command(nm, "-C", Build(t, "cppsplit")).CombinedOutput()
	if err != nil {
		t.Fatalf("nm -C: %v\n%s", err, out)
	}
	have := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		// "<addr> <type> <name with spaces>"
		f := strings.SplitN(l, " ", 3)
		if len(f) == 3 && (f[1] == "T" || f[1] == "W" || f[1] == "t") {
			have[f[2]] = true
		}
	}
	want := []string{CPPDriver}
	for _, s := range Split("cppsplit") {
		want = append(want, s.Function)
	}
	for _, w := range want {
		if !have[w] {
			t.Errorf("nm -C lacks %q; it has:\n%s", w, out)
		}
	}
}

var rusageLine = regexp.MustCompile(`rusage utime_us=(\d+) stime_us=(\d+) ratio=([\d.]+) reads=(\d+)`)

func TestKernelHeavy(t *testing.T) {
	for _, mode := range [][]string{nil, {"-raw"}} {
		t.Run(fmt.Sprint("args", mode), func(t *testing.T) {
			t.Parallel()
			p := Start(t, Build(t, "kernelheavy"), append([]string{"-duration", "1s"}, mode...)...)
			st, err := p.Wait()
			if err != nil {
				t.Fatalf("%v\n%s", err, p.Stderr())
			}
			m := rusageLine.FindStringSubmatch(p.Stdout())
			if m == nil {
				t.Fatalf("no rusage line in %q", p.Stdout())
			}
			ratio, _ := strconv.ParseFloat(m[3], 64)
			t.Logf("%s; wait4: user %v sys %v", m[0], st.UserTime(), st.SystemTime())
			if ratio < 4 {
				t.Errorf("stime/utime = %.2f, want ≥ 4", ratio)
			}
			if u, s := st.UserTime(), st.SystemTime(); u > 0 && float64(s)/float64(u) < 4 {
				t.Errorf("wait4 rusage: sys %v / user %v < 4", s, u)
			}
		})
	}
}

func TestShortLived(t *testing.T) {
	t.Parallel()
	p := Start(t, Build(t, "shortlived"))
	start := time.Now()
	st, err := p.Wait()
	wall := time.Since(start)
	if err != nil {
		t.Fatalf("%v\n%s", err, p.Stderr())
	}
	cpu := st.UserTime() + st.SystemTime()
	t.Logf("cpu %v (user %v sys %v), wall after ready %v", cpu, st.UserTime(), st.SystemTime(), wall)
	if cpu < 100*time.Millisecond || cpu > 300*time.Millisecond {
		t.Errorf("shortlived used %v of CPU, want 200ms ± 100ms", cpu)
	}
	if st.ExitCode() != 0 {
		t.Errorf("exit code %d", st.ExitCode())
	}
}

func TestChurn(t *testing.T) {
	t.Parallel()
	p := Start(t, Build(t, "churn"), "-rate", "100", "-duration", "1s")
	if _, err := p.Wait(); err != nil {
		t.Fatalf("%v\n%s", err, p.Stderr())
	}
	m := regexp.MustCompile(`(?m)^spawned (\d+) reaped (\d+) late (\d+)$`).FindStringSubmatch(p.Stdout())
	if m == nil {
		t.Fatalf("no summary in %q", p.Stdout())
	}
	spawned, _ := strconv.Atoi(m[1])
	reaped, _ := strconv.Atoi(m[2])
	late, _ := strconv.Atoi(m[3])
	t.Logf("spawned %d reaped %d late %d", spawned, reaped, late)
	// Generous lower bound: a loaded CI box may fall behind, never ahead.
	if spawned < 50 || spawned > 102 || reaped != spawned {
		t.Errorf("spawned %d reaped %d in 1s at -rate 100", spawned, reaped)
	}
}

func TestStartStop(t *testing.T) {
	for _, name := range []string{"gosplit", "csplit", "cppsplit"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := Start(t, Build(t, name))
			if p.Pid != p.Cmd.Process.Pid || p.Pid <= 0 {
				t.Fatalf("Pid %d, process %d", p.Pid, p.Cmd.Process.Pid)
			}
			time.Sleep(100 * time.Millisecond)
			if p.Exited() {
				t.Fatalf("exited early: %s", p.Stderr())
			}
			start := time.Now()
			st, _ := p.Stop()
			if !p.Exited() || st == nil {
				t.Fatal("Stop returned before exit")
			}
			if d := time.Since(start); d > StopTimeout {
				t.Errorf("SIGTERM ignored: stop took %v", d)
			}
		})
	}
	t.Run("duration", func(t *testing.T) {
		t.Parallel()
		p := Start(t, Build(t, "csplit"), "-duration", "300ms")
		st, err := p.Wait()
		if err != nil || st.ExitCode() != 0 {
			t.Fatalf("csplit -duration 300ms: %v", err)
		}
		if cpu := st.UserTime() + st.SystemTime(); cpu > 600*time.Millisecond {
			t.Errorf("ran %v of CPU for -duration 300ms", cpu)
		}
	})
}

func TestRepoRoot(t *testing.T) {
	root := RepoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "testdata", "workloads", "README.md")); err != nil {
		t.Errorf("RepoRoot %s: %v", root, err)
	}
}
