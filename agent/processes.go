package agent

import (
	"maps"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/flightrec/flightrec/agent/events"
	"github.com/flightrec/flightrec/agent/procinfo"
	"github.com/flightrec/flightrec/agent/symbolize"
)

// process is what the agent keeps about a process it has seen.
type process struct {
	info   *procinfo.Process // nil if it exited before it could be read
	space  *symbolize.Space  // nil for kernel threads and unreadable processes
	labels map[string]string
	seen   bool // sampled in the current interval
	// rereads counts re-reads for code outside the known mappings in the
	// current interval (bounded: a garbage frame must not re-read forever);
	// readAt is the boot time of the last read: only a sample taken after
	// it can show code the read missed.
	rereads uint8
	readAt  uint64
	last    uint64 // boot ns of its latest sample, stack, interval or event
	exited  uint64 // boot ns of its exit (or when it was found gone); 0 while it runs
}

// maxRereads bounds the re-reads of one process per interval.
const maxRereads = 3

// processTable reads each process the first time a record names it, re-reads
// it when it execs, and keeps it for a retention time after it exits, so a
// window of the flight recorder a minute old can still be symbolized. It is
// used by the drain goroutine only.
type processTable struct {
	node      string
	reader    procinfo.Reader
	sym       *symbolize.Symbolizer
	known     pidSet
	stacks    *stackCache
	retention uint64 // ns
	byPID     map[uint32]*process
	now       func() uint64 // boot ns; a field for tests
}

// pidSet tells the BPF side which processes user space has read, so that
// only an unknown process's first sample wakes the reader early.
type pidSet interface {
	Know(pid uint32) error
	Forget(pid uint32) error
}

func newProcessTable(node string, r procinfo.Reader, sym *symbolize.Symbolizer, known pidSet, retention time.Duration) *processTable {
	return &processTable{
		node: node, reader: r, sym: sym, known: known,
		stacks:    newStackCache(defaultStacksPerProcess, defaultStacksTotal),
		retention: uint64(retention.Nanoseconds()),
		byPID:     map[uint32]*process{},
		now:       events.Now,
	}
}

// observe returns the process of a sample or stack taken at boot time at,
// reading it on first sight, and again (a few times per interval) when user has
// code outside every known mapping (dlopen, libraries mapped after an
// early read) or the last read failed; anew when the pid names a new
// process (user code after the old one's exit: the pid was reused).
func (t *processTable) observe(pid uint32, comm string, at uint64, user []uint64) *process {
	p, ok := t.byPID[pid]
	switch {
	case ok && p.exited != 0 && len(user) > 0 && at > p.exited:
		t.drop(pid, p)
		ok = false
	case ok && p.exited == 0 && len(user) > 0 && at > p.readAt && p.rereads < maxRereads &&
		(p.misses(user[0]) || p.misses(user[len(user)-1])):
		// The innermost frame catches new code (dlopen, JIT); the outermost
		// catches libraries the loader mapped after a read made right at
		// exec, whose frames sit above code of the executable.
		p.rereads++
		t.read(pid, comm, p, true)
	}
	if !ok {
		p = &process{}
		t.byPID[pid] = p
		t.read(pid, comm, p, false)
	}
	p.seen = true
	p.last = max(p.last, at)
	return p
}

// misses reports whether the process's snapshot lacks the mapping of a
// user address: it has none (the read failed) or addr is outside them.
func (p *process) misses(addr uint64) bool {
	if p.space == nil {
		return p.info == nil
	}
	return !p.space.Contains(addr)
}

// read takes a fresh snapshot of pid into p. When it fails (the process is
// gone) and keep is set, p keeps what it had: its old mappings still hold
// for what it ran; without keep (after an exec) the old image would name
// the new one's addresses wrongly, so p is left without.
func (t *processTable) read(pid uint32, comm string, p *process, keep bool) {
	p.readAt = t.now()
	info, err := t.reader.Read(pid)
	if err != nil && keep && p.info != nil {
		return
	}
	old := p.space
	p.info, p.space = nil, nil
	var buildID string
	if err == nil {
		p.info = info
		if !info.Kernel {
			p.space = t.sym.Space(info)
			buildID = p.space.MainBuildID()
		}
	}
	p.labels = processLabels(t.node, pid, comm, p.info, buildID)
	if old != nil {
		old.Release()
	}
	if p.info == nil || !loading(p.info) {
		_ = t.known.Know(pid) // best effort: at worst it wakes the reader again
	}
}

