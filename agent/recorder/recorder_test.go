package recorder

import (
	"os"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/sys/unix"
)

// addKind adds one record of the i-th kind in turn, so that every kind
// counts toward the ring.
func addKind(r *Recorder, t int64, i int) {
	user, kernel := []uint64{0x100, 0x200, uint64(i % 3)}, []uint64{0xffff1}
	switch i % 4 {
	case 0:
		r.AddSample(t, 10, 11, 0, user, kernel)
	case 1:
		r.AddStack(t, 10, uint64(i%3)+1, user, nil)
	case 2:
		r.AddOffCPU(t-1000, t, 10, 11, uint64(i%3)+1, "sleep")
	case 3:
		r.AddEvent(Event{TimeNS: t, Kind: "exec", PID: 10, Comm: "sh", Filename: "/bin/sh"})
	}
}

// TestEvictByAge fills the ring at a steady rate and checks which chunks
// are left: those not entirely older than MinAge plus one chunk, counted
// from the newest record.
func TestEvictByAge(t *testing.T) {
	tests := []struct {
		name                 string
		minAge, chunk, step  time.Duration
		n                    int
		wantRecords          int
		wantEvicted          uint64
		wantOldest, wantNews time.Duration
	}{
		// Last chunk starts at 29 s: chunks 0-17 (newest record 17.9 s) are
		// entirely older than 29 - 11 s.
		{"10s of 1s chunks", 10 * time.Second, time.Second, 100 * time.Millisecond, 300, 120, 180, 18 * time.Second, 29900 * time.Millisecond},
		// Last chunk starts at 9.5 s: chunks up to [3.5 s, 4 s) go.
		{"5s of 500ms chunks", 5 * time.Second, 500 * time.Millisecond, 100 * time.Millisecond, 100, 60, 40, 4 * time.Second, 9900 * time.Millisecond},
		{"nothing old enough", time.Minute, time.Second, 100 * time.Millisecond, 300, 300, 0, 0, 29900 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			r := New(Config{MinAge: tt.minAge, ChunkLen: tt.chunk, MaxBytes: 1 << 30, PeriodNS: 1}, reg)
			for i := range tt.n {
				addKind(r, int64(i)*int64(tt.step), i)
			}
			st := r.Stats()
			if st.Records != tt.wantRecords || st.Evicted != tt.wantEvicted {
				t.Errorf("records %d evicted %d, want %d and %d", st.Records, st.Evicted, tt.wantRecords, tt.wantEvicted)
			}
			if st.OldestNS != int64(tt.wantOldest) || st.NewestNS != int64(tt.wantNews) {
				t.Errorf("ring holds [%v, %v], want [%v, %v]", time.Duration(st.OldestNS), time.Duration(st.NewestNS), tt.wantOldest, tt.wantNews)
			}
			if got := testutil.ToFloat64(r.evictM); got != float64(tt.wantEvicted) {
				t.Errorf("evicted metric %v, want %d", got, tt.wantEvicted)
			}
			if newest := time.Duration(st.NewestNS - st.OldestNS); tt.wantEvicted > 0 && newest < tt.minAge {
				t.Errorf("ring keeps %v, less than MinAge %v", newest, tt.minAge)
			}
		})
	}
}

// TestEvictByBytes sizes the bound at k and a half chunks and fills ten:
// the byte bound wins over MinAge, whole oldest chunks go, and exactly the
// last k chunks stay.
func TestEvictByBytes(t *testing.T) {
	const perChunk, chunks = 1000, 10
	fill := func(r *Recorder, from, to int) {
		for c := from; c < to; c++ {
			for i := range perChunk {
				addKind(r, int64(c)*int64(time.Second)+int64(i)*int64(time.Millisecond), i)
			}
		}
	}
	// A chunk after the first is sized from the one before: measure one.
	probe := New(Config{MaxBytes: 1 << 30}, nil)
	fill(probe, 0, 2)
	two := probe.Stats().Bytes
	fill(probe, 2, 3)
	chunk, cache := probe.Stats().Bytes-two, probe.cache.bytes

	for _, k := range []int{1, 3, 5} {
		max := int64(k)*chunk + chunk/2 + cache
		r := New(Config{MaxBytes: max, MinAge: time.Hour}, nil)
		fill(r, 0, chunks)
		st := r.Stats()
		if st.Records != k*perChunk || st.Evicted != uint64((chunks-k)*perChunk) {
			t.Errorf("%d chunks fit: records %d evicted %d, want %d and %d", k, st.Records, st.Evicted, k*perChunk, (chunks-k)*perChunk)
		}
		if st.Bytes > max || st.Chunks != k {
			t.Errorf("%d chunks fit: %d chunks in %d bytes, bound %d", k, st.Chunks, st.Bytes, max)
		}
		if want := int64(chunks-k) * int64(time.Second); st.OldestNS != want {
			t.Errorf("%d chunks fit: oldest %v, want %v", k, time.Duration(st.OldestNS), time.Duration(want))
		}
	}
}

// TestLateRecordsJoinNewestChunk: the drain delivers per-CPU order, so a
// record older than the newest chunk joins it instead of reopening the past.
func TestLateRecordsJoinNewestChunk(t *testing.T) {
	r := New(Config{MinAge: time.Second, PeriodNS: 1}, nil)
	r.AddSample(int64(5*time.Second), 1, 1, 0, []uint64{1}, nil)
	r.AddSample(int64(4*time.Second), 1, 1, 1, []uint64{1}, nil)
	st := r.Stats()
	if st.Chunks != 1 || st.OldestNS != int64(4*time.Second) || st.NewestNS != int64(5*time.Second) {
		t.Errorf("late record: %+v", st)
	}
}

