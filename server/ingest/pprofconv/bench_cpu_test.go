package pprofconv

import (
	"syscall"
	"testing"
	"time"
)

// cpuTimer reports a benchmark's process CPU per op (cpu-ns/op): on a
// shared machine wall time counts other tenants' work, CPU time does not.
// It counts every thread, GC included, as a server pays for them.
type cpuTimer struct{ start time.Duration }

func startCPU() cpuTimer { return cpuTimer{processCPU()} }

func (c cpuTimer) report(b *testing.B) {
	if b.N > 0 {
		b.ReportMetric(float64(processCPU()-c.start)/float64(b.N), "cpu-ns/op")
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
