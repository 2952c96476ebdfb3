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
}

// ReadCounters sums the per-CPU counters.
func (s *Sampler) ReadCounters() (Counters, error) {
	var c Counters
	for i, dst := range []*uint64{&c.Samples, &c.Lost, &c.UserStackErrors, &c.KernelStackErrors, &c.Filtered, &c.Idle} {
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
