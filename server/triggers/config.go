package triggers

import (
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flightrec/flightrec/server/query"
)

// Config bounds triggering. Zero values mean the defaults given.
type Config struct {
	// AlertLabels map alert labels to the series labels of the selector a
	// firing alert targets: service, namespace, node, pod, container.
	AlertLabels []LabelMapping
	// AlertCooldown is how long an alert's fingerprint is remembered: one
	// incident, one snapshot. 10m.
	AlertCooldown time.Duration
	// RateLimit triggers per RateWindow across kinds: 10 per 10m.
	RateLimit  int
	RateWindow time.Duration
	// Before and After are the window of alert triggers and of manual
	// ones that give none: 60s and 10s.
	Before, After time.Duration
	// Expiry is how long a trigger waits for its nodes' agents: 2m.
	Expiry time.Duration
	// LookBack is how far back a selector's nodes are looked for: 5m.
	LookBack time.Duration
	// MaxWait bounds an agent's long poll: 5m.
	MaxWait time.Duration

	Logger     *slog.Logger          // nil: discard
	Registerer prometheus.Registerer // nil: metrics are not exported
	Now        func() time.Time      // nil: time.Now
}

// DefaultAlertLabels are the labels an alert's selector takes by default.
const DefaultAlertLabels = "service,namespace,node,pod,container"

func (c *Config) defaults() {
	if c.AlertLabels == nil {
		c.AlertLabels, _ = ParseLabelMappings(DefaultAlertLabels)
	}
	setDuration(&c.AlertCooldown, 10*time.Minute)
	setDuration(&c.RateWindow, 10*time.Minute)
	setDuration(&c.Before, 60*time.Second)
	setDuration(&c.After, 10*time.Second)
	setDuration(&c.Expiry, 2*time.Minute)
	setDuration(&c.LookBack, 5*time.Minute)
	setDuration(&c.MaxWait, 5*time.Minute)
	if c.RateLimit <= 0 {
		c.RateLimit = 10
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

func setDuration(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// LabelMapping copies alert label From into selector label To.
type LabelMapping struct{ From, To string }

var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// ParseLabelMappings parses --alert-labels: comma-separated label names,
// each optionally renamed, alert=series: "job=service,namespace".
func ParseLabelMappings(s string) ([]LabelMapping, error) {
	var out []LabelMapping
	targets := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		from, to, renamed := strings.Cut(part, "=")
		if !renamed {
			to = from
		}
		from, to = strings.TrimSpace(from), strings.TrimSpace(to)
		if !labelNameRE.MatchString(from) || !labelNameRE.MatchString(to) || strings.HasPrefix(to, "__") {
			return nil, fmt.Errorf("bad alert label %q: want a label name, or alert_label=series_label", part)
		}
		if targets[to] {
			return nil, fmt.Errorf("bad alert labels %q: %s is mapped to twice", s, to)
		}
		targets[to] = true
		out = append(out, LabelMapping{From: from, To: to})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("bad alert labels %q: no label names", s)
	}
	return out, nil
}

// ParseRate parses a rate limit: "10/10m", count per duration.
func ParseRate(s string) (int, time.Duration, error) {
	countText, durText, ok := strings.Cut(s, "/")
	n, err := strconv.Atoi(strings.TrimSpace(countText))
	if !ok || err != nil || n < 1 {
		return 0, 0, fmt.Errorf("bad rate %q: want COUNT/DURATION, e.g. 10/10m", s)
	}
	d, err := query.ParseDuration(strings.TrimSpace(durText))
	if err != nil || d <= 0 {
		return 0, 0, fmt.Errorf("bad rate %q: want COUNT/DURATION, e.g. 10/10m", s)
	}
	return n, d, nil
}

// limiter admits at most n events per sliding window.
type limiter struct {
	n      int
	window time.Duration
	recent []time.Time
}

// allow reports whether an event at now fits, and counts it if it does.
func (l *limiter) allow(now time.Time) bool {
	kept := l.recent[:0]
	for _, t := range l.recent {
		if now.Sub(t) < l.window {
			kept = append(kept, t)
		}
	}
	l.recent = kept
	if len(l.recent) >= l.n {
		return false
	}
	l.recent = append(l.recent, now)
	return true
}
