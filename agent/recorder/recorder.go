// Package recorder keeps the last minute of a node's evidence (on-CPU samples,
// off-CPU intervals, process events) in a bounded ring and freezes windows of it.
package recorder

import (
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config bounds the ring. Like runtime/trace.FlightRecorder, the window is
// bounded by age and by bytes, and the byte bound wins. Ages count back from
// the newest record added, not from the wall clock: an idle ring keeps its
// last minute.
type Config struct {
	MinAge   time.Duration // keep at least this much history (default 60 s) ...
	MaxBytes int64         // ... within this many bytes (default 64 MiB): the byte bound wins

	// ChunkLen is the span of one chunk, the unit of eviction (default 1 s).
	ChunkLen time.Duration
	// StackCacheBytes bounds the cache of blocking stacks kept beyond the
	// ring, so that long sleeps still resolve (default MaxBytes/8, at most
	// MaxBytes/2). It is part of MaxBytes.
	StackCacheBytes int64
	// PeriodNS is the CPU time one sample stands for (10⁹ / frequency).
	PeriodNS int64
}

func (c *Config) defaults() {
	if c.MinAge <= 0 {
		c.MinAge = 60 * time.Second
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 64 << 20
	}
	if c.ChunkLen <= 0 {
		c.ChunkLen = time.Second
	}
	if c.StackCacheBytes <= 0 {
		c.StackCacheBytes = c.MaxBytes / 8
	}
	c.StackCacheBytes = min(c.StackCacheBytes, c.MaxBytes/2)
}

// Event is a process event as the agent decodes it.
type Event struct {
	TimeNS     int64
	Kind       string // exec, exit, signal, oom_kill
	PID, TID   uint32
	Comm       string
	ExitStatus int32 // raw wait(2) status, exit only
	Signal     int32
	SiCode     int32
	Addr       uint64
	StackHash  uint64 // signal raised by the thread itself: its stack; 0: none
	Filename   string // exec
}

// Stats describe what the ring holds.
type Stats struct {
	Bytes        int64  // accounted memory: chunks, the spare chunk and the stack cache
	Records      int    // records in the ring
	Evicted      uint64 // records evicted since New
	OldestNS     int64  // time of the oldest record held, 0 when empty
	NewestNS     int64  // time of the newest record held, 0 when empty
	Chunks       int
	CachedStacks int // blocking stacks kept beyond the ring
}

// Recorder is the ring. All methods are safe for concurrent use.
type Recorder struct {
	cfg     Config
	chunkNS int64
	evictM  prometheus.Counter

	mu       sync.Mutex
	ring     []*chunk // oldest first; the last one takes new records
	spare    *chunk   // an evicted chunk kept to reuse its arrays
	cache    stackCache
	bytes    int64 // accounted: ring, spare and cache
	records  int
	evicted  uint64
	newestNS int64 // newest record time ever added: the ring's clock
}

// New returns an empty recorder; reg may be nil.
func New(cfg Config, reg prometheus.Registerer) *Recorder {
	cfg.defaults()
	r := &Recorder{
		cfg:     cfg,
		chunkNS: int64(cfg.ChunkLen),
		evictM: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flightrec_agent_recorder_evicted_records_total",
			Help: "Records evicted from the flight recorder ring (by age or by its byte bound)."}),
		cache:    newStackCache(cfg.StackCacheBytes),
		newestNS: math.MinInt64,
	}
	if reg != nil {
		reg.MustRegister(r.evictM,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "flightrec_agent_recorder_bytes", Help: "Memory the flight recorder ring accounts for."},
				func() float64 { return float64(r.Stats().Bytes) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "flightrec_agent_recorder_records", Help: "Records held in the flight recorder ring."},
				func() float64 { return float64(r.Stats().Records) }))
	}
	return r
}

// AddSample records an on-CPU sample; user and kernel are innermost first
// and are copied (once per distinct stack per chunk).
func (r *Recorder) AddSample(timeNS int64, pid, tid uint32, cpu uint16, user, kernel []uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.chunkFor(timeNS)
	before := r.held(c)
	st := c.intern(pid, user, kernel)
	c.samples = grow(c, c.samples, 1)
	c.samples = append(c.samples, sampleRec{timeNS: timeNS, pid: pid, tid: tid, stack: st, cpu: cpu})
	r.added(c, timeNS, before)
}

// AddStack records a blocking or crashing stack that off-CPU intervals and
// signal events of pid name by hash. It is also kept in the stack cache,
// beyond the ring, for intervals that end long after it was recorded.
func (r *Recorder) AddStack(timeNS int64, pid uint32, hash uint64, user, kernel []uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.chunkFor(timeNS)
	before := r.held(c)
	st := c.intern(pid, user, kernel)
	c.stackRecs = grow(c, c.stackRecs, 1)
	c.stackRecs = append(c.stackRecs, stackRec{timeNS: timeNS, hash: hash, pid: pid, stack: st})
	r.cache.put(stackKey{pid, hash}, user, kernel)
	r.added(c, timeNS, before)
}

