package trigger

import (
	"fmt"
	"sync"
	"time"

	"github.com/flightrec/flightrec/agent/events"
)

// signalNames names the fatal signals the BPF side reports.
var signalNames = map[int32]string{4: "SIGILL", 6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE", 11: "SIGSEGV", 31: "SIGSYS"}

// Local turns process events and CPU use of watched processes into
// triggers: a crash or an OOM kill freezes the minute before it.
type Local struct {
	m     *Manager
	watch Selector

	// CPU spike: a process above threshold (fraction of one CPU) for at
	// least sustain triggers once per cooldown.
	threshold float64
	sustain   time.Duration
	mu        sync.Mutex
	above     map[uint32]time.Time // since when each pid has been above
}

// NewLocal watches processes whose labels match watch (nil: all). A zero
// threshold disables the CPU trigger.
func NewLocal(m *Manager, watch Selector, threshold float64, sustain time.Duration) *Local {
	return &Local{m: m, watch: watch, threshold: threshold, sustain: sustain, above: map[uint32]time.Time{}}
}

// OnEvent handles one process event with its process's labels.
func (l *Local) OnEvent(e events.ProcEvent, labels map[string]string) {
	if !l.watch.Matches(labels) {
		return
	}
	switch e.Kind {
	case events.KindSignal:
		name := signalNames[e.Signal]
		if name == "" {
			name = fmt.Sprintf("signal %d", e.Signal)
		}
		l.m.Fire(Request{Kind: "signal", PID: e.PID, Labels: labels, Key: fmt.Sprintf("signal/%d", e.PID),
			Reason: fmt.Sprintf("%s in %s (pid %d, thread %d) at %#x", name, labelOr(labels, "comm", e.Comm), e.PID, e.TID, e.Addr)})
	case events.KindOOMKill:
		l.m.Fire(Request{Kind: "oom", PID: e.PID, Labels: labels, Key: fmt.Sprintf("oom/%d", e.PID),
			Reason: fmt.Sprintf("OOM killer killed %s (pid %d)", labelOr(labels, "comm", e.Comm), e.PID)})
	}
}

// ObserveCPU takes one process's CPU use over the last drain, as a
// fraction of one CPU.
func (l *Local) ObserveCPU(now time.Time, pid uint32, fraction float64, labels map[string]string) {
	if l.threshold <= 0 || !l.watch.Matches(labels) {
		return
	}
	l.mu.Lock()
	since, was := l.above[pid]
	switch {
	case fraction < l.threshold:
		delete(l.above, pid)
		l.mu.Unlock()
		return
	case !was:
		l.above[pid] = now
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	if now.Sub(since) >= l.sustain {
		l.m.Fire(Request{Kind: "cpu", PID: pid, Labels: labels, Key: fmt.Sprintf("cpu/%d", pid),
			Reason: fmt.Sprintf("%s (pid %d) above %.0f%% of a CPU for %v", labelOr(labels, "comm", ""), pid, 100*l.threshold, now.Sub(since).Round(time.Second))})
	}
}

// Forget drops a process's CPU state (it exited).
func (l *Local) Forget(pid uint32) {
	l.mu.Lock()
	delete(l.above, pid)
	l.mu.Unlock()
}

func labelOr(labels map[string]string, name, fallback string) string {
	if v := labels[name]; v != "" {
		return v
	}
	return fallback
}
