package ingest

import (
	"io"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
)

// LimiterConfig configures a Limiter. A zero field takes its default.
type LimiterConfig struct {
	MaxLabelValues int                   // distinct values per base series and label name; default 100
	MaxLabelNames  int                   // distinct sample-label names per base series; default 64
	Logger         *slog.Logger          // nil: discard
	Registerer     prometheus.Registerer // for flightrec_ingest_labels_dropped_total; nil: not exported
}

// Default limiter settings.
const (
	DefaultMaxLabelValues = 100
	DefaultMaxLabelNames  = 64
)

// Limiter bounds the series that pprof sample labels create. A base series
// is a profile type and the sender's labels (the pprof upload's labels=
// selector, Pyroscope's application name and tags); for each base series
// and sample-label name it admits the first MaxLabelValues distinct values.
// A sample with a value past the limit keeps its other labels and counts in
// the series without that one. Each base series holds at most
// MaxLabelNames × MaxLabelValues values; base series themselves are as many
// as the store's series without sample labels. Safe for concurrent use.
type Limiter struct {
	maxValues, maxNames int
	log                 *slog.Logger
	dropped             prometheus.Counter

	mu     sync.Mutex
	series map[string]*baseSeries
}

type baseSeries struct {
	names       map[string]*nameValues
	warnedNames bool // logged that MaxLabelNames was reached
}

type nameValues struct {
	values map[string]struct{}
	warned bool // logged that MaxLabelValues was reached
}

// NewLimiter returns an empty limiter.
func NewLimiter(c LimiterConfig) *Limiter {
	if c.MaxLabelValues <= 0 {
		c.MaxLabelValues = DefaultMaxLabelValues
	}
	if c.MaxLabelNames <= 0 {
		c.MaxLabelNames = DefaultMaxLabelNames
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Limiter{
		maxValues: c.MaxLabelValues,
		maxNames:  c.MaxLabelNames,
		log:       c.Logger,
		dropped:   droppedLabels(c.Registerer).WithLabelValues(dropLimit),
		series:    map[string]*baseSeries{},
	}
}

// Admit returns the labels of sample that a series of type typ with base
// labels base may keep, recording new values as admitted. Each label
// dropped is counted, and logged once per base series and name.
func (l *Limiter) Admit(typ string, base, sample labels.Labels) labels.Labels {
	key := seriesKey(typ, base)
	var drop, warn []string
	warnNames := false
	l.mu.Lock()
	bs := l.base(key)
	sample.Range(func(lb labels.Label) {
		nv := bs.names[lb.Name]
		switch {
		case nv == nil && len(bs.names) >= l.maxNames:
			drop = append(drop, lb.Name)
			if !bs.warnedNames {
				bs.warnedNames, warnNames = true, true
			}
		case nv == nil:
			nv = &nameValues{values: map[string]struct{}{}}
			bs.names[lb.Name] = nv
			fallthrough
		default:
			if !nv.admit(lb.Value, l.maxValues) {
				drop = append(drop, lb.Name)
				if !nv.warned {
					nv.warned = true
					warn = append(warn, lb.Name)
				}
			}
		}
	})
	l.mu.Unlock()
	if len(drop) == 0 {
		return sample
	}
	l.dropped.Add(float64(len(drop)))
	l.logDrops(typ, base, warn, warnNames)
	return labels.NewBuilder(sample).Del(drop...).Labels()
}

func (nv *nameValues) admit(value string, limit int) bool {
	if _, ok := nv.values[value]; ok {
		return true
	}
	if len(nv.values) >= limit {
		return false
	}
	nv.values[value] = struct{}{}
	return true
}

func (l *Limiter) logDrops(typ string, base labels.Labels, names []string, tooManyNames bool) {
	for _, n := range names {
		l.log.Warn("ingest: sample label reached its limit of distinct values; samples with new values are stored without it",
			"type", typ, "series", base.String(), "label", n, "limit", l.maxValues)
	}
	if tooManyNames {
		l.log.Warn("ingest: series reached its limit of sample label names; samples are stored without new names",
			"type", typ, "series", base.String(), "limit", l.maxNames)
	}
}

// Seed records series that already exist, so that after a restart the
// values admitted before stay admitted and count against the limit. Each
// series is a stored label set with TypeLabel (__name__) set to its type;
// isSample tells which names came from sample labels, the others being the
// base series. Values past the limits are ignored, as Admit would.
func (l *Limiter) Seed(series []labels.Labels, isSample func(name string) bool) {
	if isSample == nil {
		return // all base labels: nothing to limit
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range series {
		base, sample := labels.NewBuilder(s), labels.NewBuilder(labels.EmptyLabels())
		typ := s.Get(labels.MetricName)
		base.Del(labels.MetricName)
		s.Range(func(lb labels.Label) {
			if lb.Name != labels.MetricName && isSample(lb.Name) {
				base.Del(lb.Name)
				sample.Set(lb.Name, lb.Value)
			}
		})
		bs := l.base(seriesKey(typ, base.Labels()))
		sample.Range(func(lb labels.Label) { l.seed(bs, lb) })
	}
}

func (l *Limiter) seed(bs *baseSeries, lb labels.Label) {
	nv := bs.names[lb.Name]
	if nv == nil {
		if len(bs.names) >= l.maxNames {
			return
		}
		nv = &nameValues{values: map[string]struct{}{}}
		bs.names[lb.Name] = nv
	}
	nv.admit(lb.Value, l.maxValues)
}

// base returns the state of a base series, creating it; l.mu is held.
func (l *Limiter) base(key string) *baseSeries {
	bs := l.series[key]
	if bs == nil {
		bs = &baseSeries{names: map[string]*nameValues{}}
		l.series[key] = bs
	}
	return bs
}

func seriesKey(typ string, base labels.Labels) string {
	return typ + "\x00" + string(base.Bytes(nil))
}