// TestMemoryBound fills the ring with realistic records far beyond its
// bound and checks what it holds: the pages of its mappings that are
// resident (mincore) plus what the heap grew by are what it accounts for,
// and its records are off the Go heap (only the stack cache, bounded by
// MaxBytes/8, is on it).
func TestMemoryBound(t *testing.T) {
	if testing.Short() {
		t.Skip("adds 1.5 million records")
	}
	const maxBytes int64 = 16 << 20
	w := newWorkload(1, 20, 3000)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	r := New(Config{MaxBytes: maxBytes, PeriodNS: 1}, nil)
	// 50,000 records per second, all within a minute: the byte bound wins,
	// and 1.5 million records is about four times what it holds.
	const rate = 50_000
	for i := range 1_500_000 {
		w.add(r, int64(i)*(int64(time.Second)/rate), i)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := int64(after.HeapInuse) - int64(before.HeapInuse)
	mapped := residentBytes(t, r)
	grew := heap + mapped
	st := r.Stats()
	t.Logf("accounted %.1f MiB in %d chunks (%d records, %d evicted, %d cached stacks); resident in mappings %.1f MiB, heap in use grew %.1f MiB",
		float64(st.Bytes)/(1<<20), st.Chunks, st.Records, st.Evicted, st.CachedStacks, float64(mapped)/(1<<20), float64(heap)/(1<<20))
	if st.Evicted == 0 || st.Bytes > maxBytes {
		t.Fatalf("ring not bounded: %+v", st)
	}
	if limit := maxBytes * 13 / 10; grew > limit {
		t.Errorf("the ring holds %d bytes, more than 1.3 × MaxBytes (%d)", grew, limit)
	}
	if grew < st.Bytes*7/10 {
		t.Errorf("the ring holds %d bytes, far less than the %d accounted: accounting overstates", grew, st.Bytes)
	}
	if heap > maxBytes/8+1<<20 {
		t.Errorf("heap in use grew %d bytes: the records are on the heap", heap)
	}
	runtime.KeepAlive(w) // the workload was in before too
}

// residentBytes counts the resident pages of the ring's mappings.
func residentBytes(t *testing.T, r *Recorder) int64 {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	chunks := r.ring
	if r.spare != nil {
		chunks = append(chunks[:len(chunks):len(chunks)], r.spare)
	}
	page := os.Getpagesize()
	var n int64
	for _, c := range chunks {
		for _, m := range append([][]byte{c.mem.main}, c.mem.extra...) {
			if len(m) == 0 {
				continue
			}
			vec := make([]byte, len(m)/page)
			if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
				t.Fatalf("mincore: %v", errno)
			}
			for _, v := range vec {
				n += int64(v&1) * int64(page)
			}
		}
	}
	return n
}

// TestPinnedChunkOutlivesEviction: a chunk evicted while a snapshot reads
// it keeps its mapping until the snapshot unpins it, and is unmapped then.
func TestPinnedChunkOutlivesEviction(t *testing.T) {
	r := New(Config{MinAge: time.Second, ChunkLen: time.Second, PeriodNS: 1}, nil)
	r.AddSample(0, 1, 1, 0, []uint64{0xa, 0xb}, []uint64{0xc})
	r.AddEvent(Event{TimeNS: 1, Kind: "exec", PID: 1, TID: 1, Comm: "sh", Filename: "/bin/sh"})
	views, _, _ := r.pin()
	first := views[0].c
	for s := range 5 { // evicts the first chunk by age
		r.AddSample(int64(s+2)*int64(time.Second), 1, 1, 0, []uint64{0xd}, nil)
	}
	if r.Stats().Evicted == 0 || !first.dropped {
		t.Fatalf("the pinned chunk was not evicted: %+v", r.Stats())
	}
	v := &views[0]
	if u, k := framesOf(v.frames, &v.stacks[v.samples[0].stack]); len(u) != 2 || u[1] != 0xb || k[0] != 0xc {
		t.Errorf("evicted pinned chunk reads %x %x", u, k)
	}
	if e := event(&v.events[0], v.strs); e.Comm != "sh" || e.Filename != "/bin/sh" || e.Kind != "exec" {
		t.Errorf("evicted pinned chunk's event reads %+v", e)
	}
	r.unpin(views)
	if first.mem.main != nil || first.mem.n != 0 {
		t.Errorf("unpinned evicted chunk still holds %d bytes", first.mem.n)
	}
}

// TestAddAllocatesNothing: once the ring is full and recycles its chunks,
// adding records of every kind allocates nothing on the heap, events'
// strings included (they are copied into the chunk's mapping).
func TestAddAllocatesNothing(t *testing.T) {
	r := New(Config{MinAge: time.Second, ChunkLen: 100 * time.Millisecond, PeriodNS: 1}, nil)
	user, kernel := []uint64{0x100, 0x200, 0x300}, []uint64{0xffff1}
	e := Event{Kind: "exec", PID: 10, TID: 10, Comm: "sh", Filename: "/bin/sh"}
	now := int64(0)
	add := func() {
		now += int64(time.Millisecond)
		r.AddSample(now, 10, 11, 0, user, kernel)
		r.AddStack(now, 10, 7, user, kernel)
		r.AddOffCPU(now-10, now, 10, 11, 7, "sleep")
		e.TimeNS = now
		r.AddEvent(e)
	}
	for range 5000 { // five seconds: past MinAge, chunks recycle
		add()
	}
	if n := testing.AllocsPerRun(2000, add); n != 0 {
		t.Errorf("%.2f allocations per round of four records", n)
	}
}
