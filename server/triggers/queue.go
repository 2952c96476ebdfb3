package triggers

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Queue holds each node's pending triggers for a while, for its agent's
// long poll: an agent reconnecting after a blip still gets them, and the
// "after" id it sends makes redelivery harmless.
type Queue struct {
	ttl time.Duration
	now func() time.Time

	closed    chan struct{} // closed by Close: polls end at once
	closeOnce sync.Once

	mu     sync.Mutex
	seq    uint64
	lastNS int64
	nodes  map[string]*nodeQueue
	polled map[string]time.Time // node → when its agent last polled
}

type nodeQueue struct {
	items   []queued      // in id order
	wake    chan struct{} // closed, and replaced, when items arrive
	waiters int           // polls waiting
}

type queued struct {
	t   Trigger
	key idKey
	at  time.Time
}

// idKey orders trigger ids: t-<unix ns>-<seq>, ns strictly increasing
// within a server so that ids also order across restarts.
type idKey struct {
	ns  int64
	seq uint64
}

func (k idKey) after(o idKey) bool { return k.ns > o.ns || (k.ns == o.ns && k.seq > o.seq) }

// parseID parses a trigger id; "" is before every id.
func parseID(id string) (idKey, error) {
	if id == "" {
		return idKey{}, nil
	}
	rest, ok := strings.CutPrefix(id, "t-")
	nsText, seqText, ok2 := strings.Cut(rest, "-")
	ns, err1 := strconv.ParseInt(nsText, 10, 64)
	seq, err2 := strconv.ParseUint(seqText, 10, 64)
	if !ok || !ok2 || err1 != nil || err2 != nil {
		return idKey{}, fmt.Errorf("bad trigger id %q: want t-<unix ns>-<seq>", id)
	}
	return idKey{ns, seq}, nil
}

// NewQueue returns a queue keeping triggers for ttl.
func NewQueue(ttl time.Duration, now func() time.Time) *Queue {
	if now == nil {
		now = time.Now
	}
	return &Queue{ttl: ttl, now: now, closed: make(chan struct{}), nodes: map[string]*nodeQueue{}, polled: map[string]time.Time{}}
}

// Close ends the polls waiting, and those to come, as if their wait was
// over: a server shutting down waits for its requests to end.
func (q *Queue) Close() { q.closeOnce.Do(func() { close(q.closed) }) }

// Enqueue gives t its id and time and queues it for each node.
func (q *Queue) Enqueue(t Trigger, nodes []string) Trigger {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	q.prune(now)
	q.seq++
	q.lastNS = max(now.UnixNano(), q.lastNS+1) // a clock stepping back must not reorder ids
	t.ID, t.TimeNS = fmt.Sprintf("t-%d-%d", q.lastNS, q.seq), q.lastNS
	for _, n := range nodes {
		nq := q.node(n)
		nq.items = append(nq.items, queued{t: t, key: idKey{q.lastNS, q.seq}, at: now})
		close(nq.wake)
		nq.wake = make(chan struct{})
	}
	return t
}

func (q *Queue) node(name string) *nodeQueue {
	nq, ok := q.nodes[name]
	if !ok {
		nq = &nodeQueue{wake: make(chan struct{})}
		q.nodes[name] = nq
	}
	return nq
}

// prune drops expired triggers, nodes with nothing pending and nobody
// waiting, and poll times older than the ttl.
func (q *Queue) prune(now time.Time) {
	for name, nq := range q.nodes {
		i := 0
		for i < len(nq.items) && now.Sub(nq.items[i].at) >= q.ttl {
			i++
		}
		nq.items = nq.items[i:]
		if len(nq.items) == 0 && nq.waiters == 0 {
			delete(q.nodes, name)
		}
	}
	for name, at := range q.polled {
		if now.Sub(at) >= q.ttl {
			delete(q.polled, name)
		}
	}
}

// Wait returns node's triggers queued after the id after, waiting up to
// wait for one to arrive: nil when none came in time, ctx's error when it
// ended first.
func (q *Queue) Wait(ctx context.Context, node, after string, wait time.Duration) ([]Trigger, error) {
	key, err := parseID(after)
	if err != nil {
		return nil, err
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		got, wake := q.pending(node, key)
		if got != nil {
			return got, nil
		}
		select {
		case <-wake:
			q.leave(node)
		case <-timer.C:
			q.leave(node)
			return nil, nil
		case <-q.closed:
			q.leave(node)
			return nil, nil
		case <-ctx.Done():
			q.leave(node)
			return nil, ctx.Err()
		}
	}
}

// pending returns the triggers after key, or registers a waiter and
// returns the channel that wakes it.
func (q *Queue) pending(node string, key idKey) ([]Trigger, <-chan struct{}) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	q.prune(now)
	q.polled[node] = now
	nq := q.node(node)
	var out []Trigger
	for _, it := range nq.items {
		if it.key.after(key) {
			out = append(out, it.t)
		}
	}
	if out != nil {
		return out, nil
	}
	nq.waiters++
	return nil, nq.wake
}

func (q *Queue) leave(node string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	nq := q.nodes[node] // kept while waiters > 0
	nq.waiters--
	if nq.waiters == 0 && len(nq.items) == 0 {
		delete(q.nodes, node)
	}
}

// Polled reports which of nodes had an agent poll within the ttl: a
// trigger for the others waits for an agent that may never come.
func (q *Queue) Polled(nodes []string) (polled, not []string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	for _, n := range nodes {
		if at, ok := q.polled[n]; ok && now.Sub(at) < q.ttl {
			polled = append(polled, n)
		} else if nq := q.nodes[n]; nq != nil && nq.waiters > 0 {
			polled = append(polled, n)
		} else {
			not = append(not, n)
		}
	}
	return polled, not
}

// Waiting returns how many polls are open.
func (q *Queue) Waiting() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, nq := range q.nodes {
		n += nq.waiters
	}
	return n
}
