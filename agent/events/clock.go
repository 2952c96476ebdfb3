package events

import (
	"time"

	"golang.org/x/sys/unix"
)

// Clock converts the BPF side's CLOCK_BOOTTIME timestamps to wall time.
// Boot time keeps counting across suspend, unlike CLOCK_MONOTONIC, so the
// offset to wall time only moves when the wall clock is stepped: Sync it
// once per reporting interval.
type Clock struct {
	offset int64 // wall ns - boot ns
}

// NewClock returns a synced clock.
func NewClock() *Clock {
	c := &Clock{}
	c.Sync()
	return c
}

// Sync re-measures the offset.
func (c *Clock) Sync() {
	var boot unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &boot)
	wall := time.Now().UnixNano()
	c.offset = wall - boot.Nano()
}

// Wall converts a boot-time timestamp.
func (c *Clock) Wall(bootNS uint64) time.Time {
	return time.Unix(0, int64(bootNS)+c.offset)
}

// Now returns the current boot time in nanoseconds.
func Now() uint64 {
	var boot unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &boot)
	return uint64(boot.Nano())
}
