package sampler

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flightrec/flightrec/agent/events"
	"github.com/flightrec/flightrec/internal/testenv"
)

func TestParseCPUList(t *testing.T) {
	tests := []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{"0", []int{0}, false},
		{"0-3", []int{0, 1, 2, 3}, false},
		{"0-1,4,6-7", []int{0, 1, 4, 6, 7}, false},
		{"", nil, true},
		{"3-1", nil, true},
		{"a", nil, true},
	}
	for _, tt := range tests {
		got, err := parseCPUList(tt.in)
		if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
			t.Errorf("parseCPUList(%q) = %v, %v; want %v, err=%v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg     Config
		wantErr bool
	}{
		{Config{Frequency: 19}, false},
		{Config{Frequency: 1000}, false},
		{Config{Frequency: 0}, true},
		{Config{Frequency: 1001}, true},
		{Config{Frequency: 99, RingBytes: 3 << 20}, true},
		{Config{Frequency: 99, RingBytes: 1 << 20}, false},
	}
	for _, tt := range tests {
		if err := tt.cfg.Validate(); (err != nil) != tt.wantErr {
			t.Errorf("%+v.Validate() = %v, wantErr %v", tt.cfg, err, tt.wantErr)
		}
	}
}

// TestSamplesOwnProcess samples this test process while one goroutine burns
// CPU, and checks the rate, the pid filter and that stacks arrive.
func TestSamplesOwnProcess(t *testing.T) {
	testenv.RequireBPF(t)
	const freq = 499
	pid := uint32(os.Getpid())
	s, d := openOwn(t, freq, 100*time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// Another process busy at the same time gives the pid filter something
	// to drop even on an otherwise idle machine.
	other := exec.CommandContext(ctx, "sh", "-c", "while :; do :; done")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer other.Wait()
	cpu0 := processCPU(t)
	go burn(ctx)

	var n, withUser, otherPID int
	tids := map[uint32]int{}
	if err := d.Run(ctx, func(b *events.Batch) {
		for _, smp := range b.Samples {
			n++
			tids[smp.TID]++
			if smp.PID != pid {
				otherPID++
			}
			if len(smp.User) > 0 {
				withUser++
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	// A cpu-clock sampler takes freq samples per second of CPU the process
	// gets: compare with the CPU it got, not with wall time, which on a
	// busy machine it does not fully get. Losing samples shows as too few;
	// on a contended machine the timer's view of who runs and the
	// scheduler's accounting drift apart upwards (seen: +24%), hence the
	// looser upper bound.
	cpu := (processCPU(t) - cpu0).Seconds()
	if want := cpu * freq; float64(n) < 0.85*want || float64(n) > 1.3*want+10 {
		t.Errorf("got %d samples for %.2f s of CPU, want %.0f (-15%%, +30%%); by thread %v", n, cpu, want, tids)
	}
	t.Logf("%d samples for %.2f s of CPU; by thread %v", n, cpu, tids)
	if otherPID != 0 {
		t.Errorf("%d samples of other processes passed the pid filter", otherPID)
	}
	if withUser < n*9/10 {
		t.Errorf("only %d of %d samples have a user stack", withUser, n)
	}
	c, err := s.ReadCounters()
	if err != nil {
		t.Fatal(err)
	}
	if c.Lost != 0 || c.Samples < uint64(n) {
		t.Errorf("counters %+v: want no loss and at least %d samples", c, n)
	}
	if c.Filtered == 0 {
		t.Errorf("counters %+v: expected other processes to be filtered out", c)
	}
}

// openOwn samples this process at freq and drains every interval; both
// close when the test ends.
func openOwn(t *testing.T, freq int, interval time.Duration) (*Sampler, *events.Drainer) {
	t.Helper()
	s, err := Open(Config{Frequency: freq, PID: uint32(os.Getpid())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	d, err := events.NewDrainer(s.Events(), interval)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return s, d
}

// processCPU is this process's user+system time so far.
func processCPU(t *testing.T) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func burn(ctx context.Context) {
	runtime.LockOSThread()
	x := uint64(1)
	for ctx.Err() == nil {
		for i := 0; i < 1e6; i++ {
			x = x*6364136223846793005 + 1
		}
	}
	_ = x
}

// TestNewProcessWakesReader: with a drain interval far longer than a
// short-lived process lives, the first samples of an unknown process still
// reach user space at once (the BPF side forces a wakeup), and a known
// process's do not.
func TestNewProcessWakesReader(t *testing.T) {
	testenv.RequireBPF(t)
	s, d := openOwn(t, 499, 3*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	go burn(ctx)
	start := time.Now()
	var firstSample, knownBatches time.Duration
	batches := 0
	d.Run(ctx, func(b *events.Batch) {
		batches++
		if len(b.Samples) > 0 && firstSample == 0 {
			firstSample = time.Since(start)
			if err := s.Know(uint32(os.Getpid())); err != nil {
				t.Error(err)
			}
		} else if firstSample != 0 && knownBatches == 0 {
			knownBatches = time.Since(start)
		}
	})
	if firstSample == 0 || firstSample > 500*time.Millisecond {
		t.Errorf("first samples of a new process arrived after %v; want well under the 3 s interval", firstSample)
	}
	// Once known, the next batch waits for the interval (or the end).
	if knownBatches != 0 && knownBatches-firstSample < time.Second {
		t.Errorf("a known process still woke the reader: next batch %v after the first", knownBatches-firstSample)
	}
	t.Logf("first batch after %v, next after %v, %d batches", firstSample, knownBatches, batches)
	if err := s.Forget(uint32(os.Getpid())); err != nil {
		t.Error(err)
	}
	if err := s.Forget(1); err != nil {
		t.Errorf("forgetting an unknown pid: %v", err)
	}
}

// TestTicksStaggered: the per-CPU timers tick out of phase. Ticking
// together, a thread woken by a sample on one CPU runs under the next tick
// of another and is sampled far beyond the CPU it uses.
func TestTicksStaggered(t *testing.T) {
	testenv.RequireBPF(t)
	cpus, err := OnlineCPUs()
	if err != nil {
		t.Fatal(err)
	}
	ia, ib, ok := twoAllowed(cpus)
	if !ok {
		t.Skip("needs two CPUs this process may run on")
	}
	a, b := cpus[ia], cpus[ib]
	// A slow rate keeps the expected offset far above sleep and wakeup
	// jitter even on a loaded machine.
	const freq = 29
	_, d := openOwn(t, freq, 100*time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	errs := make(chan error, 2)
	go func() { errs <- burnOn(ctx, a) }()
	go func() { errs <- burnOn(ctx, b) }()
	times := map[int][]uint64{}
	if err := d.Run(ctx, func(batch *events.Batch) {
		for _, smp := range batch.Samples {
			if cpu := int(smp.CPU); cpu == a || cpu == b {
				times[cpu] = append(times[cpu], smp.Time)
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	period := uint64(time.Second / freq)
	off, ok := medianOffset(times[a], times[b], period)
	if !ok {
		t.Fatalf("too few samples on cpus %d and %d: %d, %d", a, b, len(times[a]), len(times[b]))
	}
	want := period * uint64(ib-ia) / uint64(len(cpus))
	if dist := min((off-want+period)%period, (want-off+period)%period); dist > period/4 {
		t.Errorf("cpu %d ticks %v after cpu %d; want %v (a period of %v spread over %d cpus)",
			b, time.Duration(off), a, time.Duration(want), time.Duration(period), len(cpus))
	}
	t.Logf("cpu %d ticks %v after cpu %d (%d and %d samples)", b, time.Duration(off), a, len(times[a]), len(times[b]))
}

// twoAllowed picks indexes into the online cpus of two this process may
// run on, as near half the list apart as it can: their ticks are then
// furthest from each other's, in the middle of the period.
func twoAllowed(cpus []int) (ia, ib int, ok bool) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return 0, 0, false
	}
	var idx []int
	for i, cpu := range cpus {
		if set.IsSet(cpu) {
			idx = append(idx, i)
		}
	}
	if len(idx) < 2 {
		return 0, 0, false
	}
	ia, ib = idx[0], idx[1]
	for _, i := range idx[1:] {
		if abs(i-ia-len(cpus)/2) < abs(ib-ia-len(cpus)/2) {
			ib = i
		}
	}
	return ia, ib, true
}

func abs(x int) int { return max(x, -x) }

// medianOffset is the median time from a tick in as to the next in bs,
// modulo the period; ok is false with too few ticks to tell.
func medianOffset(as, bs []uint64, period uint64) (off uint64, ok bool) {
	if len(as) < 10 || len(bs) < 10 {
		return 0, false
	}
	slices.Sort(as)
	var offs []uint64
	for _, tb := range bs {
		i, _ := slices.BinarySearch(as, tb)
		if i == 0 {
			continue
		}
		offs = append(offs, (tb-as[i-1])%period)
	}
	if len(offs) < 10 {
		return 0, false
	}
	slices.Sort(offs)
	return offs[len(offs)/2], true
}

// burnOn burns CPU on one CPU until ctx ends.
func burnOn(ctx context.Context, cpu int) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pin to cpu %d: %w", cpu, err)
	}
	burn(ctx)
	return nil
}
