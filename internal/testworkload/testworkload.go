// Package testworkload builds the ground-truth workloads in testdata/workloads
// for tests and describes what each should show.
//
// The workloads burn CPU (or kernel time) in named functions in proportions
// fixed by work amounts, so a profiler test can assert "main.cpuA has 60% ±
// 3 points of this pid's samples" without trusting the profiler to tell it
// what the truth is. testdata/workloads/README.md documents each workload's
// flags and ground truth; this package is the programmatic view of it.
//
// Typical use:
//
//	bin := testworkload.Build(t, "gosplit")
//	p := testworkload.Start(t, bin, "-duration", "10s")
//	// ... sample p.Pid ...
//	for _, s := range testworkload.Split("gosplit") { ... }
package testworkload

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Module is the module path whose go.mod marks the repository root.
const Module = "github.com/flightrec/flightrec"

// Ground truth that is not a split, as a profiler should name it.
const (
	// GoInlinedHelper is inlined into main.cpuA/B/C; about 90% of their
	// samples fall on its lines, so a profiler that expands inlined calls
	// should show it as the innermost frame of most gosplit stacks.
	GoInlinedHelper = "main.mix"
	// GoLeaf is gosplit -mode leaf's frameless leaf; it gets ≥ 95% of the
	// samples (measured ~99%).
	GoLeaf = "main.hotLeaf"
	// GoLeafCaller must appear as GoLeaf's caller in (nearly) every
	// leaf-mode stack, although a frame-pointer walk alone skips it.
	GoLeafCaller = "main.leafCaller"
	// CInlinedHelper and CPPInlinedHelper are the always_inline helpers of
	// csplit and cppsplit, visible only through DWARF inline info.
	CInlinedHelper   = "mix"
	CPPInlinedHelper = "flightrec_test::mix<unsigned long>"
	// CPPDriver is cppsplit's common caller of the burners (nm -C spelling).
	CPPDriver = "unsigned long flightrec_test::spin<unsigned long>(unsigned long)"
	// KernelHeavyLoop holds all of kernelheavy's user-space time and is on
	// every one of its stacks (under libc's read unless -raw).
	KernelHeavyLoop = "read_zero_loop"
	// ShortBurn is where shortlived spends its CPU.
	ShortBurn = "short_burn"
)

// KernelHeavyFrames are the kernel functions on kernelheavy's stacks,
// outermost first, as /proc/kallsyms names them on Linux 6.18 x86-64
// (measured with perf). read_zero holds ~97% of all samples as self time:
// clear_user is inlined into it. The syscall dispatch in between
// (x64_sys_call, __x64_sys_read) is tail-called or inlined and does not show;
// older or differently configured kernels differ in those middle frames, so
// assert on vfs_read and read_zero, not on the whole chain.
var KernelHeavyFrames = []string{
	"entry_SYSCALL_64_after_hwframe",
	"do_syscall_64",
	"ksys_read",
	"vfs_read",
	"read_zero",
}

// Share is one function's expected share of a workload's samples, in percent.
type Share struct {
	Function string
	Percent  float64
}

type lang int

const (
	langGo lang = iota
	langC
	langCXX
)

type workload struct {
	lang    lang
	dir     string   // under testdata/workloads
	src     string   // source file within dir (C/C++)
	ldflags string   // Go only
	funcs   []string // split functions as a profiler names them, or nil
}

var workloads = map[string]workload{
	"gosplit":          {lang: langGo, dir: "gosplit", funcs: []string{"main.cpuA", "main.cpuB", "main.cpuC"}},
	"gosplit-stripped": {lang: langGo, dir: "gosplit", ldflags: "-s -w", funcs: []string{"main.cpuA", "main.cpuB", "main.cpuC"}},
	"csplit":           {lang: langC, dir: "csplit", src: "csplit.c", funcs: []string{"cpu_a", "cpu_b", "cpu_c"}},
	"cppsplit": {lang: langCXX, dir: "cppsplit", src: "cppsplit.cpp", funcs: []string{
		"flightrec_test::Burner::burnA(int)",
		"flightrec_test::Burner::burnB(int)",
		"flightrec_test::Burner::burnC(int)",
	}},
	"kernelheavy": {lang: langC, dir: "kernelheavy", src: "kernelheavy.c"},
	"shortlived":  {lang: langC, dir: "shortlived", src: "shortlived.c"},
	"churn":       {lang: langC, dir: "churn", src: "churn.c"},
	// pyrosplit pushes its own profiles with pyroscope-go: the split is of
	// its CPU profile; tenant=a runs two thirds of the work, tenant=b one.
	"pyrosplit": {lang: langGo, dir: "pyrosplit", funcs: []string{"main.cpuA", "main.cpuB", "main.cpuC"}},
}

