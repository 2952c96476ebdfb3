package recorder

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/flightrec/flightrec/agent/symbolize"
	"github.com/flightrec/flightrec/wire/snapshot"
)

// Resolver supplies what the recorder cannot know: labels and symbols. It
// has aggregate.Resolver's methods, so the agent's process table serves both.
type Resolver interface {
	// Labels returns the series labels of pid.
	Labels(pid uint32) map[string]string
	// User resolves a user address of pid; call is true for return
	// addresses, which belong to the call instruction just before them.
	User(pid uint32, addr uint64, call bool) symbolize.Location
	// Kernel resolves a kernel address.
	Kernel(addr uint64, call bool) symbolize.Location
}

// Snapshot freezes the records of [startNS, endNS) into meta: Processes,
// Frames, Stacks, Samples, OffCPU, Events, Stats, StartNS, EndNS and
// Version. ID, Node, Labels, Trigger and Stats.LostSamples are the
// caller's. Samples and events count when their time is in the window,
// off-CPU intervals when they overlap it.
//
// The ring keeps recording while the snapshot is built: the lock is held
// only to pin and unpin the chunks and to look up stacks beyond the ring.
// The window's records and distinct stacks are copied out of the pinned
// chunks, then symbolized without the lock, once per distinct (pid,
// address, call).
func (r *Recorder) Snapshot(startNS, endNS int64, res Resolver, meta *snapshot.Snapshot) error {
	if endNS <= startNS {
		return fmt.Errorf("snapshot window [%d, %d) is empty", startNS, endNS)
	}
	if r.cfg.PeriodNS <= 0 {
		return errors.New("snapshot: the recorder has no sampling period (Config.PeriodNS)")
	}
	views, ringStart, evicted := r.pin()
	w := newWindow(startNS, endNS)
	for i := range views {
		w.collect(&views[i])
	}
	w.nameFromRing(views)
	w.own()
	r.unpin(views) // the window holds copies: the ring may reuse its chunks
	r.nameFromCache(w)

	b := newBuilder(res, meta, w)
	b.build(w, r.cfg.PeriodNS)
	meta.Version, meta.StartNS, meta.EndNS = snapshot.Version, startNS, endNS
	meta.Stats = snapshot.Stats{
		RingEvicted:     evicted,
		RingStartNS:     ringStart,
		LostSamples:     meta.Stats.LostSamples,
		UnknownStacks:   b.unknown,
		TruncatedRecord: meta.Stats.TruncatedRecord,
	}
	return nil
}

// view is what a snapshot reads of one chunk: the arrays as long as they
// were when pinned. Appends after that write beyond these lengths, and a
// pinned chunk is never reset, so the view stays valid without the lock.
type view struct {
	c         *chunk
	samples   []sampleRec
	offCPU    []offCPURec
	stackRecs []stackRec
	events    []eventRec
	strs      []byte
	stacks    []stackRef
	frames    []uint64
	local     []int32 // chunk stack → window stack, -1 not yet
}

func (r *Recorder) pin() (views []view, ringStart int64, evicted uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	views = make([]view, len(r.ring))
	for i, c := range r.ring {
		c.pins++
		views[i] = view{c: c, samples: c.samples, offCPU: c.offCPU, stackRecs: c.stackRecs, events: c.events, strs: c.strs, stacks: c.stacks, frames: c.frames}
	}
	ringStart, _ = r.span()
	return views, ringStart, r.evicted
}

func (r *Recorder) unpin(views []view) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range views {
		if v.c.pins--; v.c.pins == 0 && v.c.dropped {
			v.c.free() // evicted while this snapshot read it
		}
	}
}

// nameFromCache finds the stacks the ring no longer holds in the stack
// cache. It copies them under the lock; the cache owns its frames.
func (r *Recorder) nameFromCache(w *window) {
	type found struct {
		k            stackKey
		user, kernel []uint64
	}
	var hits []found
	r.mu.Lock()
	for k, id := range w.named {
		if id < 0 {
			if u, kr, ok := r.cache.get(k); ok {
				hits = append(hits, found{k, u, kr})
			}
		}
	}
	r.mu.Unlock()
	for _, h := range hits {
		w.named[h.k] = w.add(hashStack(h.k.pid, h.user, h.kernel), h.k.pid, h.user, h.kernel)
	}
}

// window gathers a snapshot's records and the distinct raw stacks they use.
type window struct {
	startNS, endNS int64
	stacks         []rawStack
	byHash         map[uint64]int32   // the newest raw stack with a hash; older ones chain by next
	named          map[stackKey]int32 // stacks named by (pid, hash): raw index, -1 not found
	samples        []sampleRec        // stack is a raw index
	offCPU         []offCPURec
	events         []Event
}

