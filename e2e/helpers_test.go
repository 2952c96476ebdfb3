package e2e

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/flightrec/flightrec/internal/testworkload"
)

// agentBin and serverBin are the binaries TestMain built for this run.
var agentBin, serverBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "flightrec-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	agentBin = filepath.Join(dir, "flightrec-agent")
	// The import path builds the same package as ./cmd/flightrec-agent from
	// the repository root (testworkload.RepoRoot needs a testing.TB, which
	// TestMain does not have), from any directory inside the module.
	serverBin = filepath.Join(dir, "flightrec")
	for bin, pkg := range map[string]string{agentBin: "/cmd/flightrec-agent", serverBin: "/cmd/flightrec"} {
		cmd := exec.Command(goTool(), "build", "-o", bin, testworkload.Module+pkg)
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: building %s: %v\n%s", pkg, err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// syncBuffer is a bytes.Buffer that a running process writes while the
// test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// agentProc is a running flightrec-agent (or any command run through
// startCmd).
type agentProc struct {
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
	done           chan struct{}
	code           int // exit code, -1 if killed by a signal; valid after done
}

// startAgent starts flightrec-agent with args; t's cleanup kills it if the
// test did not wait for it.
func startAgent(t *testing.T, args ...string) *agentProc {
	t.Helper()
	return startCmd(t, agentBin, args...)
}

func startCmd(t *testing.T, name string, args ...string) *agentProc {
	t.Helper()
	a := &agentProc{cmd: exec.Command(name, args...), done: make(chan struct{})}
	a.cmd.Stdout, a.cmd.Stderr = &a.stdout, &a.stderr
	if err := a.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = a.cmd.Wait()
		a.code = a.cmd.ProcessState.ExitCode()
		close(a.done)
	}()
	t.Cleanup(func() {
		if !a.exited() {
			_ = a.cmd.Process.Kill()
			<-a.done
		}
	})
	return a
}

func (a *agentProc) exited() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// wait returns the exit code, failing t if the process outlives timeout.
func (a *agentProc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-a.done:
		return a.code
	case <-time.After(timeout):
		_ = a.cmd.Process.Kill()
		<-a.done
		t.Fatalf("%q still running after %v; killed\nstdout:\n%s\nstderr:\n%s", a.cmd.Args, timeout, &a.stdout, &a.stderr)
		return -1
	}
}

// terminate sends SIGTERM and returns the exit code.
func (a *agentProc) terminate(t *testing.T, timeout time.Duration) int {
	t.Helper()
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM %q: %v", a.cmd.Args, err)
	}
	return a.wait(t, timeout)
}

func (a *agentProc) String() string {
	return fmt.Sprintf("%q exit %d\nstdout:\n%s\nstderr:\n%s", a.cmd.Args, a.code, &a.stdout, &a.stderr)
}

// runAgent runs flightrec-agent to completion.
func runAgent(t *testing.T, args ...string) *agentProc {
	t.Helper()
	a := startAgent(t, args...)
	a.wait(t, time.Minute)
	return a
}

// startRecord starts `flightrec-agent record args...`; the returned function
// waits for it, requires exit 0 and returns the path of the profile it wrote.
func startRecord(t *testing.T, args ...string) (wait func() string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "cpu.pb.gz")
	a := startAgent(t, append([]string{"record", "-o", out}, args...)...)
	return func() string {
		t.Helper()
		if code := a.wait(t, time.Minute); code != 0 {
			t.Fatalf("record failed: %v", a)
		}
		t.Logf("agent: %s", strings.TrimSpace(a.stdout.String()))
		return out
	}
}

func record(t *testing.T, args ...string) *profile.Profile {
	t.Helper()
	return readProfile(t, startRecord(t, args...)())
}

// recordPID records one process at 499 Hz for d.
func recordPID(t *testing.T, pid int, d time.Duration, extra ...string) *profile.Profile {
	t.Helper()
	args := []string{"--pid", strconv.Itoa(pid), "--frequency", "499", "--duration", d.String()}
	return record(t, append(args, extra...)...)
}

func readProfile(t *testing.T, path string) *profile.Profile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := profile.ParseData(b)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	if n := len(p.SampleType); n >= 2 && (p.SampleType[n-2].Type != "samples" || p.SampleType[n-2].Unit != "count") {
		t.Fatalf("%s: sample types %v: count() expects samples/count second to last", path, p.SampleType)
	}
	return p
}

