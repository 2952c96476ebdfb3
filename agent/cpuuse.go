package agent

import "time"

// cpuUse counts each process's samples between drains and turns them into
// a fraction of one CPU for Config.OnCPU.
type cpuUse struct {
	samples map[uint32]int
	prev    map[uint32]int // last drain's counts: a process that stops being sampled is reported once at zero
	last    time.Time
	out     []ProcessCPU
}

func newCPUUse() *cpuUse {
	return &cpuUse{samples: map[uint32]int{}, prev: map[uint32]int{}}
}

// take reports the drain that ended at now and starts the next one.
func (c *cpuUse) take(now time.Time, periodNS int64, procs *processTable) []ProcessCPU {
	elapsed := now.Sub(c.last)
	first := c.last.IsZero()
	c.last = now
	c.out = c.out[:0]
	if !first && elapsed > 0 {
		for pid, n := range c.samples {
			c.out = append(c.out, ProcessCPU{PID: pid, Fraction: float64(int64(n)*periodNS) / float64(elapsed), Labels: procs.Labels(pid)})
		}
		for pid := range c.prev {
			if _, ok := c.samples[pid]; !ok {
				c.out = append(c.out, ProcessCPU{PID: pid, Labels: procs.Labels(pid)})
			}
		}
	}
	c.prev, c.samples = c.samples, c.prev
	clear(c.samples)
	return c.out
}
