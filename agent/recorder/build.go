package recorder

import (
	"encoding/binary"
	"maps"
	"slices"

	"github.com/flightrec/flightrec/agent/symbolize"
	"github.com/flightrec/flightrec/wire/snapshot"
)

// builder turns a window into the snapshot format: it symbolizes each
// distinct location once and deduplicates frames and stacks.
type builder struct {
	res      Resolver
	out      *snapshot.Snapshot
	frameIdx map[snapshot.Frame]int32
	locs     map[locKey][]int32 // a location's frames, innermost first
	stackIdx map[string]int32   // frame indexes, little-endian, → stack
	final    []int32            // raw stack → out stack, -1 not yet
	key      []byte
	buf      []int32
	unknown  uint64
}

// locKey names a location: user addresses mean something only within their
// process, and a return address resolves to the call before it.
type locKey struct {
	pid          uint32
	kernel, call bool
	addr         uint64
}

// newBuilder sizes its tables for the window: at most one location per
// address of its stacks (growing maps dominates otherwise).
func newBuilder(res Resolver, out *snapshot.Snapshot, w *window) *builder {
	addrs := 0
	for _, s := range w.stacks {
		addrs += len(s.user) + len(s.kernel)
	}
	addrs = min(addrs, 1<<16)
	b := &builder{
		res: res, out: out,
		frameIdx: make(map[snapshot.Frame]int32, addrs),
		locs:     make(map[locKey][]int32, addrs),
		stackIdx: make(map[string]int32, len(w.stacks)),
		final:    make([]int32, len(w.stacks)),
	}
	for i := range b.final {
		b.final[i] = -1
	}
	out.Frames, out.Stacks = make([]snapshot.Frame, 0, addrs), make([][]int32, 0, len(w.stacks))
	return b
}

func (b *builder) build(w *window, periodNS int64) {
	sortByTime(w)
	b.samples(w, periodNS)
	b.offCPU(w)
	b.events(w)
	b.processes(w)
}

func (b *builder) samples(w *window, periodNS int64) {
	n := len(w.samples)
	s := snapshot.Samples{PeriodNS: periodNS, TimeNS: make([]int64, n), PID: make([]uint32, n), TID: make([]uint32, n), CPU: make([]uint16, n), Stack: make([]int32, n)}
	for i, r := range w.samples {
		s.TimeNS[i], s.PID[i], s.TID[i], s.CPU[i] = r.timeNS, r.pid, r.tid, r.cpu
		s.Stack[i] = b.stack(w, r.stack)
	}
	b.out.Samples = s
}

func (b *builder) offCPU(w *window) {
	n := len(w.offCPU)
	o := snapshot.OffCPU{StartNS: make([]int64, n), DurationNS: make([]int64, n), PID: make([]uint32, n), TID: make([]uint32, n), Stack: make([]int32, n), State: make([]string, n)}
	for i, r := range w.offCPU {
		o.StartNS[i], o.DurationNS[i], o.PID[i], o.TID[i], o.State[i] = r.startNS, max(r.endNS-r.startNS, 0), r.pid, r.tid, stateName(r.state)
		o.Stack[i] = b.named(w, r.pid, r.hash)
		if o.Stack[i] < 0 {
			b.unknown++
		}
	}
	b.out.OffCPU = o
}

func (b *builder) events(w *window) {
	b.out.Events = make([]snapshot.Event, len(w.events))
	for i, e := range w.events {
		b.out.Events[i] = convertEvent(e)
		b.out.Events[i].Stack = b.named(w, e.PID, e.StackHash)
	}
}

// convertEvent converts all but the stack (-1).
func convertEvent(e Event) snapshot.Event {
	out := snapshot.Event{TimeNS: e.TimeNS, Kind: e.Kind, PID: e.PID, TID: e.TID, Comm: e.Comm, Stack: -1}
	switch e.Kind {
	case "exit":
		code, sig, core := splitWaitStatus(e.ExitStatus)
		if sig == 0 {
			out.ExitCode = &code
		} else {
			out.Signal, out.CoreDumped = sig, core
		}
	case "signal":
		out.Signal, out.SiCode, out.Addr = int(e.Signal), int(e.SiCode), e.Addr
	case "exec":
		out.Filename = e.Filename
	}
	return out
}