// label returns a sample's (single) string label.
func label(s *profile.Sample, key string) string {
	if v := s.Label[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// pidSamples returns the samples labelled with pid.
func pidSamples(p *profile.Profile, pid int) []*profile.Sample {
	want := strconv.Itoa(pid)
	var out []*profile.Sample
	for _, s := range p.Sample {
		if label(s, "pid") == want {
			out = append(out, s)
		}
	}
	return out
}

// weight sums the sample count over ss.
func weight(ss []*profile.Sample) int64 {
	var n int64
	for _, s := range ss {
		n += count(s)
	}
	return n
}

// count is s's sample count. The agent's profiles carry [off_cpu, samples,
// cpu] (docs/wire.md): samples/count is second to last, as in the older
// [samples, cpu], and readProfile checks it by name; a single-valued
// profile (the server's) counts its one value. Off-CPU samples count 0.
func count(s *profile.Sample) int64 {
	if n := len(s.Value); n >= 2 {
		return s.Value[n-2]
	}
	return s.Value[0]
}

// percent is the weighted share of ss for which pred holds.
func percent(ss []*profile.Sample, pred func(*profile.Sample) bool) float64 {
	var hit int64
	for _, s := range ss {
		if pred(s) {
			hit += count(s)
		}
	}
	if total := weight(ss); total > 0 {
		return 100 * float64(hit) / float64(total)
	}
	return 0
}

// frames lists a sample's function names innermost first, inlined frames
// included, as pprof orders them (leaf Location first, Line[0] innermost).
func frames(s *profile.Sample) []string {
	var out []string
	for _, loc := range s.Location {
		for _, l := range loc.Line {
			if l.Function != nil {
				out = append(out, l.Function.Name)
			}
		}
	}
	return out
}

func hasFunction(fn string) func(*profile.Sample) bool {
	return func(s *profile.Sample) bool {
		for _, loc := range s.Location {
			for _, l := range loc.Line {
				if l.Function != nil && l.Function.Name == fn {
					return true
				}
			}
		}
		return false
	}
}

// symbolizedLeaf: the innermost location has a function name.
func symbolizedLeaf(s *profile.Sample) bool {
	if len(s.Location) == 0 {
		return false
	}
	for _, l := range s.Location[0].Line {
		if l.Function != nil && l.Function.Name != "" {
			return true
		}
	}
	return false
}

func hasKernelFrame(s *profile.Sample) bool {
	for _, loc := range s.Location {
		if loc.Mapping != nil && loc.Mapping.File == "[kernel.kallsyms]" {
			return true
		}
	}
	return false
}

func filter(ss []*profile.Sample, pred func(*profile.Sample) bool) []*profile.Sample {
	var out []*profile.Sample
	for _, s := range ss {
		if pred(s) {
			out = append(out, s)
		}
	}
	return out
}

// checkShares asserts each function's inclusive share of ss within tol
// points of the ground truth.
func checkShares(t *testing.T, ss []*profile.Sample, want []testworkload.Share, tol float64) {
	t.Helper()
	for _, w := range want {
		got := percent(ss, hasFunction(w.Function))
		t.Logf("%s: %.2f%% of %d samples (truth %.2f%%)", w.Function, got, weight(ss), w.Percent)
		if got < w.Percent-tol || got > w.Percent+tol {
			t.Errorf("%s has %.2f%% of the pid's %d samples, want %.2f%% ± %.0f", w.Function, got, weight(ss), w.Percent, tol)
		}
	}
}

// atLeast fails t unless got ≥ min percent; what names the quantity.
func atLeast(t *testing.T, what string, got, min float64, n int64) {
	t.Helper()
	t.Logf("%s: %.2f%% of %d samples", what, got, n)
	if got < min {
		t.Errorf("%s: %.2f%% of %d samples, want ≥ %.0f%%", what, got, n, min)
	}
}

// gnuBuildID reads the NT_GNU_BUILD_ID note of the ELF file at path.
func gnuBuildID(t *testing.T, path string) string {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, sec := range f.Sections {
		if sec.Type != elf.SHT_NOTE {
			continue
		}
		b, err := sec.Data()
		if err != nil {
			t.Fatal(err)
		}
		// Notes: namesz, descsz, type, then name and desc, each 4-aligned.
		for len(b) >= 12 {
			namesz, descsz, typ := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:]), binary.LittleEndian.Uint32(b[8:])
			name := 12 + (namesz+3)&^3
			end := name + (descsz+3)&^3
			if uint32(len(b)) < end {
				break
			}
			if typ == 3 && string(b[12:12+namesz]) == "GNU\x00" {
				return hex.EncodeToString(b[name : name+descsz])
			}
			b = b[end:]
		}
	}
	return ""
}

func hasSymtab(t *testing.T, path string) bool {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return f.Section(".symtab") != nil
}

// realPath is path as /proc/PID/exe shows it: symlinks resolved.
func realPath(t *testing.T, path string) string {
	t.Helper()
	p, err := filepath.EvalSymlinks(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// freeAddr returns a loopback address nobody listens on (any more).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// httpGet returns status and body, or an error (e.g. nothing listening yet).
func httpGet(url string) (int, string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// metricValue finds an unlabelled sample of name in Prometheus text format.
func metricValue(body, name string) (float64, bool) {
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == name {
			v, err := strconv.ParseFloat(f[1], 64)
			return v, err == nil
		}
	}
	return 0, false
}

// waitFor polls cond every 100 ms until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(timeout); ; time.Sleep(100 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}
