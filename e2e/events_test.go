package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/flightrec/flightrec/agent"
	"github.com/flightrec/flightrec/agent/events"
	"github.com/flightrec/flightrec/agent/recorder"
	"github.com/flightrec/flightrec/internal/testenv"
	"github.com/flightrec/flightrec/wire/snapshot"
)

// eventsFreq is the sampling rate of the in-process agent: high enough that
// the crasher's 300 ms of CPU get it sampled, and so read, before it dies.
const eventsFreq = 99

// eventLog collects what Config.OnEvent hands over.
type eventLog struct {
	mu  sync.Mutex
	evs []events.ProcEvent
}

func (l *eventLog) add(e events.ProcEvent, _ map[string]string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, e)
}

// wait returns the first event for which match holds, failing t after timeout.
func (l *eventLog) wait(t *testing.T, what string, timeout time.Duration, match func(events.ProcEvent) bool) events.ProcEvent {
	t.Helper()
	var found events.ProcEvent
	ok := waitFor(timeout, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		i := slices.IndexFunc(l.evs, match)
		if i >= 0 {
			found = l.evs[i]
		}
		return i >= 0
	})
	if !ok {
		t.Fatalf("no %s event within %v", what, timeout)
	}
	return found
}

// eventAgent is an agent running in the test process.
type eventAgent struct {
	*agent.Agent
	log   *eventLog
	clock *events.Clock
}

// startEventAgent runs an agent (no off-CPU, with a flight recorder) until
// the test ends.
func startEventAgent(t *testing.T) *eventAgent {
	t.Helper()
	l := &eventLog{}
	rec := recorder.New(recorder.Config{PeriodNS: int64(time.Second) / eventsFreq}, nil)
	a, err := agent.New(agent.Config{Frequency: eventsFreq, Node: "e2e", CacheDir: "", Recorder: rec, OnEvent: l.add},
		slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, func(*profile.Profile) {}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
		a.Close()
	})
	return &eventAgent{Agent: a, log: l, clock: events.NewClock()}
}

// crasherSource is a C program that either burns ~300 ms of CPU and then
// writes through a bad pointer in crash_here (a real SIGSEGV, SEGV_MAPERR at
// address 0x10), or allocates and touches 256 MiB.
const crasherSource = `
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile unsigned long sink;

__attribute__((noinline)) static void burn(double secs) {
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	do {
		for (int i = 0; i < 100000; i++)
			sink = sink * 6364136223846793005UL + 1;
		clock_gettime(CLOCK_MONOTONIC, &b);
	} while ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9 < secs);
}

/* The store to sink first: the fault is not at the function's entry. */
__attribute__((noinline)) void crash_here(volatile int *p) {
	sink = 1;
	*p = 42;
}

int main(int argc, char **argv) {
	if (argc > 1 && strcmp(argv[1], "alloc") == 0) {
		size_t n = 256UL << 20;
		volatile char *b = malloc(n); /* volatile: the stores must happen */
		for (size_t i = 0; b && i < n; i += 4096)
			b[i] = 1;
		return 0;
	}
	burn(0.3);
	crash_here((volatile int *)0x10);
	return 0;
}
`

