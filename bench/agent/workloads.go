package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// child is a process the bench started. Every child runs in its own process
// group (so its own children can be killed with it) and gets SIGKILL if the
// bench dies without cleaning up.
type child struct {
	name    string
	cmd     *exec.Cmd
	started time.Time // just before exec
	done    chan struct{}

	mu     sync.Mutex
	output strings.Builder // stdout and stderr, interleaved
	state  *os.ProcessState
}

// startChild starts argv and, when readyLine is not empty, waits until a
// line of its output starts with readyLine (and calls onReady with that
// line, from the output reader, before anything else happens). It stops the
// child again if the line does not come.
func startChild(ctx context.Context, name string, argv []string, deathSig syscall.Signal, readyLine string, onReady func(c *child, line string)) (*child, error) {
	c := &child{name: name, cmd: exec.Command(argv[0], argv[1:]...), done: make(chan struct{})}
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: deathSig}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	c.cmd.Stdout = pw
	c.cmd.Stderr = pw
	c.started = time.Now()
	if err := onSpawnThread(c.cmd.Start); err != nil {
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	pw.Close()

	ready := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		c.scan(pr, readyLine, func(line string) {
			if onReady != nil {
				onReady(c, line)
			}
			close(ready)
		})
	}()
	go func() {
		_ = c.cmd.Wait()
		// Grandchildren that inherited the pipe must not keep us waiting.
		select {
		case <-readerDone:
		case <-time.After(2 * time.Second):
			pr.Close()
		}
		c.mu.Lock()
		c.state = c.cmd.ProcessState
		c.mu.Unlock()
		close(c.done)
	}()
	if readyLine == "" {
		return c, nil
	}
	timer := time.NewTimer(60 * time.Second)
	defer timer.Stop()
	select {
	case <-ready:
		return c, nil
	case <-c.done:
		return nil, fmt.Errorf("%s exited before %q: %v\n%s", name, readyLine, c.exitState(), c.Output())
	case <-timer.C:
		c.stop(5 * time.Second)
		return nil, fmt.Errorf("%s: no %q after 60s\n%s", name, readyLine, c.Output())
	case <-ctx.Done():
		c.stop(5 * time.Second)
		return nil, ctx.Err()
	}
}

func (c *child) scan(r io.Reader, readyLine string, ready func(string)) {
	sent := readyLine == ""
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			c.mu.Lock()
			c.output.WriteString(line)
			c.mu.Unlock()
			if !sent && strings.Contains(line, readyLine) {
				sent = true
				ready(strings.TrimSpace(line))
			}
		}
		if err != nil {
			return
		}
	}
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// Output returns everything the child has printed so far.
func (c *child) Output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.output.String()
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *child) exitState() *os.ProcessState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// stop sends SIGTERM and waits up to grace for the child to exit, then
// kills its whole process group. It reports whether the child exited on
// its own within grace, and how long that took.
func (c *child) stop(grace time.Duration) (clean bool, took time.Duration) {
	start := time.Now()
	if c.exited() {
		c.killGroup()
		return true, 0
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		clean = true
	case <-time.After(grace):
		c.killGroup()
		<-c.done
	}
	took = time.Since(start)
	c.killGroup() // leftovers of the group, if any
	return clean, took
}

func (c *child) killGroup() {
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
}

// Pdeathsig is delivered when the parent *thread* exits, not the process
// (Go issue 27505), so children are started from one OS thread that lives
// as long as the bench.
var spawnRequests = make(chan func())

func init() {
	go func() {
		runtime.LockOSThread() // never unlocked: the thread never exits
		for f := range spawnRequests {
			f()
		}
	}()
}

// onSpawnThread runs start on the spawning thread and returns its error.
func onSpawnThread(start func() error) error {
	errc := make(chan error, 1)
	spawnRequests <- func() { errc <- start() }
	return <-errc
}

// burnerReady checks a workload's "ready <pid>" line.
func burnerReady(c *child, line string) error {
	f := strings.Fields(line)
	if len(f) != 2 || f[0] != "ready" {
		return fmt.Errorf("%s: unexpected ready line %q", c.name, line)
	}
	if pid, err := strconv.Atoi(f[1]); err != nil || pid != c.pid() {
		return fmt.Errorf("%s: ready line %q, but its pid is %d", c.name, line, c.pid())
	}
	return nil
}