// Names lists every workload Build accepts.
func Names() []string {
	return []string{"gosplit", "gosplit-stripped", "csplit", "cppsplit", "kernelheavy", "shortlived", "churn", "pyrosplit"}
}

// DefaultSplit is the work ratio of the split workloads when run without -split.
var DefaultSplit = [3]int{60, 30, 10}

// Split returns the expected share of each burner of workload name when run
// with default flags, as a profiler should name the functions; nil for
// workloads without a split (churn).
//
// Shares are of the workload process's own samples and are inclusive (the
// function is on the stack); for the split burners self and inclusive agree
// to within ~0.5 point, since the burner's callees are an inlined helper and
// one tiny call per unit. kernelheavy and shortlived report their single
// function at 100%. Expect sampling noise of sqrt(p(1-p)/n): ±1.5 points at
// 1000 samples for a 60% share.
func Split(name string) []Share {
	switch name {
	case "kernelheavy":
		return []Share{{KernelHeavyLoop, 100}}
	case "shortlived":
		return []Share{{ShortBurn, 100}}
	}
	return SplitOf(name, DefaultSplit, 0)
}

// SplitOf is Split for a workload run with -split a,b,c and, for gosplit,
// -extra N (cpuB does N% more work per unit; -mode extra without -extra
// means N=50). extra must be 0 for the C and C++ workloads.
func SplitOf(name string, split [3]int, extra int) []Share {
	w, ok := workloads[name]
	if !ok || w.funcs == nil {
		return nil
	}
	if extra != 0 && w.lang != langGo {
		return nil
	}
	cost := [3]float64{float64(split[0]), float64(split[1]) * (1 + float64(extra)/100), float64(split[2])}
	total := cost[0] + cost[1] + cost[2]
	if total == 0 {
		return nil
	}
	out := make([]Share, 3)
	for i := range out {
		out[i] = Share{w.funcs[i], 100 * cost[i] / total}
	}
	return out
}

// RepoRoot walks up from the working directory to the go.mod of Module.
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	modLine := regexp.MustCompile(`(?m)^module\s+"?` + regexp.QuoteMeta(Module) + `"?\s*$`)
	for dir := wd; ; {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && modLine.Match(b) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("testworkload: no go.mod for %s above %s", Module, wd)
		}
		dir = parent
	}
}

type buildResult struct {
	once sync.Once
	path string
	err  error
}

var (
	buildsMu sync.Mutex
	builds   = map[string]*buildResult{}
)

// Build compiles workload name (one of Names) once per test binary and
// returns the binary's path. Binaries are cached under os.TempDir keyed by a
// hash of the sources, build flags and compiler version, so concurrent tests
// and test processes share them; each build goes to a private directory and
// is renamed into place, so a reader never sees a half-written binary. Fails
// the test with the compiler output on error.
func Build(t testing.TB, name string) string {
	t.Helper()
	w, ok := workloads[name]
	if !ok {
		t.Fatalf("testworkload: unknown workload %q (have %v)", name, Names())
	}
	buildsMu.Lock()
	r := builds[name]
	if r == nil {
		r = &buildResult{}
		builds[name] = r
	}
	buildsMu.Unlock()
	r.once.Do(func() { r.path, r.err = build(name, w) })
	if r.err != nil {
		t.Fatalf("testworkload: building %s: %v", name, r.err)
	}
	return r.path
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// command returns the compiler invocation for w, writing to out.
func (w workload) command(root, out string) []string {
	wdir := filepath.Join(root, "testdata", "workloads")
	switch w.lang {
	case langGo:
		args := []string{goTool(), "build", "-o", out}
		if w.ldflags != "" {
			args = append(args, "-ldflags="+w.ldflags)
		}
		return append(args, "./testdata/workloads/"+w.dir)
	case langCXX:
		return []string{"g++", "-O1", "-fno-omit-frame-pointer", "-g", "-I", filepath.Join(wdir, "common"), "-o", out, filepath.Join(wdir, w.dir, w.src)}
	default:
		return []string{"gcc", "-O1", "-fno-omit-frame-pointer", "-g", "-I", filepath.Join(wdir, "common"), "-o", out, filepath.Join(wdir, w.dir, w.src)}
	}
}

func buildEnv(w workload) []string {
	env := os.Environ()
	if w.lang == langGo {
		// Pure Go, static: nothing in the binary depends on the host's libc.
		env = append(env, "CGO_ENABLED=0")
	}
	return env
}

func build(name string, w workload) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	key, err := cacheKey(root, name, w)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(os.TempDir(), "flightrec-testworkload", name+"-"+key[:16])
	final := filepath.Join(dir, name)
	if fi, err := os.Stat(final); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return final, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, name)
	argv := w.command(root, out)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = root
	cmd.Env = buildEnv(w)
	if output, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, output)
	}
	// rename(2) is atomic: concurrent builders of the same key each install a
	// complete, identical binary and the last one wins.
	if err := os.Rename(out, final); err != nil {
		return "", err
	}
	return final, nil
}