// buildCrasher compiles crasherSource with frame pointers.
func buildCrasher(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src, bin := filepath.Join(dir, "crasher.c"), filepath.Join(dir, "crasher")
	if err := os.WriteFile(src, []byte(crasherSource), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("gcc", "-O1", "-g", "-fno-omit-frame-pointer", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	return bin
}

// near fails t unless the event's time is within 1 s of want.
func (a *eventAgent) near(t *testing.T, what string, e events.ProcEvent, want time.Time) {
	t.Helper()
	got := a.clock.Wall(e.Time)
	t.Logf("%s at %v, observed by the test at %v", what, got.Format(time.StampMicro), want.Format(time.StampMicro))
	if d := got.Sub(want); d < -time.Second || d > time.Second {
		t.Errorf("%s event at %v, %v from when the test saw it", what, got, d)
	}
}

func TestProcessEvents(t *testing.T) {
	testenv.RequireBPF(t)
	a := startEventAgent(t)

	t.Run("exec", func(t *testing.T) {
		cmd := exec.Command("/bin/true")
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		pid := uint32(cmd.Process.Pid)
		a.log.wait(t, "exec of /bin/true", 5*time.Second, func(e events.ProcEvent) bool {
			return e.Kind == events.KindExec && e.PID == pid && e.Filename == "/bin/true"
		})
	})

	t.Run("exit code", func(t *testing.T) {
		cmd := exec.Command("/bin/sh", "-c", "exit 3")
		err := cmd.Run()
		exited := time.Now()
		if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 3 {
			t.Fatalf("sh -c 'exit 3': %v", err)
		}
		pid := uint32(cmd.Process.Pid)
		e := a.log.wait(t, "exit", 5*time.Second, func(e events.ProcEvent) bool { return e.Kind == events.KindExit && e.PID == pid })
		if code, sig, _ := e.ExitStatus(); code != 3 || sig != 0 {
			t.Errorf("exit event %+v: code %d signal %d, want code 3", e, code, sig)
		}
		a.near(t, "exit", e, exited)
	})

	t.Run("segfault", func(t *testing.T) { testSegfault(t, a, buildCrasher(t)) })
	t.Run("oom kill", func(t *testing.T) { testOOMKill(t, a, buildCrasher(t)) })
}

// testSegfault: a real fault yields a SIGSEGV event (SEGV_MAPERR, the
// address) whose crashing stack, in the flight recorder's snapshot taken
// after the process is gone, has the faulting function; then an exit by
// signal 11.
func testSegfault(t *testing.T, a *eventAgent, bin string) {
	cmd := exec.Command(bin)
	_ = cmd.Run()
	died := time.Now()
	pid := uint32(cmd.Process.Pid)
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGSEGV {
		t.Fatalf("crasher: %v, want death by SIGSEGV", cmd.ProcessState)
	}
	const segvMapErr = 1
	sig := a.log.wait(t, "SIGSEGV", 5*time.Second, func(e events.ProcEvent) bool { return e.Kind == events.KindSignal && e.PID == pid })
	if sig.Signal != 11 || sig.SiCode != segvMapErr || sig.Addr != 0x10 || sig.StackHash == 0 {
		t.Errorf("signal event %+v: want signal 11, si_code SEGV_MAPERR, addr 0x10 and a stack", sig)
	}
	a.near(t, "SIGSEGV", sig, died)
	exit := a.log.wait(t, "exit", 5*time.Second, func(e events.ProcEvent) bool { return e.Kind == events.KindExit && e.PID == pid })
	if _, s, _ := exit.ExitStatus(); s != 11 {
		t.Errorf("exit event %+v: signal %d, want 11", exit, s)
	}

	snap := a.snapshot(t, a.clock.Wall(sig.Time))
	for _, e := range snap.Events {
		if e.Kind != "signal" || e.PID != pid {
			continue
		}
		if e.Stack < 0 {
			t.Fatalf("snapshot signal event %+v has no stack", e)
		}
		names := stackFunctions(snap, e.Stack)
		t.Logf("crashing stack: %q", names)
		if !slices.Contains(names, "crash_here") {
			t.Errorf("crashing stack %q lacks crash_here", names)
		}
		return
	}
	t.Fatalf("snapshot has no signal event of pid %d: %+v", pid, snap.Events)
}

// snapshot asks for [at-5s, at+500ms] and waits for it.
func (a *eventAgent) snapshot(t *testing.T, at time.Time) *snapshot.Snapshot {
	t.Helper()
	meta := &snapshot.Snapshot{ID: "e2e-" + strconv.FormatInt(at.UnixNano(), 10), Node: "e2e", Trigger: snapshot.Trigger{Kind: "signal", TimeNS: at.UnixNano()}}
	select {
	case r := <-a.RequestSnapshot(meta, at, 5*time.Second, 500*time.Millisecond):
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		if err := r.Snapshot.Validate(); err != nil {
			t.Fatalf("invalid snapshot: %v", err)
		}
		return r.Snapshot
	case <-time.After(10 * time.Second):
		t.Fatal("no snapshot 10 s after the request")
		return nil
	}
}

func stackFunctions(s *snapshot.Snapshot, stack int32) []string {
	var out []string
	for _, f := range s.Stacks[stack] {
		out = append(out, s.Frames[f].Function)
	}
	return out
}

// testOOMKill runs the allocator in a cgroup v1 memory group limited to
// 32 MiB: the OOM killer picks it, and the event names its pid.
func testOOMKill(t *testing.T, a *eventAgent, bin string) {
	cg := memoryCgroup(t, 32<<20)
	cmd := exec.Command("/bin/sh", "-c", `echo $$ > "$1/cgroup.procs" && exec "$2" alloc`, "sh", cg, bin)
	_ = cmd.Run()
	pid := uint32(cmd.Process.Pid)
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("allocator in a 32 MiB group: %v, want killed by the OOM killer", cmd.ProcessState)
	}
	a.log.wait(t, "oom_kill", 5*time.Second, func(e events.ProcEvent) bool { return e.Kind == events.KindOOMKill && e.PID == pid })
	exit := a.log.wait(t, "exit", 5*time.Second, func(e events.ProcEvent) bool { return e.Kind == events.KindExit && e.PID == pid })
	if _, s, _ := exit.ExitStatus(); s != 9 {
		t.Errorf("exit event %+v: signal %d, want 9", exit, s)
	}
}

// memoryCgroup creates a cgroup v1 memory group with the limit, removed when
// the test ends.
func memoryCgroup(t *testing.T, limit int64) string {
	t.Helper()
	const root = "/sys/fs/cgroup/memory"
	if _, err := os.Stat(filepath.Join(root, "memory.limit_in_bytes")); err != nil {
		if os.Getenv("FLIGHTREC_REQUIRE_BPF") == "1" {
			t.Fatalf("no cgroup v1 memory hierarchy at %s to OOM-kill in: %v", root, err)
		}
		t.Skipf("no cgroup v1 memory hierarchy at %s: %v", root, err)
	}
	var r [4]byte
	_, _ = rand.Read(r[:])
	dir := filepath.Join(root, "flightrec-e2e-"+hex.EncodeToString(r[:]))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Remove(dir); err != nil {
			t.Errorf("remove cgroup: %v", err)
		}
	})
	if err := os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), []byte(strconv.FormatInt(limit, 10)), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