// splitWaitStatus splits a wait(2) status into the exit code, or the signal
// that killed the process and whether it dumped core.
func splitWaitStatus(st int32) (code, signal int, core bool) {
	if st&0x7f == 0 {
		return int(st>>8) & 0xff, 0, false
	}
	return 0, int(st & 0x7f), st&0x80 != 0
}

// processes lists every pid of the window with its labels.
func (b *builder) processes(w *window) {
	pids := map[uint32]struct{}{}
	for _, s := range w.samples {
		pids[s.pid] = struct{}{}
	}
	for _, o := range w.offCPU {
		pids[o.pid] = struct{}{}
	}
	for _, e := range w.events {
		pids[e.PID] = struct{}{}
	}
	b.out.Processes = make([]snapshot.Process, 0, len(pids))
	for _, pid := range slices.Sorted(maps.Keys(pids)) {
		labels := maps.Clone(b.res.Labels(pid))
		if labels == nil {
			labels = map[string]string{}
		}
		b.out.Processes = append(b.out.Processes, snapshot.Process{PID: pid, Labels: labels})
	}
}

// named returns the out stack a (pid, hash) names, -1 when none or unknown.
func (b *builder) named(w *window, pid uint32, hash uint64) int32 {
	if hash == 0 {
		return -1
	}
	if id := w.lookup(pid, hash); id >= 0 {
		return b.stack(w, id)
	}
	return -1
}

// stack returns the out stack of a raw stack: kernel frames first, then
// user frames, leaf first. Every frame but the innermost of the whole stack
// is a return address, including the user frames under kernel frames.
func (b *builder) stack(w *window, raw int32) int32 {
	if s := b.final[raw]; s >= 0 {
		return s
	}
	rs := &w.stacks[raw]
	b.buf = b.buf[:0]
	for i, a := range rs.kernel {
		b.buf = append(b.buf, b.location(locKey{kernel: true, call: i > 0, addr: a})...)
	}
	for i, a := range rs.user {
		b.buf = append(b.buf, b.location(locKey{pid: rs.pid, call: i > 0 || len(rs.kernel) > 0, addr: a})...)
	}
	b.key = b.key[:0]
	for _, f := range b.buf {
		b.key = binary.LittleEndian.AppendUint32(b.key, uint32(f))
	}
	s, ok := b.stackIdx[string(b.key)]
	if !ok {
		s = int32(len(b.out.Stacks))
		b.out.Stacks = append(b.out.Stacks, slices.Clone(b.buf))
		b.stackIdx[string(b.key)] = s
	}
	b.final[raw] = s
	return s
}

// location resolves an address once and returns its frames' indexes.
func (b *builder) location(k locKey) []int32 {
	if f, ok := b.locs[k]; ok {
		return f
	}
	loc := b.resolve(k)
	var idx []int32
	if len(loc.Frames) == 0 {
		idx = []int32{b.frame(unsymbolized(loc.Mapping, k.addr))}
	}
	for i, f := range loc.Frames {
		// Frames come innermost first: all but the last were inlined
		// into the one after them.
		idx = append(idx, b.frame(snapshot.Frame{Function: f.Function, File: f.File, Line: f.Line, Inlined: i < len(loc.Frames)-1}))
	}
	b.locs[k] = idx
	return idx
}

func (b *builder) resolve(k locKey) symbolize.Location {
	if k.kernel {
		return b.res.Kernel(k.addr, k.call)
	}
	return b.res.User(k.pid, k.addr, k.call)
}

// unsymbolized keeps what a server needs to symbolize later: the object
// and the object-relative address.
func unsymbolized(m *symbolize.Mapping, addr uint64) snapshot.Frame {
	if m == nil {
		return snapshot.Frame{Address: addr}
	}
	return snapshot.Frame{Mapping: m.File, BuildID: m.BuildID, Address: addr - m.Start + m.Offset}
}

func (b *builder) frame(f snapshot.Frame) int32 {
	if i, ok := b.frameIdx[f]; ok {
		return i
	}
	i := int32(len(b.out.Frames))
	b.out.Frames = append(b.out.Frames, f)
	b.frameIdx[f] = i
	return i
}

// stateCode and stateName map off-CPU states to a byte and back.
func stateCode(s string) uint8 {
	switch s {
	case "sleep":
		return 1
	case "blocked":
		return 2
	case "preempted":
		return 3
	}
	return 0
}

func stateName(c uint8) string {
	switch c {
	case 1:
		return "sleep"
	case 2:
		return "blocked"
	case 3:
		return "preempted"
	}
	return "other"
}
