// Package api is the server's HTTP query API: pprof downloads, flamegraphs,
// top tables, series over time and label listings (docs/api.md).
package api

import (
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flightrec/flightrec/server/model"
	"github.com/flightrec/flightrec/server/store"
)

// Paths of the endpoints, all GET (and HEAD).
const (
	PprofPath       = "/api/v1/pprof"
	FlamegraphPath  = "/api/v1/flamegraph"
	TopPath         = "/api/v1/top"
	SeriesPath      = "/api/v1/series"
	LabelsPath      = "/api/v1/labels"
	LabelValuesPath = "/api/v1/labels/{name}/values"
	TypesPath       = "/api/v1/types"
	// SymbolzPath is where go tool pprof looks for symbols of the
	// unsymbolized frames of a profile from PprofPath: it answers that it
	// has none, so that pprof shows addresses instead of failing.
	SymbolzPath = "/api/v1/symbolz"
	// Prefix is the API's subtree: unknown paths under it get a JSON 404.
	Prefix = "/api/v1/"
)

// Options configure the API. Zero values mean the defaults given.
type Options struct {
	Logger     *slog.Logger          // nil: discard
	Registerer prometheus.Registerer // nil: metrics are not exported
	Now        func() time.Time      // for relative times; nil: time.Now
	// DefaultRange is how far back from "to" a query without "from" reads:
	// 1h.
	DefaultRange time.Duration
	// MaxRange bounds to-from; 0 allows any range.
	MaxRange time.Duration
	// DefaultType is the profile type of selectors that name none: "cpu".
	DefaultType string
	// Timeout bounds each request's store work: 1m.
	Timeout time.Duration
	// MaxNodes is the flamegraph node limit when a request gives none:
	// 16384, which browsers render quickly.
	MaxNodes int
	// MaxPoints bounds the points per series a step may produce: 11000,
	// as in Prometheus.
	MaxPoints int
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.DefaultRange <= 0 {
		o.DefaultRange = time.Hour
	}
	if o.DefaultType == "" {
		o.DefaultType = "cpu"
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Minute
	}
	if o.MaxNodes <= 0 {
		o.MaxNodes = 16384
	}
	if o.MaxPoints <= 0 {
		o.MaxPoints = 11000
	}
}

// API serves queries from a store.
type API struct {
	st       store.Store
	opts     Options
	duration *prometheus.HistogramVec

	// types caches profile types by name: their units never change, and
	// looking them up in the store scans the range.
	typesMu sync.Mutex
	types   map[string]model.Type
}

// New returns the API over st.
func New(st store.Store, opts Options) *API {
	opts.defaults()
	return &API{st: st, opts: opts, duration: newDurationMetric(opts), types: map[string]model.Type{}}
}

func newDurationMetric(opts Options) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "flightrec_query_duration_seconds",
		Help:    "Time to answer query API requests, by endpoint.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 8), // 1ms to 16s
	}, []string{"endpoint"})
	if opts.Registerer == nil {
		return h
	}
	if err := opts.Registerer.Register(h); err != nil {
		// A second API on the same registry (tests, reloads) shares the first's.
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.HistogramVec); ok {
				return existing
			}
		}
		opts.Logger.Error("query API: cannot register metrics", "err", err)
	}
	return h
}

// Register adds the endpoints to mux, and a JSON 404 for other paths under
// Prefix.
func (a *API) Register(mux *http.ServeMux) {
	for _, e := range a.endpoints() {
		mux.Handle(e.path, a.handler(e))
	}
	mux.HandleFunc(SymbolzPath, symbolz)
	mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, &httpError{http.StatusNotFound, errors.New("unknown API path " + r.URL.Path)})
	})
}
