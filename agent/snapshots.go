package agent

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/flightrec/flightrec/agent/events"
	"github.com/flightrec/flightrec/wire/snapshot"
)

// SnapshotResult is a built snapshot, or why there is none.
type SnapshotResult struct {
	Snapshot *snapshot.Snapshot
	Err      error
}

// Errors RequestSnapshot can deliver.
var (
	ErrNoRecorder = errors.New("snapshot: the agent runs without a flight recorder")
	ErrStopped    = errors.New("snapshot: the agent has stopped")
)

// RequestSnapshot asks the pipeline to freeze [at-before, at+after]; the
// snapshot is built on the drain goroutine (where the process table lives)
// at the first drain after at+after has passed, and delivered on the
// returned channel (buffered, 1). meta carries id, node, trigger. A request
// pending when the agent stops is built with the window cut at that moment.
// Safe for concurrent use.
func (a *Agent) RequestSnapshot(meta *snapshot.Snapshot, at time.Time, before, after time.Duration) <-chan SnapshotResult {
	ch := make(chan SnapshotResult, 1)
	switch {
	case a.cfg.Recorder == nil:
		ch <- SnapshotResult{Err: ErrNoRecorder}
	case before < 0 || after < 0 || before+after <= 0:
		ch <- SnapshotResult{Err: fmt.Errorf("snapshot: window of %v before and %v after is empty", before, after)}
	default:
		a.snaps.add(&snapshotRequest{meta: meta, start: at.Add(-before), end: at.Add(after), ch: ch})
	}
	return ch
}

type snapshotRequest struct {
	meta       *snapshot.Snapshot
	start, end time.Time
	ch         chan SnapshotResult
}

// snapshotQueue holds the requests whose window has not passed yet.
type snapshotQueue struct {
	mu      sync.Mutex
	pending []*snapshotRequest
	stopped bool
}

// commitSlack covers the time between a record's timestamp and its commit
// to the ring: a drain at t has every record stamped before t-commitSlack.
const commitSlack = 50 * time.Millisecond

func (q *snapshotQueue) add(r *snapshotRequest) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stopped {
		r.ch <- SnapshotResult{Err: ErrStopped}
		return
	}
	q.pending = append(q.pending, r)
}

// due removes and returns the requests whose window ended before the
// drain at drained; with stop, all of them, and no more are taken.
func (q *snapshotQueue) due(drained time.Time, stop bool) []*snapshotRequest {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.stopped = q.stopped || stop
	var out []*snapshotRequest
	kept := q.pending[:0]
	for _, r := range q.pending {
		if stop || !r.end.After(drained.Add(-commitSlack)) {
			out = append(out, r)
		} else {
			kept = append(kept, r)
		}
	}
	clear(q.pending[len(kept):])
	q.pending = kept
	return out
}

// buildDue builds the requests whose window has passed by the drain at drained.
func (q *snapshotQueue) buildDue(drained time.Time, build func(*snapshotRequest) error) {
	for _, r := range q.due(drained, false) {
		r.ch <- SnapshotResult{Snapshot: r.meta, Err: build(r)}
	}
}

// stop builds every pending request, cut at now, and refuses new ones.
func (q *snapshotQueue) stop(now time.Time, build func(*snapshotRequest) error) {
	for _, r := range q.due(now, true) {
		if r.end.After(now) {
			r.end = now
		}
		if !r.end.After(r.start) {
			r.ch <- SnapshotResult{Err: ErrStopped}
			continue
		}
		r.ch <- SnapshotResult{Snapshot: r.meta, Err: build(r)}
	}
}

// snapshot builds r from the recorder on the drain goroutine.
func (a *Agent) snapshot(r *snapshotRequest) error {
	if a.sampler != nil { // nil in tests without BPF
		if c, err := a.sampler.ReadCounters(); err == nil {
			r.meta.Stats.LostSamples = c.Lost
		}
	}
	start := time.Now()
	err := a.cfg.Recorder.Snapshot(r.start.UnixNano(), r.end.UnixNano(), a.procs, r.meta)
	a.m.snapshots.WithLabelValues(outcome(err)).Inc()
	if err != nil {
		return fmt.Errorf("build snapshot %s: %w", r.meta.ID, err)
	}
	a.log.Info("snapshot built", "id", r.meta.ID, "took", time.Since(start).Round(time.Millisecond),
		"samples", len(r.meta.Samples.TimeNS), "off_cpu", len(r.meta.OffCPU.StartNS), "events", len(r.meta.Events))
	return nil
}

func outcome(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

// eventHook hands process events to Config.OnEvent on a goroutine of its
// own, through a bounded queue: the drain loop never waits for it.
type eventHook struct {
	fn      func(events.ProcEvent, map[string]string)
	queue   chan hookEvent
	done    chan struct{}
	dropped interface{ Inc() }
}

type hookEvent struct {
	e      events.ProcEvent
	labels map[string]string
}

// hookQueue absorbs a burst of process events (a build spawning compilers)
// while the consumer works.
const hookQueue = 1024

func newEventHook(fn func(events.ProcEvent, map[string]string), dropped interface{ Inc() }) *eventHook {
	return &eventHook{fn: fn, queue: make(chan hookEvent, hookQueue), done: make(chan struct{}), dropped: dropped}
}

func (h *eventHook) run() {
	defer close(h.done)
	for ev := range h.queue {
		h.fn(ev.e, ev.labels)
	}
}

// offer queues the event, or drops and counts it when the queue is full.
func (h *eventHook) offer(e events.ProcEvent, labels map[string]string) {
	select {
	case h.queue <- hookEvent{e, labels}:
	default:
		h.dropped.Inc()
	}
}

// close lets the consumer finish what is queued, waiting at most a second
// for it: a stuck consumer must not keep the agent from stopping.
func (h *eventHook) close() {
	close(h.queue)
	select {
	case <-h.done:
	case <-time.After(time.Second):
	}
}