// cacheKey hashes everything that determines the binary: sources, the build
// command and the compiler's version.
func cacheKey(root, name string, w workload) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "recipe v1\n%s\n%q\n", name, w.command(root, "OUT"))
	dirs := []string{filepath.Join(root, "testdata", "workloads", w.dir)}
	var compiler []string
	switch w.lang {
	case langGo:
		dirs = append(dirs, filepath.Join(root, "go.mod"))
		compiler = []string{goTool(), "version"}
	case langC:
		dirs = append(dirs, filepath.Join(root, "testdata", "workloads", "common"))
		compiler = []string{"gcc", "--version"}
	case langCXX:
		dirs = append(dirs, filepath.Join(root, "testdata", "workloads", "common"))
		compiler = []string{"g++", "--version"}
	}
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(path string, de fs.DirEntry, err error) error {
			if err != nil || de.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			fmt.Fprintf(h, "file %s %d\n", rel, len(b))
			h.Write(b)
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	cmd := exec.Command(compiler[0], compiler[1:]...)
	cmd.Env = buildEnv(w)
	v, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s: %v\n%s", strings.Join(compiler, " "), err, v)
	}
	h.Write(v)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ReadyTimeout bounds how long Start waits for a workload's "ready <pid>".
const ReadyTimeout = 30 * time.Second

// StopTimeout is how long Stop waits after SIGTERM before SIGKILL.
const StopTimeout = 5 * time.Second

// Proc is a running workload started by Start.
type Proc struct {
	// Pid is the workload's process id, as it reported in its ready line.
	Pid int
	// Cmd is the underlying command; do not call its Wait.
	Cmd *exec.Cmd

	stdout *readyWriter
	stderr lockedBuffer
	done   chan struct{}
	state  *os.ProcessState
	err    error
}

// Start runs bin with args, waits up to ReadyTimeout for its "ready <pid>"
// line and returns the running process. The process is stopped (SIGTERM,
// then SIGKILL) in t.Cleanup if it is still running.
func Start(t testing.TB, bin string, args ...string) *Proc {
	t.Helper()
	p := &Proc{
		Cmd:    exec.Command(bin, args...),
		stdout: newReadyWriter(),
		done:   make(chan struct{}),
	}
	p.Cmd.Stdout = p.stdout
	p.Cmd.Stderr = &p.stderr
	// Children that inherit our pipes (churn's, if it misbehaved) must not
	// keep Wait from returning.
	p.Cmd.WaitDelay = 5 * time.Second
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("testworkload: starting %s: %v", bin, err)
	}
	go func() {
		p.err = p.Cmd.Wait()
		p.state = p.Cmd.ProcessState
		close(p.done)
	}()
	t.Cleanup(func() { p.Stop() })

	timer := time.NewTimer(ReadyTimeout)
	defer timer.Stop()
	select {
	case pid := <-p.stdout.ready:
		if pid != p.Cmd.Process.Pid {
			p.Stop()
			t.Fatalf("testworkload: %s says ready %d, but its pid is %d", bin, pid, p.Cmd.Process.Pid)
		}
		p.Pid = pid
		return p
	case <-p.done:
		t.Fatalf("testworkload: %s %q exited before ready: %v\nstdout:\n%s\nstderr:\n%s",
			bin, args, p.err, p.Stdout(), p.Stderr())
	case <-timer.C:
		p.Stop()
		t.Fatalf("testworkload: %s %q not ready after %v\nstdout:\n%s\nstderr:\n%s",
			bin, args, ReadyTimeout, p.Stdout(), p.Stderr())
	}
	return nil
}

