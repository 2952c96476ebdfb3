package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// child is a process the bench started, in its own process group, killed
// with the bench (Pdeathsig) if the bench dies without cleaning up.
type child struct {
	name    string
	cmd     *exec.Cmd
	started time.Time
	done    chan struct{}

	mu  sync.Mutex
	out strings.Builder // stdout and stderr, interleaved
}

// startChild starts argv, with env added to the bench's environment, and
// waits until a line of its output contains ready (when not empty).
func startChild(ctx context.Context, name string, argv, env []string, ready string) (*child, error) {
	c := &child{name: name, cmd: exec.Command(argv[0], argv[1:]...), done: make(chan struct{})}
	if len(env) > 0 {
		c.cmd.Env = append(os.Environ(), env...)
	}
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	c.cmd.Stdout, c.cmd.Stderr = pw, pw
	c.started = time.Now()
	err = onSpawnThread(c.cmd.Start)
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	readyc := make(chan struct{})
	go c.read(pr, ready, func() { close(readyc) })
	go func() { _ = c.cmd.Wait(); close(c.done) }()
	if ready == "" {
		return c, nil
	}
	return c, c.awaitReady(ctx, readyc, ready)
}

func (c *child) awaitReady(ctx context.Context, readyc <-chan struct{}, ready string) error {
	timer := time.NewTimer(60 * time.Second)
	defer timer.Stop()
	select {
	case <-readyc:
		return nil
	case <-c.done:
		return fmt.Errorf("%s exited before %q: %v\n%s", c.name, ready, c.cmd.ProcessState, c.output())
	case <-timer.C:
		c.stop(5 * time.Second)
		return fmt.Errorf("%s: no %q after 60s\n%s", c.name, ready, c.output())
	case <-ctx.Done():
		c.stop(5 * time.Second)
		return ctx.Err()
	}
}

// read collects the child's output and calls ready once, at the first line
// containing readyLine.
func (c *child) read(r io.ReadCloser, readyLine string, ready func()) {
	defer r.Close()
	sent := readyLine == ""
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		c.mu.Lock()
		c.out.WriteString(line)
		c.mu.Unlock()
		if !sent && strings.Contains(line, readyLine) {
			sent = true
			ready()
		}
		if err != nil {
			return
		}
	}
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.String()
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to grace, then kills the process group; it
// reports whether the child exited within grace.
func (c *child) stop(grace time.Duration) bool {
	clean := true
	if !c.exited() {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(grace):
			clean = false
		}
	}
	_ = syscall.Kill(-c.pid(), syscall.SIGKILL)
	<-c.done
	return clean
}

// Pdeathsig fires when the parent thread exits (Go issue 27505), so every
// child is started from one locked thread that lives as long as the bench.
var spawnRequests = make(chan func())

func init() {
	go func() {
		runtime.LockOSThread()
		for f := range spawnRequests {
			f()
		}
	}()
}

func onSpawnThread(start func() error) error {
	errc := make(chan error, 1)
	spawnRequests <- func() { errc <- start() }
	return <-errc
}

// processCPU is user+sys of every thread of pid, live and exited, from the
// process CPU clock (nanosecond resolution; /proc/PID/stat has 10 ms).
func processCPU(pid int) (time.Duration, error) {
	clock := int32(^uint32(pid)<<3 | 2) // MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)
	var ts unix.Timespec
	if err := unix.ClockGettime(clock, &ts); err != nil {
		return 0, fmt.Errorf("CPU clock of process %d: %w", pid, err)
	}
	return time.Duration(ts.Nano()), nil
}

// statusFields returns the numeric "Key: N [kB]" fields of a status file
// (kB values in bytes).
func statusFields(path string) (map[string]uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		f := strings.Fields(v)
		if !ok || len(f) == 0 {
			continue
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			continue
		}
		if len(f) == 2 && f[1] == "kB" {
			n <<= 10
		}
		out[k] = n
	}
	return out, nil
}

// taskSwitches sums the context switches (voluntary and not) of pid's live
// threads.
func taskSwitches(pid int) (uint64, error) {
	paths, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(paths) == 0 {
		return 0, fmt.Errorf("threads of %d: none (%v)", pid, err)
	}
	var n uint64
	for _, p := range paths {
		f, err := statusFields(p)
		if err != nil {
			return 0, err
		}
		n += f["voluntary_ctxt_switches"] + f["nonvoluntary_ctxt_switches"]
	}
	return n, nil
}

// nodeSwitches is /proc/stat ctxt: context switches on the node since boot.
func nodeSwitches() (uint64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "ctxt "); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("no ctxt line in /proc/stat")
}

// bpfRunNs sums run_time_ns over the BPF programs among pid's descriptors
// (each program once); kernel.bpf_stats_enabled must be on.
func bpfRunNs(pid int) (ns uint64, progs int) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, _ := os.ReadDir(dir)
	seen := map[string]bool{}
	for _, e := range ents {
		if t, _ := os.Readlink(filepath.Join(dir, e.Name())); t != "anon_inode:bpf-prog" {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, e.Name()))
		if err != nil {
			continue
		}
		info := map[string]string{}
		for _, line := range bytes.Split(b, []byte("\n")) {
			if k, v, ok := strings.Cut(string(line), ":"); ok {
				info[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
		if id := info["prog_id"]; !seen[id] {
			seen[id] = true
			n, _ := strconv.ParseUint(info["run_time_ns"], 10, 64)
			ns += n
		}
	}
	return ns, len(seen)
}

const bpfStatsPath = "/proc/sys/kernel/bpf_stats_enabled"

// enableBPFStats turns kernel.bpf_stats_enabled on and returns the restore.
func enableBPFStats() (restore func(), err error) {
	old, err := os.ReadFile(bpfStatsPath)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(bpfStatsPath, []byte("1\n"), 0o644); err != nil {
		return nil, fmt.Errorf("sysctl kernel.bpf_stats_enabled=1: %w", err)
	}
	return func() { _ = os.WriteFile(bpfStatsPath, old, 0o644) }, nil
}