// AddOffCPU records an interval a thread spent off the CPU. It belongs to
// the ring at endNS, when the thread came back; state is one of sleep,
// blocked, preempted (anything else is recorded as other).
func (r *Recorder) AddOffCPU(startNS, endNS int64, pid, tid uint32, hash uint64, state string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.chunkFor(endNS)
	before := r.held(c)
	c.offCPU = grow(c, c.offCPU, 1)
	c.offCPU = append(c.offCPU, offCPURec{startNS: startNS, endNS: endNS, hash: hash, pid: pid, tid: tid, state: stateCode(state)})
	// A stack still in use is worth keeping: refresh it in the cache.
	r.cache.touch(stackKey{pid, hash})
	r.added(c, endNS, before)
}

// AddEvent records a process event, copying its strings into the ring.
func (r *Recorder) AddEvent(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.chunkFor(e.TimeNS)
	before := r.held(c)
	c.addEvent(&e)
	r.added(c, e.TimeNS, before)
}

// Stats reports what the ring holds.
func (r *Recorder) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Stats{Bytes: r.bytes, Records: r.records, Evicted: r.evicted, Chunks: len(r.ring), CachedStacks: len(r.cache.idx)}
	s.OldestNS, s.NewestNS = r.span()
	return s
}

// span returns the times of the oldest and newest records held.
func (r *Recorder) span() (oldest, newest int64) {
	oldest, newest = math.MaxInt64, math.MinInt64
	for _, c := range r.ring {
		if c.records() > 0 {
			oldest, newest = min(oldest, c.minNS), max(newest, c.maxNS)
		}
	}
	if oldest > newest {
		return 0, 0
	}
	return oldest, newest
}

// chunkFor returns the chunk that takes a record at t, starting a new one
// when t is past the current chunk. Late records (the drain delivers per-CPU
// order, not global order) join the current chunk.
func (r *Recorder) chunkFor(t int64) *chunk {
	r.newestNS = max(r.newestNS, t)
	if n := len(r.ring); n > 0 && t < r.ring[n-1].baseNS+r.chunkNS {
		return r.ring[n-1]
	}
	r.expire()
	c := r.newChunk()
	c.start(t - mod(t, r.chunkNS))
	r.ring = append(r.ring, c)
	return c
}

// newChunk returns an empty chunk sized like the newest one held, reusing
// the mapping of an evicted chunk when it can.
func (r *Recorder) newChunk() *chunk {
	if n := len(r.ring); n > 0 {
		r.makeRoom(r.ring[n-1].bytes())
	}
	c := r.spare
	r.spare = nil
	if c == nil {
		c = newChunk()
		r.bytes += c.bytes()
	}
	var prev *chunk
	if n := len(r.ring); n > 0 { // makeRoom may have evicted them all
		prev = r.ring[n-1]
	}
	before := c.bytes()
	c.reserve(prev)
	r.bytes += c.bytes() - before
	return c
}

// held is what c and the stack cache account for: the memory an Add may grow.
func (r *Recorder) held(c *chunk) int64 { return c.bytes() + r.cache.bytes }

// added accounts a record added to c; before is held(c) before it.
func (r *Recorder) added(c *chunk, t int64, before int64) {
	c.minNS, c.maxNS = min(c.minNS, t), max(c.maxNS, t)
	r.records++
	r.bytes += r.held(c) - before
	r.enforce()
}

// expire evicts the chunks entirely older than MinAge plus one chunk.
func (r *Recorder) expire() {
	horizon := r.newestNS - int64(r.cfg.MinAge) - r.chunkNS
	for len(r.ring) > 0 && r.ring[0].maxNS < horizon {
		r.evictOldest()
	}
}

// makeRoom evicts the oldest chunks when a new chunk of need bytes would
// not fit, before allocating it, so that the evicted arrays are reused.
func (r *Recorder) makeRoom(need int64) {
	for r.spare == nil && len(r.ring) > 0 && r.bytes+need > r.cfg.MaxBytes {
		r.evictOldest()
	}
}

// enforce evicts whole oldest chunks (the spare first) until the ring is
// within its byte bound.
func (r *Recorder) enforce() {
	for r.bytes > r.cfg.MaxBytes {
		switch {
		case r.spare != nil:
			r.bytes -= r.spare.bytes()
			r.spare.free()
			r.spare = nil
		case len(r.ring) > 0:
			r.evictOldest()
		default:
			return // only the cache, which is bounded by MaxBytes/2
		}
	}
}

func (r *Recorder) evictOldest() {
	c := r.ring[0]
	n := copy(r.ring, r.ring[1:])
	r.ring[n] = nil
	r.ring = r.ring[:n]
	k := c.records()
	r.records -= k
	r.evicted += uint64(k)
	r.evictM.Add(float64(k))
	r.bytes -= c.bytes()
	r.recycle(c)
}

// recycle keeps an evicted chunk's mapping for the next chunk when it fits
// the bound, and frees it otherwise; a chunk a snapshot still reads is
// freed when the snapshot is done with it.
func (r *Recorder) recycle(c *chunk) {
	switch {
	case c.pins > 0:
		c.dropped = true
		return
	case r.spare != nil:
		c.free()
		return
	}
	c.reset()
	if r.bytes+c.bytes() > r.cfg.MaxBytes {
		c.free()
		return
	}
	r.spare = c
	r.bytes += c.bytes()
}

// mod is the non-negative remainder, so chunks align on multiples of the
// chunk length whatever the sign of t.
func mod(t, n int64) int64 {
	m := t % n
	if m < 0 {
		m += n
	}
	return m
}
