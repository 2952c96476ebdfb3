package sampler

import (
	"context"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

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
	s, err := Open(Config{Frequency: freq, PID: pid})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d, err := events.NewDrainer(s.Events(), 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	go burn(ctx)

	var n, withUser, otherPID int
	if err := d.Run(ctx, func(b *events.Batch) {
		for _, smp := range b.Samples {
			n++
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
	// One goroutine burns for 2 s; the test's other threads add a little.
	if min := freq * 2 * 8 / 10; n < min {
		t.Errorf("got %d samples of this process, want at least %d", n, min)
	}
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
