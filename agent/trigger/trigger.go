// Package trigger decides when the agent freezes a snapshot: triggers from
// the server, the admin endpoint and local events, under cooldowns and a rate limit.
package trigger

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flightrec/flightrec/wire/snapshot"
)

// Request is one trigger.
type Request struct {
	Kind        string // manual, alert, signal, oom, cpu
	Reason      string
	At          time.Time // the moment of interest: the window is [At-Before, At+After]
	Before      time.Duration
	After       time.Duration
	Selector    string
	Labels      map[string]string
	Fingerprint string
	PID         uint32
	ServerID    string // the server's trigger id
	// Key groups requests for the cooldown; "" uses Kind.
	Key string
}

// Result is a built snapshot, or why there is none.
type Result struct {
	Snapshot *snapshot.Snapshot
	Err      error
}

// SnapshotFunc asks the pipeline for a snapshot; the channel yields it once
// the window has passed.
type SnapshotFunc func(meta *snapshot.Snapshot, at time.Time, before, after time.Duration) <-chan Result

// Sink receives built snapshots (the disk spool that ships them).
type Sink interface {
	Put(*snapshot.Snapshot) error
}

// Config bounds triggering.
type Config struct {
	Node          string
	DefaultBefore time.Duration // default 60 s
	DefaultAfter  time.Duration // default 10 s
	Cooldown      time.Duration // per key, default 1 min; negative: none
	RateLimit     int           // triggers per RateWindow across keys, default 6
	RateWindow    time.Duration // default 10 min
	Now           func() time.Time
}

func (c *Config) defaults() {
	if c.DefaultBefore == 0 {
		c.DefaultBefore = 60 * time.Second
	}
	if c.DefaultAfter == 0 {
		c.DefaultAfter = 10 * time.Second
	}
	if c.Cooldown == 0 {
		c.Cooldown = time.Minute
	}
	if c.RateLimit == 0 {
		c.RateLimit = 6
	}
	if c.RateWindow == 0 {
		c.RateWindow = 10 * time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Outcomes of Fire.
const (
	Fired       = "fired"
	Cooldown    = "cooldown"
	RateLimited = "rate_limited"
	Duplicate   = "duplicate"
)

// Manager applies the limits and turns accepted requests into snapshots.
type Manager struct {
	cfg  Config
	snap SnapshotFunc
	sink Sink
	log  *slog.Logger
	m    *prometheus.CounterVec

	mu       sync.Mutex
	lastFire map[string]time.Time // per key
	recent   []time.Time          // accepted triggers within RateWindow
	seen     map[string]time.Time // server trigger ids already handled
	inflight sync.WaitGroup
}

// New returns a manager.
func New(cfg Config, snap SnapshotFunc, sink Sink, log *slog.Logger, reg prometheus.Registerer) *Manager {
	cfg.defaults()
	m := &Manager{cfg: cfg, snap: snap, sink: sink, log: log, lastFire: map[string]time.Time{}, seen: map[string]time.Time{},
		m: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flightrec_agent_triggers_total",
			Help: "Triggers by kind and outcome (fired, cooldown, rate_limited, duplicate)."}, []string{"kind", "outcome"})}
	if reg != nil {
		reg.MustRegister(m.m)
	}
	return m
}

// Fire applies the cooldown and rate limit to req and, if accepted,
// requests the snapshot; it returns the outcome and the snapshot id.
func (m *Manager) Fire(req Request) (outcome, id string) {
	now := m.cfg.Now()
	if req.At.IsZero() {
		req.At = now
	}
	if req.Before <= 0 {
		req.Before = m.cfg.DefaultBefore
	}
	if req.After <= 0 {
		req.After = m.cfg.DefaultAfter
	}
	outcome = m.admit(req, now)
	m.m.WithLabelValues(req.Kind, outcome).Inc()
	if outcome != Fired {
		m.log.Info("trigger not taken", "kind", req.Kind, "reason", req.Reason, "outcome", outcome)
		return outcome, ""
	}
	meta := m.meta(req)
	m.log.Info("trigger fired: taking a snapshot", "kind", req.Kind, "reason", req.Reason, "id", meta.ID,
		"window_start", req.At.Add(-req.Before), "window_end", req.At.Add(req.After))
	ch := m.snap(meta, req.At, req.Before, req.After)
	m.inflight.Add(1)
	go func() {
		defer m.inflight.Done()
		m.deliver(meta.ID, ch)
	}()
	return Fired, meta.ID
}

func (m *Manager) admit(req Request, now time.Time) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if req.ServerID != "" {
		if _, dup := m.seen[req.ServerID]; dup {
			return Duplicate
		}
		m.seen[req.ServerID] = now
		for id, t := range m.seen {
			if now.Sub(t) > time.Hour {
				delete(m.seen, id)
			}
		}
	}
	key := req.Key
	if key == "" {
		key = req.Kind
	}
	if last, ok := m.lastFire[key]; ok && now.Sub(last) < m.cfg.Cooldown {
		return Cooldown
	}
	kept := m.recent[:0]
	for _, t := range m.recent {
		if now.Sub(t) < m.cfg.RateWindow {
			kept = append(kept, t)
		}
	}
	m.recent = kept
	if len(m.recent) >= m.cfg.RateLimit {
		return RateLimited
	}
	m.recent = append(m.recent, now)
	m.lastFire[key] = now
	return Fired
}

func (m *Manager) meta(req Request) *snapshot.Snapshot {
	var r [4]byte
	_, _ = rand.Read(r[:])
	return &snapshot.Snapshot{
		Version: snapshot.Version,
		ID:      fmt.Sprintf("%s-%d-%s", sanitizeID(m.cfg.Node), req.At.UnixNano(), hex.EncodeToString(r[:])),
		Node:    m.cfg.Node,
		Trigger: snapshot.Trigger{
			Kind: req.Kind, Reason: req.Reason, TimeNS: req.At.UnixNano(), Selector: req.Selector,
			Labels: req.Labels, Fingerprint: req.Fingerprint, PID: req.PID, ID: req.ServerID,
		},
	}
}

func (m *Manager) deliver(id string, ch <-chan Result) {
	res := <-ch
	if res.Err != nil {
		m.log.Error("snapshot failed", "id", id, "err", res.Err)
		return
	}
	if err := m.sink.Put(res.Snapshot); err != nil {
		m.log.Error("spool snapshot", "id", id, "err", err)
		return
	}
	m.log.Info("snapshot spooled for shipping", "id", id, "samples", len(res.Snapshot.Samples.TimeNS),
		"off_cpu", len(res.Snapshot.OffCPU.StartNS), "events", len(res.Snapshot.Events))
}

// Wait blocks until snapshots being built are handed to the sink, or ctx ends.
func (m *Manager) Wait(ctx context.Context) {
	done := make(chan struct{})
	go func() { m.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

func sanitizeID(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c == '.' || c == '_' || c == '-' || ('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')) {
			b[i] = '_'
		}
	}
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}
