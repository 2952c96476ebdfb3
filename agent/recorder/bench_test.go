package recorder

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/flightrec/flightrec/agent/symbolize"
	"github.com/flightrec/flightrec/wire/snapshot"
)

// BenchmarkAddSample adds samples at 50,000 records/s to a ring already
// full (past its byte bound and its age), the drain goroutine's steady
// state: no allocation per record.
func BenchmarkAddSample(b *testing.B) {
	const step = int64(20 * time.Microsecond)
	w := newWorkload(1, 20, 500)
	picks := make([]*testStack, 4096)
	for i := range picks {
		picks[i] = w.pick()
	}
	r := New(Config{PeriodNS: 1}, nil)
	t := int64(0)
	for i := range 3_000_000 { // a minute at this rate: the ring is full
		s := picks[i%len(picks)]
		r.AddSample(t, s.pid, s.pid, uint16(i%2), s.user, s.kernel)
		t += step
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s := picks[i%len(picks)]
		r.AddSample(t, s.pid, s.pid, uint16(i%2), s.user, s.kernel)
		t += step
	}
	b.StopTimer()
	st := r.Stats()
	b.ReportMetric(float64(st.Bytes)/float64(st.Records), "B/record")
}

// BenchmarkSnapshot freezes one minute of a 2-CPU node sampled at 99 Hz
// (11,880 samples over 300 distinct stacks of 20 processes), with 100
// off-CPU intervals per second and their stacks, and some events.
func BenchmarkSnapshot(b *testing.B) {
	w := newWorkload(2, 20, 300)
	r := New(Config{PeriodNS: int64(time.Second) / 99}, nil)
	const start = int64(1_800_000_000) * int64(time.Second)
	for i := range 60 * 99 {
		t := start + int64(i)*int64(time.Second)/99
		for cpu := range 2 {
			s := w.pick()
			r.AddSample(t+int64(cpu), s.pid, s.pid+uint32(cpu), uint16(cpu), s.user, s.kernel)
		}
	}
	for i := range 60 * 100 {
		t := start + int64(i)*int64(10*time.Millisecond)
		s := w.pick()
		hash := uint64(i%200) + 1
		if i < 200 {
			r.AddStack(t, s.pid, hash, s.user, s.kernel)
		}
		r.AddOffCPU(t-int64(5*time.Millisecond), t, s.pid, s.pid+1, hash, "sleep")
		if i%100 == 0 {
			r.AddEvent(Event{TimeNS: t, Kind: "exec", PID: s.pid, TID: s.pid, Comm: "sh", Filename: "/bin/sh"})
		}
	}
	res := newTableResolver(w)
	b.ReportAllocs()
	b.ResetTimer()
	var s *snapshot.Snapshot
	for range b.N {
		s = meta()
		if err := r.Snapshot(start, start+60*int64(time.Second), res, s); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if err := s.Validate(); err != nil {
		b.Fatal(err)
	}
	var enc bytes.Buffer
	if err := snapshot.Encode(&enc, s); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(s.Samples.TimeNS)), "samples")
	b.ReportMetric(float64(enc.Len())/1024, "gzKiB")
}

// tableResolver answers from a precomputed table, like a warm symbolizer,
// so that the benchmark measures the recorder.
type tableResolver map[uint64]symbolize.Location

func newTableResolver(w *workload) tableResolver {
	t := tableResolver{}
	for _, s := range w.stacks {
		for _, a := range append(s.user, s.kernel...) {
			t[a] = symbolize.Location{Frames: []symbolize.Frame{{Function: fmt.Sprintf("pkg.fn%x", a>>4), File: "pkg/file.go", Line: int64(a & 0xfff)}}}
		}
	}
	return t
}

func (t tableResolver) Labels(pid uint32) map[string]string {
	return map[string]string{"service": "svc", "pid": fmt.Sprint(pid)}
}
func (t tableResolver) User(_ uint32, addr uint64, _ bool) symbolize.Location { return t[addr] }
func (t tableResolver) Kernel(addr uint64, _ bool) symbolize.Location         { return t[addr] }
