package events

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
)

// Drainer reads the shared ring buffer in batches: the BPF side submits
// without waking the reader until a threshold is queued, and the drainer
// collects everything queued once per interval.
type Drainer struct {
	rd       *ringbuf.Reader
	interval time.Duration
	stats    DrainStats
}

// DrainStats counts what the drainer saw; read it only from the Run callback
// or after Run returns.
type DrainStats struct {
	Records   uint64
	Malformed uint64
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
	return &Drainer{rd: rd, interval: interval}, nil
}

// Stats returns the counters so far.
func (d *Drainer) Stats() DrainStats { return d.stats }

// Run delivers one batch per interval to fn, empty or not (so the caller can
// do periodic work), until ctx is done; then it delivers what is left in the
// ring and returns nil. The batch and its frames are only valid during the
// call.
func (d *Drainer) Run(ctx context.Context, fn func(*Batch)) error {
	stop := context.AfterFunc(ctx, func() { _ = d.rd.Flush() })
	defer stop()

	var batch Batch
	var rec ringbuf.Record
	for {
		d.rd.SetDeadline(time.Now().Add(d.interval))
		final, err := d.fill(&batch, &rec)
		if err != nil {
			return err
		}
		fn(&batch)
		batch.Reset()
		if final {
			return nil
		}
	}
}

// fill decodes records into batch until the deadline passes (final=false) or
// a flush requested at shutdown has emptied the ring (final=true).
func (d *Drainer) fill(batch *Batch, rec *ringbuf.Record) (final bool, err error) {
	for {
		err := d.rd.ReadInto(rec)
		switch {
		case err == nil:
			d.stats.Records++
			if batch.Decode(rec.RawSample) != nil {
				d.stats.Malformed++
			}
		case errors.Is(err, os.ErrDeadlineExceeded):
			return false, nil
		case errors.Is(err, ringbuf.ErrFlushed):
			return true, nil
		default:
			return false, fmt.Errorf("read ring buffer: %w", err)
		}
	}
}

// Close releases the reader; it interrupts a running Run.
func (d *Drainer) Close() error { return d.rd.Close() }
