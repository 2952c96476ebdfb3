package agent

import (
	"testing"
	"time"

	"github.com/flightrec/flightrec/agent/procinfo"
)

func TestCPUUse(t *testing.T) {
	procs := newProcessTable("n1", procinfo.Reader{}, nil, nil, 0)
	c := newCPUUse()
	t0 := time.Unix(1000, 0)
	const period = int64(time.Second) / 100 // 100 Hz
	if got := c.take(t0, period, procs); len(got) != 0 {
		t.Fatalf("first drain reported %v: it has no length", got)
	}
	c.samples[7] = 150 // 1.5 s of CPU in 2 s
	c.samples[8] = 20
	got := c.take(t0.Add(2*time.Second), period, procs)
	want := map[uint32]float64{7: 0.75, 8: 0.1}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for _, u := range got {
		if d := u.Fraction - want[u.PID]; d > 1e-9 || d < -1e-9 {
			t.Errorf("pid %d: %.3f of a CPU, want %.3f", u.PID, u.Fraction, want[u.PID])
		}
		if u.Labels["node"] != "n1" {
			t.Errorf("pid %d labels %v, want the node's", u.PID, u.Labels)
		}
	}
	c.samples[7] = 100
	got = c.take(t0.Add(3*time.Second), period, procs)
	seen := map[uint32]float64{}
	for _, u := range got {
		seen[u.PID] = u.Fraction
	}
	if seen[7] != 1 || len(seen) != 2 || seen[8] != 0 {
		t.Errorf("third drain %v: want pid 7 at 1.0 and pid 8 once at zero", seen)
	}
	if got = c.take(t0.Add(4*time.Second), period, procs); len(got) != 1 || got[0].PID != 7 || got[0].Fraction != 0 {
		t.Errorf("fourth drain %v: want only pid 7, at zero", got)
	}
}
