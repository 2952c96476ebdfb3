package sampler

import "fmt"

// Counters are the sampler's in-kernel counters summed over CPUs; indexes
// mirror enum counter in bpf/include/flightrec.h.
type Counters struct {
	Samples           uint64 // written to the ring
	Lost              uint64 // dropped because the ring was full
	UserStackErrors   uint64
	KernelStackErrors uint64
	Filtered          uint64 // other processes, when recording one pid
	Idle              uint64 // the idle task: not a process, not sent

	OffCPU      uint64 // off-CPU intervals written
	OffCPUShort uint64 // intervals shorter than the minimum: counted, not sent
	// OffCPUReused counts switch-outs of threads in a streak of short
	// intervals that reused their last stack instead of capturing one.
	OffCPUReused uint64
	OffCPULost   uint64 // off-CPU interval and blocking stack records dropped: ring full
	Events       uint64 // process events written
	EventsLost   uint64 // process events dropped: ring full
	Stacks       uint64 // blocking and crash stacks written
}

// fields lists the counters in the order of enum counter.
func (c *Counters) fields() []*uint64 {
	return []*uint64{&c.Samples, &c.Lost, &c.UserStackErrors, &c.KernelStackErrors, &c.Filtered, &c.Idle,
		&c.OffCPU, &c.OffCPUShort, &c.OffCPULost, &c.Events, &c.EventsLost, &c.Stacks, &c.OffCPUReused}
}

// ReadCounters sums the per-CPU counters.
func (s *Sampler) ReadCounters() (Counters, error) {
	var c Counters
	for i, dst := range c.fields() {
		var perCPU []uint64
		if err := s.objs.Counters.Lookup(uint32(i), &perCPU); err != nil {
			return Counters{}, fmt.Errorf("read counter %d: %w", i, err)
		}
		for _, v := range perCPU {
			*dst += v
		}
	}
	return c, nil
}
