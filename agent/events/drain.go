package events

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"
)

// Drainer reads the shared ring buffer in batches. It waits in Go's network
// poller on the ring's file descriptor, which the BPF side signals only when
// it matters (a new process, a filling ring, a process event), or until the
// interval elapses; then it reads everything queued without blocking. A
// goroutine parked in the poller, unlike one blocked in epoll_wait, lets the
// Go runtime's monitor thread sleep too: an idle agent costs nothing.
type Drainer struct {
	rd       *ringbuf.Reader
	wake     *os.File        // a duplicate of the ring's fd, registered with the poller
	rc       syscall.RawConn // wake's raw connection, for waiting on readability
	interval time.Duration
	stats    DrainStats
}

// DrainStats counts what the drainer saw; read it only from the Run callback
// or after Run returns.
type DrainStats struct {
	Records   uint64
	Malformed uint64
	Wakeups   uint64 // batches delivered early because the BPF side asked
}

// NewDrainer opens a reader on the ring buffer map m.
func NewDrainer(m *ebpf.Map, interval time.Duration) (*Drainer, error) {
	if interval <= 0 {
		return nil, fmt.Errorf("drain interval %v must be positive", interval)
	}
	rd, err := ringbuf.NewReader(m)
	if err != nil {
		return nil, fmt.Errorf("open ring buffer reader: %w", err)
	}
	wake, rc, err := pollable(m)
	if err != nil {
		rd.Close()
		return nil, err
	}
	return &Drainer{rd: rd, wake: wake, rc: rc, interval: interval}, nil
}

// pollable registers a duplicate of m's descriptor with Go's poller.
func pollable(m *ebpf.Map) (*os.File, syscall.RawConn, error) {
	fd, err := unix.FcntlInt(uintptr(m.FD()), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("duplicate ring buffer fd: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("make ring buffer fd non-blocking: %w", err)
	}
	f := os.NewFile(uintptr(fd), "ringbuf")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("poll ring buffer fd: %w", err)
	}
	return f, rc, nil
}

// Stats returns the counters so far.
func (d *Drainer) Stats() DrainStats { return d.stats }

// Run delivers a batch to fn at least once per interval, empty or not (so
// the caller can do periodic work), and sooner when the BPF side wakes it,
// until ctx is done; then it delivers what is left in the ring and returns
// nil. The batch and its frames are only valid during the call.
func (d *Drainer) Run(ctx context.Context, fn func(*Batch)) error {
	// Closing wake interrupts a wait in progress.
	stop := context.AfterFunc(ctx, func() { d.wake.SetReadDeadline(time.Now()) })
	defer stop()

	var batch Batch
	var rec ringbuf.Record
	for {
		woken := d.wait(ctx)
		if err := d.fill(&batch, &rec); err != nil {
			return err
		}
		if woken {
			d.stats.Wakeups++
		}
		fn(&batch)
		batch.Reset()
		if ctx.Err() != nil {
			return nil
		}
	}
}

// wait returns when the ring signals readability (true) or the interval or
// ctx ends (false).
func (d *Drainer) wait(ctx context.Context) bool {
	if ctx.Err() != nil {
		return false
	}
	d.wake.SetReadDeadline(time.Now().Add(d.interval))
	first := true
	err := d.rc.Read(func(uintptr) bool {
		// The first call asks the poller to wait for readability; the
		// second comes after it. Reading is the ring reader's job.
		if first {
			first = false
			return false
		}
		return true
	})
	return err == nil
}

// fill decodes every record queued into batch without blocking.
func (d *Drainer) fill(batch *Batch, rec *ringbuf.Record) error {
	d.rd.SetDeadline(time.Unix(1, 0)) // in the past: never block
	for {
		err := d.rd.ReadInto(rec)
		switch {
		case err == nil:
			d.stats.Records++
			if batch.Decode(rec.RawSample) != nil {
				d.stats.Malformed++
			}
		case errors.Is(err, os.ErrDeadlineExceeded):
			return nil
		default:
			return fmt.Errorf("read ring buffer: %w", err)
		}
	}
}

// Close releases the reader.
func (d *Drainer) Close() error {
	return errors.Join(d.wake.Close(), d.rd.Close())
}