type rawStack struct {
	hash         uint64
	pid          uint32
	user, kernel []uint64
	next         int32
}

func newWindow(startNS, endNS int64) *window {
	return &window{startNS: startNS, endNS: endNS, byHash: map[uint64]int32{}, named: map[stackKey]int32{}}
}

func (w *window) in(t int64) bool { return t >= w.startNS && t < w.endNS }

// overlaps tells whether an interval shares time with the window; an empty
// interval counts when its instant is in the window.
func (w *window) overlaps(start, end int64) bool {
	if start == end {
		return w.in(start)
	}
	return start < w.endNS && end > w.startNS
}

func (w *window) collect(v *view) {
	for _, s := range v.samples {
		if w.in(s.timeNS) {
			s.stack = w.fromChunk(v, s.stack)
			w.samples = append(w.samples, s)
		}
	}
	for _, o := range v.offCPU {
		if w.overlaps(o.startNS, o.endNS) {
			w.offCPU = append(w.offCPU, o)
			w.name(o.pid, o.hash)
		}
	}
	for i := range v.events {
		if e := &v.events[i]; w.in(e.timeNS) {
			w.events = append(w.events, event(e, v.strs))
			w.name(e.pid, e.stackHash)
		}
	}
}

// own copies the frames of the window's stacks out of the ring's chunks.
func (w *window) own() {
	n := 0
	for _, s := range w.stacks {
		n += len(s.user) + len(s.kernel)
	}
	arena := make([]uint64, 0, n)
	for i := range w.stacks {
		s := &w.stacks[i]
		off := len(arena)
		arena = append(append(arena, s.user...), s.kernel...)
		u := off + len(s.user)
		s.user, s.kernel = arena[off:u:u], arena[u:len(arena):len(arena)]
	}
}

// name notes a stack the window refers to by hash; 0 names none.
func (w *window) name(pid uint32, hash uint64) {
	if hash == 0 {
		return
	}
	if _, ok := w.named[stackKey{pid, hash}]; !ok {
		w.named[stackKey{pid, hash}] = -1
	}
}

// nameFromRing resolves named stacks through the stack records of every
// chunk held, inside the window or not: a stack is recorded once per change,
// often well before the intervals that name it.
func (w *window) nameFromRing(views []view) {
	if len(w.named) == 0 {
		return
	}
	for i := len(views) - 1; i >= 0; i-- {
		v := &views[i]
		for _, s := range v.stackRecs {
			k := stackKey{s.pid, s.hash}
			if id, ok := w.named[k]; ok && id < 0 {
				w.named[k] = w.fromChunk(v, s.stack)
			}
		}
	}
}

// fromChunk maps a chunk's stack to the window's, once per chunk stack.
func (w *window) fromChunk(v *view, s int32) int32 {
	if v.local == nil {
		v.local = make([]int32, len(v.stacks))
		for i := range v.local {
			v.local[i] = -1
		}
	}
	if id := v.local[s]; id >= 0 {
		return id
	}
	ref := &v.stacks[s]
	u, k := framesOf(v.frames, ref)
	id := w.add(ref.hash, ref.pid, u, k)
	v.local[s] = id
	return id
}

// add returns the raw stack equal to (pid, user, kernel), adding it first.
func (w *window) add(h uint64, pid uint32, user, kernel []uint64) int32 {
	first, ok := w.byHash[h]
	if ok {
		for i := first; i >= 0; i = w.stacks[i].next {
			if s := &w.stacks[i]; s.pid == pid && slices.Equal(s.user, user) && slices.Equal(s.kernel, kernel) {
				return i
			}
		}
	} else {
		first = -1
	}
	w.stacks = append(w.stacks, rawStack{hash: h, pid: pid, user: user, kernel: kernel, next: first})
	id := int32(len(w.stacks) - 1)
	w.byHash[h] = id
	return id
}

// lookup returns the raw stack a hash names, or -1.
func (w *window) lookup(pid uint32, hash uint64) int32 {
	if id, ok := w.named[stackKey{pid, hash}]; ok {
		return id
	}
	return -1
}

func sortByTime(w *window) {
	slices.SortStableFunc(w.samples, func(a, b sampleRec) int { return cmp.Compare(a.timeNS, b.timeNS) })
	slices.SortStableFunc(w.offCPU, func(a, b offCPURec) int { return cmp.Compare(a.startNS, b.startNS) })
	slices.SortStableFunc(w.events, func(a, b Event) int { return cmp.Compare(a.TimeNS, b.TimeNS) })
}