// Wait waits for the process to exit and returns its state (with rusage:
// UserTime, SystemTime, SysUsage) and exec's error (an *exec.ExitError on
// a non-zero exit). It may be called any number of times.
func (p *Proc) Wait() (*os.ProcessState, error) {
	<-p.done
	return p.state, p.err
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) error { return p.Cmd.Process.Signal(sig) }

// Stop ends the process if it is still running: SIGTERM (the C workloads
// finish cleanly and print their exit summaries), then SIGKILL after
// StopTimeout. It returns what Wait returns.
func (p *Proc) Stop() (*os.ProcessState, error) {
	if !p.Exited() {
		_ = p.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(StopTimeout):
			_ = p.Cmd.Process.Kill()
		}
	}
	return p.Wait()
}

// Stdout returns what the process has printed on stdout so far, including
// the ready line.
func (p *Proc) Stdout() string { return p.stdout.String() }

// Stderr returns what the process has printed on stderr so far.
func (p *Proc) Stderr() string { return p.stderr.String() }

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// readyWriter keeps all output and reports the pid of the first
// "ready <pid>" line.
type readyWriter struct {
	lockedBuffer
	scanned int
	sent    bool
	ready   chan int
}

func newReadyWriter() *readyWriter { return &readyWriter{ready: make(chan int, 1)} }

func (w *readyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, _ := w.buf.Write(p)
	for !w.sent {
		rest := w.buf.Bytes()[w.scanned:]
		nl := bytes.IndexByte(rest, '\n')
		if nl < 0 {
			break
		}
		line := strings.TrimSpace(string(rest[:nl]))
		w.scanned += nl + 1
		if f := strings.Fields(line); len(f) == 2 && f[0] == "ready" {
			if pid, err := strconv.Atoi(f[1]); err == nil {
				w.sent = true
				w.ready <- pid
			}
		}
	}
	return n, nil
}

// Calibration is one line of a split workload's -calibrate output: the CPU
// time one unit of work costs in Function.
type Calibration struct {
	Function  string
	NsPerUnit float64
	Units     int
}

// Calibrate runs a split workload's test-only -calibrate mode (each burner
// timed in isolation with the thread CPU clock, round-robin over rounds) and
// returns the per-unit costs in burner order. Extra args (e.g. "-mode",
// "extra") go before -calibrate.
func Calibrate(t testing.TB, bin string, rounds int, args ...string) []Calibration {
	t.Helper()
	argv := append(append([]string{}, args...), "-calibrate", strconv.Itoa(rounds))
	cmd := exec.Command(bin, argv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("testworkload: %s %q: %v\n%s%s", bin, argv, err, out, stderr.Bytes())
	}
	var cal []Calibration
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 || f[0] != "calib" {
			continue
		}
		ns, err1 := strconv.ParseFloat(f[2], 64)
		units, err2 := strconv.Atoi(f[3])
		if err := errors.Join(err1, err2); err != nil {
			t.Fatalf("testworkload: bad calibration line %q: %v", sc.Text(), err)
		}
		cal = append(cal, Calibration{f[1], ns, units})
	}
	if len(cal) != 3 {
		t.Fatalf("testworkload: %s %q: want 3 calibration lines, got:\n%s", bin, argv, out)
	}
	return cal
}

// MeasuredSplit turns per-unit costs and a work ratio into the CPU shares a
// profiler should see, in percent.
func MeasuredSplit(cal []Calibration, split [3]int) []Share {
	var total float64
	for i, c := range cal {
		total += c.NsPerUnit * float64(split[i])
	}
	out := make([]Share, len(cal))
	for i, c := range cal {
		out[i] = Share{c.Function, 100 * c.NsPerUnit * float64(split[i]) / total}
	}
	return out
}
