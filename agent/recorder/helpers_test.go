package recorder

import (
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/flightrec/flightrec/agent/symbolize"
	"github.com/flightrec/flightrec/wire/snapshot"
)

// fakeResolver symbolizes by address so tests can read stacks back:
//   - 0x5000: an inlined call (inl into outer);
//   - ≥ 0x9000: a mapped object it cannot read (/lib/x.so at 0x9000, offset 0x1000);
//   - 0x8000: memory without a mapping;
//   - anything else: one function named after the address whose line is the
//     address, minus one for return addresses (call), so call flags show.
//
// It counts calls per (kind, pid, address, call).
type fakeResolver struct {
	mu     sync.Mutex
	calls  map[string]int
	labels map[uint32]map[string]string
}

func newFakeResolver() *fakeResolver {
	return &fakeResolver{calls: map[string]int{}, labels: map[uint32]map[string]string{}}
}

func (f *fakeResolver) count(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[key]++
}

func (f *fakeResolver) Labels(pid uint32) map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.labels[pid]
}

func (f *fakeResolver) User(pid uint32, addr uint64, call bool) symbolize.Location {
	f.count(fmt.Sprintf("u/%d/%#x/%v", pid, addr, call))
	switch {
	case addr >= 0x9000:
		return symbolize.Location{Mapping: &symbolize.Mapping{Start: 0x9000, Limit: 0xa000, Offset: 0x1000, File: "/lib/x.so", BuildID: "b1d"}}
	case addr == 0x8000:
		return symbolize.Location{}
	case addr == 0x5000:
		return symbolize.Location{Frames: []symbolize.Frame{{Function: "inl", File: "a.go", Line: 1}, {Function: "outer", File: "a.go", Line: 2}}}
	}
	return symbolize.Location{Frames: []symbolize.Frame{{Function: fmt.Sprintf("u%x", addr), File: "u.go", Line: line(addr, call)}}}
}

func (f *fakeResolver) Kernel(addr uint64, call bool) symbolize.Location {
	f.count(fmt.Sprintf("k/%#x/%v", addr, call))
	return symbolize.Location{Frames: []symbolize.Frame{{Function: fmt.Sprintf("k%x", addr), Line: line(addr, call)}}}
}

func line(addr uint64, call bool) int64 {
	if call {
		return int64(addr) - 1
	}
	return int64(addr)
}

// render writes a stack as its frames: "function:line", "+inl" when inlined,
// "mapping@address" when unsymbolized.
func render(s *snapshot.Snapshot, stack int32) []string {
	if stack < 0 {
		return nil
	}
	var out []string
	for _, fi := range s.Stacks[stack] {
		f := s.Frames[fi]
		switch {
		case f.Function == "":
			out = append(out, fmt.Sprintf("%s@%#x", f.Mapping, f.Address))
		case f.Inlined:
			out = append(out, fmt.Sprintf("%s:%d+inl", f.Function, f.Line))
		default:
			out = append(out, fmt.Sprintf("%s:%d", f.Function, f.Line))
		}
	}
	return out
}

// meta is what the caller of Snapshot fills.
func meta() *snapshot.Snapshot {
	return &snapshot.Snapshot{ID: "n1-1-abc", Node: "n1", Trigger: snapshot.Trigger{Kind: "manual", Reason: "test"}}
}

// workload generates realistic records: a few processes with a pool of
// distinct stacks 15 to 45 frames deep (a few kernel frames on some), drawn
// with a skew so that hot stacks repeat, as profiles do.
type workload struct {
	rng    *rand.Rand
	stacks []testStack
}

type testStack struct {
	pid          uint32
	user, kernel []uint64
}

func newWorkload(seed uint64, procs, distinct int) *workload {
	w := &workload{rng: rand.New(rand.NewPCG(seed, 1))}
	for i := range distinct {
		s := testStack{pid: uint32(1000 + i%procs)}
		for range 15 + w.rng.IntN(30) {
			s.user = append(s.user, 0x400000+w.rng.Uint64N(1<<20))
		}
		if i%4 == 0 {
			for range 3 + w.rng.IntN(8) {
				s.kernel = append(s.kernel, 0xffffffff81000000+w.rng.Uint64N(1<<24))
			}
		}
		w.stacks = append(w.stacks, s)
	}
	return w
}

// pick draws a stack, the first ones far more often.
func (w *workload) pick() *testStack {
	n := len(w.stacks)
	i := int(float64(n) * w.rng.Float64() * w.rng.Float64() * w.rng.Float64())
	return &w.stacks[min(i, n-1)]
}

// add adds one record at t: mostly samples, some off-CPU intervals and
// stack records, a few events.
func (w *workload) add(r *Recorder, t int64, i int) {
	s := w.pick()
	switch i % 16 {
	case 0, 1, 2:
		r.AddOffCPU(t-int64(w.rng.IntN(1e6)), t, s.pid, s.pid+1, uint64(i%512)+1, "sleep")
	case 3:
		r.AddStack(t, s.pid, uint64(i%512)+1, s.user, s.kernel)
	case 4:
		if i%256 == 4 {
			r.AddEvent(Event{TimeNS: t, Kind: "exit", PID: s.pid, TID: s.pid, Comm: "worker", ExitStatus: 1 << 8})
			return
		}
		fallthrough
	default:
		r.AddSample(t, s.pid, s.pid+uint32(i%4), uint16(i%2), s.user, s.kernel)
	}
}
