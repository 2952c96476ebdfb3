package agent

import (
	"cmp"
	"slices"
)

// stackCache keeps the blocking stacks the BPF side sends once per change
// per thread, so that every later off-CPU interval naming one by (pid,
// hash) can be attributed. It is bounded per process and in total; when
// full it evicts the least recently used quarter of the fullest process,
// because a thread that keeps blocking at the same place never resends
// its stack, so the stacks in use must be the ones that stay.
type stackCache struct {
	perProcess int // most stacks one process may hold
	total      int // most stacks overall
	n          int
	evicted    uint64
	byPID      map[uint32]map[uint64]*cachedStack
}

type cachedStack struct {
	user, kernel []uint64
	used         uint64 // boot ns of the last put or get
}

// Default bounds: a deep blocking stack is ~40 frames, so the total is ~5 MiB.
const (
	defaultStacksPerProcess = 2048
	defaultStacksTotal      = 16384
)

func newStackCache(perProcess, total int) *stackCache {
	return &stackCache{perProcess: max(perProcess, 1), total: max(total, 1), byPID: map[uint32]map[uint64]*cachedStack{}}
}

// put stores a copy of the stack (unless it is already there, as it is
// when another thread blocks at the same place).
func (c *stackCache) put(pid uint32, hash uint64, user, kernel []uint64, now uint64) {
	m := c.byPID[pid]
	if m == nil {
		m = map[uint64]*cachedStack{}
		c.byPID[pid] = m
	}
	if s, ok := m[hash]; ok && slices.Equal(s.user, user) && slices.Equal(s.kernel, kernel) {
		s.used = max(s.used, now)
		return
	}
	if _, ok := m[hash]; !ok {
		c.n++
	}
	frames := make([]uint64, 0, len(user)+len(kernel))
	frames = append(append(frames, user...), kernel...)
	m[hash] = &cachedStack{user: frames[:len(user):len(user)], kernel: frames[len(user):], used: now}
	switch {
	case len(m) > c.perProcess:
		c.evict(pid, m)
	case c.n > c.total:
		c.evict(c.fullest())
	}
}

// get returns pid's stack named hash; the slices must not be modified.
func (c *stackCache) get(pid uint32, hash uint64, now uint64) (user, kernel []uint64, ok bool) {
	s, ok := c.byPID[pid][hash]
	if !ok {
		return nil, nil, false
	}
	s.used = max(s.used, now)
	return s.user, s.kernel, true
}

// forget drops every stack of pid.
func (c *stackCache) forget(pid uint32) {
	c.n -= len(c.byPID[pid])
	delete(c.byPID, pid)
}

func (c *stackCache) len() int { return c.n }

func (c *stackCache) fullest() (uint32, map[uint64]*cachedStack) {
	var pid uint32
	var most map[uint64]*cachedStack
	for p, m := range c.byPID {
		if len(m) > len(most) {
			pid, most = p, m
		}
	}
	return pid, most
}

// evict drops the least recently used quarter (at least one) of pid's stacks.
func (c *stackCache) evict(pid uint32, m map[uint64]*cachedStack) {
	type entry struct {
		hash uint64
		used uint64
	}
	entries := make([]entry, 0, len(m))
	for h, s := range m {
		entries = append(entries, entry{h, s.used})
	}
	slices.SortFunc(entries, func(a, b entry) int { return cmp.Compare(a.used, b.used) })
	for _, e := range entries[:max(len(entries)/4, 1)] {
		delete(m, e.hash)
		c.n--
		c.evicted++
	}
	if len(m) == 0 {
		delete(c.byPID, pid)
	}
}
