// Package triggers fans triggers out to agents (docs/triggers.md): manual
// ones, and Alertmanager's firing alerts, over each agent's long poll.
package triggers

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flightrec/flightrec/server/query"
	"github.com/flightrec/flightrec/server/store"
)

// Trigger is a trigger as agents receive it.
type Trigger struct {
	ID          string            `json:"id"` // t-<unix ns>-<seq>
	Kind        string            `json:"kind"`
	Reason      string            `json:"reason"`
	TimeNS      int64             `json:"time_ns"` // the moment of interest
	Selector    string            `json:"selector,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`      // an alert's
	Fingerprint string            `json:"fingerprint,omitempty"` // an alert's
	BeforeS     float64           `json:"before_s"`
	AfterS      float64           `json:"after_s"`
}

// Kinds of server triggers.
const (
	KindManual = "manual"
	KindAlert  = "alert"
)

// Outcomes of a trigger, the outcome label of flightrec_triggers_total.
const (
	Fired       = "fired"
	Cooldown    = "cooldown"     // an alert fingerprint fired within the cooldown, for a new incident
	Duplicate   = "duplicate"    // Alertmanager resent an alert that already fired
	RateLimited = "rate_limited" // over the rate limit
	Ignored     = "ignored"      // resolved, or no label to select by
	NoNodes     = "no_nodes"     // the selector matches no node
	Failed      = "failed"       // the nodes could not be looked up
)

// Resolver finds the nodes a selector targets.
type Resolver interface {
	// Nodes returns the distinct node labels of the series sel matches
	// with data in [start, end), sorted.
	Nodes(ctx context.Context, sel query.Selector, start, end time.Time) ([]string, error)
}

// StoreResolver resolves selectors through the profiles a store holds.
type StoreResolver struct{ Store store.Store }

// Nodes lists the values of the node label of the matching series, of
// every profile type if sel names none.
func (r StoreResolver) Nodes(ctx context.Context, sel query.Selector, start, end time.Time) ([]string, error) {
	nodes, err := r.Store.LabelValues(ctx, "node", store.LabelQuery{Type: sel.Type, Matchers: sel.Matchers, Start: start, End: end})
	if err != nil {
		return nil, fmt.Errorf("nodes of %s: %w", sel, err)
	}
	return nodes, nil
}

// Service takes triggers, applies cooldowns and the rate limit, and queues
// them for the agents of the nodes they target.
type Service struct {
	cfg     Config
	resolve Resolver
	queue   *Queue
	total   *prometheus.CounterVec

	mu      sync.Mutex
	limit   limiter
	alerts  map[string]alertFiring // by fingerprint, within the cooldown
	servers map[*http.Server]bool  // that end polls on shutdown
}

type alertFiring struct{ firedAt, startsAt time.Time }

// New returns a service resolving selectors with r.
func New(r Resolver, cfg Config) *Service {
	cfg.defaults()
	s := &Service{cfg: cfg, resolve: r, queue: NewQueue(cfg.Expiry, cfg.Now),
		limit:  limiter{n: cfg.RateLimit, window: cfg.RateWindow},
		alerts: map[string]alertFiring{}, servers: map[*http.Server]bool{},
		total: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flightrec_triggers_total",
			Help: "Triggers by kind (manual, alert) and outcome (fired, cooldown, duplicate, rate_limited, ignored, no_nodes, failed)."},
			[]string{"kind", "outcome"})}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(s.total, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "flightrec_trigger_polls",
			Help: "Agents' trigger long polls open."}, func() float64 { return float64(s.queue.Waiting()) }))
	}
	return s
}

// Queue is where fired triggers wait for agents.
func (s *Service) Queue() *Queue { return s.queue }

// Result is what became of a trigger.
type Result struct {
	Outcome string   `json:"outcome"`
	ID      string   `json:"id,omitempty"`
	Nodes   []string `json:"nodes"`
	// NotPolling are nodes of Nodes whose agent has not polled lately:
	// their trigger waits for an agent that may not come.
	NotPolling []string `json:"not_polling,omitempty"`
	Message    string   `json:"message,omitempty"`
}

// admitFunc decides, under the service's lock, whether a trigger fires.
type admitFunc func(now time.Time) string

// fire resolves sel to nodes and, if admit agrees, queues t for them.
func (s *Service) fire(ctx context.Context, t Trigger, sel query.Selector, admit admitFunc) (Result, error) {
	now := s.cfg.Now()
	nodes, err := s.resolve.Nodes(ctx, sel, now.Add(-s.cfg.LookBack), now.Add(time.Minute)) // a minute of clock skew
	if err != nil {
		s.record(t, Result{Outcome: Failed, Nodes: []string{}})
		return Result{}, err
	}
	if len(nodes) == 0 {
		r := Result{Outcome: NoNodes, Nodes: []string{}, Message: fmt.Sprintf("no node has profiles matching %s in the last %s", t.Selector, formatDuration(s.cfg.LookBack))}
		s.record(t, r)
		return r, nil
	}
	s.mu.Lock()
	r := Result{Outcome: admit(now), Nodes: nodes}
	if r.Outcome == Fired {
		t = s.queue.Enqueue(t, nodes)
		r.ID = t.ID
	}
	s.mu.Unlock()
	if r.Outcome == Fired {
		_, r.NotPolling = s.queue.Polled(nodes)
	}
	s.record(t, r)
	return r, nil
}

// admitRate admits within the rate limit.
func (s *Service) admitRate(now time.Time) string {
	if !s.limit.allow(now) {
		return RateLimited
	}
	return Fired
}

// record counts and logs an outcome: every firing is logged.
func (s *Service) record(t Trigger, r Result) {
	s.total.WithLabelValues(t.Kind, r.Outcome).Inc()
	args := []any{"kind", t.Kind, "reason", t.Reason, "selector", t.Selector, "outcome", r.Outcome}
	if t.Fingerprint != "" {
		args = append(args, "fingerprint", t.Fingerprint)
	}
	switch r.Outcome {
	case Fired:
		s.cfg.Logger.Info("trigger fired", append(args, "id", r.ID, "nodes", r.Nodes, "not_polling", r.NotPolling)...)
	case RateLimited, Failed:
		s.cfg.Logger.Warn("trigger not fired", args...)
	default:
		s.cfg.Logger.Info("trigger not fired", args...)
	}
}

// formatDuration prints d without trailing zero units: 5m, not 5m0s.
func formatDuration(d time.Duration) string {
	out := d.String()
	for _, zero := range []string{"m0s", "h0m"} {
		if strings.HasSuffix(out, zero) {
			out = out[:len(out)-2]
		}
	}
	return out
}

// seconds renders a duration as a trigger's before_s or after_s.
func seconds(d time.Duration) float64 { return d.Seconds() }