// loading reports whether a dynamically linked process was read while the
// loader was still mapping its libraries: its only shared object is the
// loader itself. Its pid stays unknown to the BPF side, so its next record
// wakes the reader and the re-read finds the libraries (else a short-lived
// program's libc frames stay unresolved).
func loading(info *procinfo.Process) bool {
	interp := false
	for i := range info.Mappings {
		m := &info.Mappings[i]
		if !m.FileBacked() || m.Path == info.Exe {
			continue
		}
		if !strings.HasPrefix(path.Base(m.Path), "ld-") {
			return false
		}
		interp = true
	}
	return interp
}

// exec re-reads a process that replaced its image: new mappings, new labels.
// A pid not in the table is left for its first sample (the BPF side made
// that sample wake the reader).
func (t *processTable) exec(e *events.ProcEvent) {
	p, ok := t.byPID[e.PID]
	if !ok {
		return
	}
	if p.exited != 0 && e.Time > p.exited { // a new process under a reused pid
		t.drop(e.PID, p)
		t.observe(e.PID, e.Comm, e.Time, nil)
		return
	}
	if p.readAt < e.Time {
		// Only a read older than the exec shows the old image; a newer one
		// already has the new image, and reading again after the process
		// is gone would lose it.
		t.read(e.PID, e.Comm, p, false)
	}
	p.last = max(p.last, e.Time)
}

// exit marks a process exited; it stays for the retention time.
func (t *processTable) exit(e *events.ProcEvent) {
	if p, ok := t.byPID[e.PID]; ok && p.exited == 0 {
		p.exited = e.Time
		p.last = max(p.last, e.Time)
	}
}

// touch notes an event or interval of a known process at boot time at.
func (t *processTable) touch(pid uint32, at uint64) {
	if p, ok := t.byPID[pid]; ok {
		p.last = max(p.last, at)
	}
}

// sweep runs after each report at boot time now: a process not sampled in
// the interval whose pid is gone (or reused) counts as exited; an exited
// process is dropped once the retention time has passed since its last
// sample or event.
func (t *processTable) sweep(now uint64) {
	for pid, p := range t.byPID {
		if p.exited == 0 && !p.seen && (p.info == nil || !t.alive(p.info)) {
			p.exited = now
		}
		p.seen, p.rereads = false, 0
		if p.exited != 0 && now >= p.last+t.retention {
			t.drop(pid, p)
		}
	}
}

func (t *processTable) drop(pid uint32, p *process) {
	if p.space != nil {
		p.space.Release()
	}
	delete(t.byPID, pid)
	t.stacks.forget(pid)
	_ = t.known.Forget(pid)
}

func (t *processTable) alive(info *procinfo.Process) bool {
	start, err := t.reader.StartTime(info.PID)
	return err == nil && start == info.StartTime
}

func (t *processTable) releaseAll() {
	for pid, p := range t.byPID {
		if p.space != nil {
			p.space.Release()
		}
		delete(t.byPID, pid)
	}
}

func (t *processTable) len() int { return len(t.byPID) }

// eventLabels are the labels a process event is reported with: the
// process's, or what the event itself tells for a process not read.
func (t *processTable) eventLabels(e *events.ProcEvent) map[string]string {
	if p, ok := t.byPID[e.PID]; ok {
		return maps.Clone(p.labels)
	}
	return map[string]string{LabelNode: t.node, LabelPID: strconv.FormatUint(uint64(e.PID), 10), LabelComm: e.Comm, LabelService: e.Comm}
}

// Labels, User and Kernel make the table the profile builder's and the
// flight recorder's resolver.
func (t *processTable) Labels(pid uint32) map[string]string {
	if p, ok := t.byPID[pid]; ok {
		return p.labels
	}
	return map[string]string{LabelNode: t.node}
}

func (t *processTable) User(pid uint32, addr uint64, call bool) symbolize.Location {
	if p, ok := t.byPID[pid]; ok && p.space != nil {
		return p.space.Resolve(addr, call)
	}
	return symbolize.Location{}
}

func (t *processTable) Kernel(addr uint64, call bool) symbolize.Location {
	return t.sym.Kernel(addr, call)
}
