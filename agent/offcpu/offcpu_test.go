package offcpu

import (
	"context"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/flightrec/flightrec/agent/events"
	"github.com/flightrec/flightrec/agent/sampler"
	"github.com/flightrec/flightrec/internal/testenv"
)

// TestIntervalsOfOwnThread: a thread of this process sleeping 5 ms at a time
// in nanosleep yields sleep intervals of about 5 ms whose stack was sent
// before them; 100 µs sleeps stay under the 1 ms minimum and are counted.
func TestIntervalsOfOwnThread(t *testing.T) {
	testenv.RequireBPF(t)
	pid := uint32(os.Getpid())
	s, err := sampler.Open(sampler.Config{Frequency: 19, PID: pid})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tr, err := Open(Config{PID: pid}, s.Shared())
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	d, err := events.NewDrainer(s.Events(), 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	tids := make(chan uint32, 1)
	go sleeper(ctx, tids)
	tid := <-tids

	stacks := map[uint64]bool{}
	var n, unknown int
	var total time.Duration
	err = d.Run(ctx, func(b *events.Batch) {
		for _, st := range b.Stacks {
			if st.PID != pid {
				t.Errorf("stack of pid %d passed the filter", st.PID)
			}
			stacks[st.Hash] = true
		}
		for _, o := range b.OffCPU {
			if o.TID != tid {
				continue
			}
			dur := time.Duration(o.End - o.Start)
			if o.State != events.Sleeping || dur < 4*time.Millisecond || dur > 50*time.Millisecond {
				continue // the short sleeps between rounds, or scheduling noise
			}
			n++
			total += dur
			if !stacks[o.StackHash] {
				unknown++
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d sleep intervals of the thread, mean %v, %d with unknown stacks", n, total/time.Duration(max(n, 1)), unknown)
	if n < 50 {
		t.Errorf("%d ~5 ms sleep intervals in 1.5 s, want ≥ 50", n)
	}
	if mean := total / time.Duration(max(n, 1)); mean < 5*time.Millisecond || mean > 7*time.Millisecond {
		t.Errorf("mean interval %v, want 5-7 ms", mean)
	}
	if unknown > 0 {
		t.Errorf("%d intervals refer to a stack not sent before them", unknown)
	}
	c, err := s.ReadCounters()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("counters %+v", c)
	if c.OffCPU < uint64(n) || c.OffCPUShort == 0 || c.Stacks == 0 || c.OffCPULost != 0 {
		t.Errorf("counters %+v: want ≥ %d intervals, some short ones, stacks, none lost", c, n)
	}
}

// sleeper alternates 5 ms and 100 µs nanosleeps on one locked thread.
func sleeper(ctx context.Context, tid chan<- uint32) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid <- uint32(syscall.Gettid())
	long := syscall.Timespec{Nsec: 5e6}
	short := syscall.Timespec{Nsec: 1e5}
	for ctx.Err() == nil {
		_ = syscall.Nanosleep(&long, nil)
		_ = syscall.Nanosleep(&short, nil)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{MinOffCPU: -time.Millisecond}).Validate(); err == nil {
		t.Error("negative minimum accepted")
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
}
