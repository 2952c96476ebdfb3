// Command offcpu is a ground-truth workload for flightrec's off-CPU tests: one
// OS thread blocks in three named functions in proportions fixed by time.
//
// The blocking thread (the main goroutine, locked to its thread) repeats a
// round of:
//
//	main.sleepFn  nanosleep(2) for 5 units                       50% of the off-CPU time
//	main.futexFn  FUTEX_WAIT until the waker's FUTEX_WAKE, 3 units  30%
//	main.pipeFn   read(2) on a pipe until the waker writes, 2 units 20%
//
// with a unit of -unit (default 3 ms, so blocks of 6-15 ms), and after each
// block a little CPU work in main.spin (-spin, default 500 µs), which is on
// the CPU, not off it. The waker is a second locked thread that, asked by
// the blocker just before it blocks, sleeps the block's length and then
// wakes it. Every call, the hand-over to the waker included, is a raw
// system call: os.File or channels would park the goroutine in Go's
// scheduler instead of blocking the thread, and waking a parked goroutine
// takes the runtime long enough to preempt the blocker.
//
// Both threads run SCHED_FIFO when allowed (-fifo, root): nothing else on
// the node then preempts them, so main.spin's off-CPU time is exactly zero
// and each block lasts what the waker says, however busy the CPUs are.
//
// It prints "ready <pid>" once the first round has begun and runs until
// killed or until -duration elapses. Expect each share within ~1 point: a
// wake-up costs tens of microseconds more than the nominal block.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Linux futex operations (linux/futex.h), private to this process.
const (
	futexWaitPrivate = 0 | 128
	futexWakePrivate = 1 | 128
)

// blocker is the state the blocking thread and the waker share. The word
// and the pipe are the wake-up paths; a request (seq, length, path) says
// which to take when.
type blocker struct {
	word   uint32 // futexFn waits on it while 0
	seq    uint32 // requests so far: the waker waits on it
	length int64  // the requested block, in ns
	viaFut uint32 // 1: wake through word, 0: through the pipe
	pipe   [2]int
	sink   uint64
	fifo   bool
}

// realtime makes the calling thread SCHED_FIFO (priority 1) if asked and
// allowed; without it the test's workload is only preemptible.
func (b *blocker) realtime() {
	if !b.fifo {
		return
	}
	prio := int32(1)
	const schedFIFO = 1
	if _, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, 0, schedFIFO, uintptr(unsafe.Pointer(&prio))); errno != 0 {
		fmt.Fprintln(os.Stderr, "offcpu: SCHED_FIFO:", errno, "(running preemptible)")
	}
}

func main() {
	unit := flag.Duration("unit", 3*time.Millisecond, "time unit: blocks last 5, 3 and 2 units")
	spinFor := flag.Duration("spin", 500*time.Microsecond, "CPU work in main.spin after each block")
	duration := flag.Duration("duration", 5*time.Minute, "exit after this long")
	fifo := flag.Bool("fifo", true, "run the blocking and waking threads SCHED_FIFO (needs root)")
	flag.Parse()

	// The blocking thread is the main one; lock it before anything else.
	runtime.LockOSThread()
	b := &blocker{fifo: *fifo}
	b.realtime()
	if err := syscall.Pipe(b.pipe[:]); err != nil {
		fmt.Fprintln(os.Stderr, "pipe:", err)
		os.Exit(1)
	}
	go b.waker()

	var stop atomic.Bool
	time.AfterFunc(*duration, func() { stop.Store(true) })
	fmt.Printf("ready %d\n", os.Getpid())
	for !stop.Load() {
		b.round(*unit, *spinFor)
	}
}

// round is one cycle of the three blocks, with CPU work after each.
func (b *blocker) round(unit, spinFor time.Duration) {
	sleepFn(5 * unit)
	spin(b, spinFor)
	futexFn(b, 3*unit)
	spin(b, spinFor)
	pipeFn(b, 2*unit)
	spin(b, spinFor)
}

// sleepFn blocks the thread in nanosleep(2) for d.
//
//go:noinline
func sleepFn(d time.Duration) {
	nanosleep(d)
}

// futexFn blocks the thread in FUTEX_WAIT until the waker wakes it, d later.
//
//go:noinline
func futexFn(b *blocker, d time.Duration) {
	atomic.StoreUint32(&b.word, 0)
	b.request(d, 1)
	for atomic.LoadUint32(&b.word) == 0 {
		// EAGAIN (already woken) and EINTR both just re-check the word.
		futex(&b.word, futexWaitPrivate, 0)
	}
}

// pipeFn blocks the thread in read(2) on the pipe until the waker writes, d later.
//
//go:noinline
func pipeFn(b *blocker, d time.Duration) {
	b.request(d, 0)
	var buf [1]byte
	for {
		n, _, errno := syscall.Syscall(syscall.SYS_READ, uintptr(b.pipe[0]), uintptr(unsafe.Pointer(&buf[0])), 1)
		if errno != syscall.EINTR && n == 1 {
			return
		}
	}
}

// spin is the blocker's CPU work: it must show on-CPU, never off-CPU.
//
//go:noinline
func spin(b *blocker, d time.Duration) {
	x := b.sink | 1
	for start := time.Now(); time.Since(start) < d; {
		for i := 0; i < 1000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	b.sink = x
}

// request hands the waker a block of length d to end through the futex
// word (viaFut 1) or the pipe.
func (b *blocker) request(d time.Duration, viaFut uint32) {
	atomic.StoreInt64(&b.length, int64(d))
	atomic.StoreUint32(&b.viaFut, viaFut)
	atomic.AddUint32(&b.seq, 1)
	futex(&b.seq, futexWakePrivate, 1)
}

// waker runs on its own thread: for each request it sleeps the block's
// length, then wakes the blocker.
func (b *blocker) waker() {
	runtime.LockOSThread()
	b.realtime()
	one := [1]byte{1}
	for seen := uint32(0); ; seen++ {
		for atomic.LoadUint32(&b.seq) == seen {
			futex(&b.seq, futexWaitPrivate, seen)
		}
		nanosleep(time.Duration(atomic.LoadInt64(&b.length)))
		if atomic.LoadUint32(&b.viaFut) == 1 {
			atomic.StoreUint32(&b.word, 1)
			futex(&b.word, futexWakePrivate, 1)
			continue
		}
		syscall.Syscall(syscall.SYS_WRITE, uintptr(b.pipe[1]), uintptr(unsafe.Pointer(&one[0])), 1)
	}
}

// futex is a raw futex(2) call on addr without a timeout.
func futex(addr *uint32, op, val uint32) {
	syscall.Syscall6(syscall.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), uintptr(op), uintptr(val), 0, 0, 0)
}

// nanosleep sleeps d in one raw nanosleep(2), resumed after signals.
func nanosleep(d time.Duration) {
	ts := syscall.NsecToTimespec(d.Nanoseconds())
	for {
		_, _, errno := syscall.Syscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), uintptr(unsafe.Pointer(&ts)), 0)
		if errno != syscall.EINTR {
			return
		}
	}
}
