package agent

import (
	"github.com/flightrec/flightrec/agent/events"
	"github.com/flightrec/flightrec/agent/procinfo"
	"github.com/flightrec/flightrec/agent/symbolize"
)

// process is what the agent keeps about a process it has sampled.
type process struct {
	info   *procinfo.Process // nil if it exited before it could be read
	space  *symbolize.Space  // nil for kernel threads and unreadable processes
	labels map[string]string
	seen   bool // sampled in the current interval
	stale  bool // new code appeared since the snapshot; re-read once per interval
}

// processTable reads each process the first time a sample names it and keeps
// it until an interval passes without samples and the process is gone.
type processTable struct {
	node   string
	reader procinfo.Reader
	sym    *symbolize.Symbolizer
	known  pidSet
	byPID  map[uint32]*process
}

// pidSet tells the BPF side which processes user space has read, so that
// only an unknown process's first sample wakes the reader early.
type pidSet interface {
	Know(pid uint32) error
	Forget(pid uint32) error
}

func newProcessTable(node string, r procinfo.Reader, sym *symbolize.Symbolizer, known pidSet) *processTable {
	return &processTable{node: node, reader: r, sym: sym, known: known, byPID: map[uint32]*process{}}
}

// observe returns the process of sample s, reading it on first sight and
// again when s has user code outside every known mapping (exec, dlopen).
func (t *processTable) observe(s *events.Sample) *process {
	p, ok := t.byPID[s.PID]
	if ok && p.space != nil && len(s.User) > 0 && !p.space.Contains(s.User[0]) && !p.stale {
		p.stale = true
		t.reread(s, p)
	}
	if !ok {
		p = &process{}
		t.byPID[s.PID] = p
		t.read(s, p)
		_ = t.known.Know(s.PID) // best effort: at worst it wakes the reader again
	}
	p.seen = true
	return p
}

func (t *processTable) read(s *events.Sample, p *process) {
	info, err := t.reader.Read(s.PID)
	var buildID string
	if err == nil {
		p.info = info
		if !info.Kernel {
			p.space = t.sym.Space(info)
			buildID = p.space.MainBuildID()
		}
	}
	p.labels = processLabels(t.node, s.PID, s.CommString(), p.info, buildID)
}

func (t *processTable) reread(s *events.Sample, p *process) {
	old := p.space
	t.read(s, p)
	if old != nil {
		old.Release()
	}
}

// sweep runs after each report: processes sampled in the interval stay; the
// others are dropped once they no longer exist (or the pid was reused).
func (t *processTable) sweep() {
	for pid, p := range t.byPID {
		if p.seen {
			p.seen, p.stale = false, false
			continue
		}
		if p.info != nil && t.alive(p.info) {
			continue
		}
		if p.space != nil {
			p.space.Release()
		}
		delete(t.byPID, pid)
		_ = t.known.Forget(pid)
	}
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

// Labels, User and Kernel make the table the profile builder's resolver.
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
