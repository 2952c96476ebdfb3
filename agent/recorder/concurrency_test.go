package recorder

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flightrec/flightrec/wire/snapshot"
)

// TestConcurrentWritersAndSnapshots runs writers against snapshotters on a
// ring small enough that chunks are evicted while snapshots read them
// (run it with -race). Every stack names its thread in its addresses, so a
// chunk reused under a snapshot would show as a stack of the wrong thread.
func TestConcurrentWritersAndSnapshots(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		// Chunks expire by age and are reused for new ones.
		{"by age", Config{MaxBytes: 1 << 30, MinAge: 20 * time.Millisecond, ChunkLen: 10 * time.Millisecond}},
		// Chunks are evicted by the byte bound, often the current one's elders.
		{"by bytes", Config{MaxBytes: 256 << 10, MinAge: time.Second, ChunkLen: 50 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.PeriodNS = 1
			concurrent(t, New(tt.cfg, nil), tt.cfg.MaxBytes)
		})
	}
}

func concurrent(t *testing.T, r *Recorder, maxBytes int64) {
	const writers, perWriter = 2, 30_000
	res := newFakeResolver()
	var done atomic.Bool
	var snaps atomic.Int64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() { write(r, uint32(w+1), perWriter) })
	}
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for !done.Load() {
				st := r.Stats()
				s := meta()
				if err := r.Snapshot(st.NewestNS-ms(200), st.NewestNS+1, res, s); err != nil {
					t.Error(err)
					return
				}
				if err := s.Validate(); err != nil {
					t.Error(err)
					return
				}
				checkThreads(t, s)
				snaps.Add(1)
			}
		})
	}
	wg.Wait()
	done.Store(true)
	readers.Wait()
	st := r.Stats()
	if st.Evicted == 0 || st.Bytes > maxBytes || st.Records+int(st.Evicted) != writers*(perWriter+perWriter/3/eventEvery) {
		t.Errorf("after the run: %+v", st)
	}
	t.Logf("%d snapshots while writing; %+v", snaps.Load(), st)
}

// write adds samples, stack records and off-CPU intervals for thread tid;
// each stack's addresses are tid×0x100 plus a small number.
func write(r *Recorder, tid uint32, n int) {
	base := uint64(tid) * 0x100
	for i := range n / 3 {
		t := int64(i) * int64(100*time.Microsecond)
		r.AddSample(t, 1, tid, uint16(tid), []uint64{base + uint64(i%7), base + 0x10}, nil)
		r.AddStack(t, 1, uint64(tid), []uint64{base + 0x20}, nil)
		r.AddOffCPU(t-ms(1), t, 1, tid, uint64(tid), "sleep")
		if i%eventEvery == 0 {
			r.AddEvent(Event{TimeNS: t, Kind: "exec", PID: 1, TID: tid, Comm: fmt.Sprint("w", tid), Filename: fmt.Sprint("/bin/w", tid)})
		}
	}
}

// eventEvery is how many sample, stack and interval triples write adds per
// event.
const eventEvery = 100

func checkThreads(t *testing.T, s *snapshot.Snapshot) {
	t.Helper()
	leaf := func(stack int32) int64 { return s.Frames[s.Stacks[stack][0]].Line }
	for i, st := range s.Samples.Stack {
		if tid := s.Samples.TID[i]; leaf(st)>>8 != int64(tid) {
			t.Errorf("sample of thread %d has the stack of thread %d", tid, leaf(st)>>8)
		}
	}
	for _, e := range s.Events { // their strings live in the ring's chunks
		if e.Comm != fmt.Sprint("w", e.TID) || e.Filename != fmt.Sprint("/bin/w", e.TID) || e.Kind != "exec" {
			t.Errorf("event of thread %d: %q %q %q", e.TID, e.Kind, e.Comm, e.Filename)
		}
	}
	for i, st := range s.OffCPU.Stack {
		if tid := s.OffCPU.TID[i]; st >= 0 && leaf(st) != int64(tid)*0x100+0x20 {
			t.Errorf("interval of thread %d has a stack with leaf line %#x", tid, leaf(st))
		}
	}
}
