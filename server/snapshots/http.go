package snapshots

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flightrec/flightrec/server/api"
	"github.com/flightrec/flightrec/server/auth"
	"github.com/flightrec/flightrec/server/query"
	"github.com/flightrec/flightrec/wire/snapshot"
)

// Path is the snapshots' collection; a snapshot is Path/{id}.
const Path = "/api/v1/snapshots"

// Config is what Register needs. Zero values mean the defaults given.
type Config struct {
	Dir        string        // where blobs and the index live
	Retention  time.Duration // 0 keeps everything
	Tokens     *auth.Tokens  // nil: no authentication
	Limits     snapshot.Limits
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: metrics are not exported
	Now        func() time.Time
}

// Register opens the store in cfg.Dir and serves it on mux: uploads need
// the ingest scope, everything else the read scope.
func Register(mux *http.ServeMux, cfg Config) (*Store, error) {
	st, err := Open(cfg.Dir, Options{Retention: cfg.Retention, Limits: cfg.Limits, Now: cfg.Now, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	NewAPI(st, cfg).Register(mux, cfg.Tokens)
	return st, nil
}

// API serves a Store over HTTP (docs/api.md, "Snapshots").
type API struct {
	st      *Store
	log     *slog.Logger
	now     func() time.Time
	limits  snapshot.Limits
	uploads chan struct{} // bounds uploads decoded at once
	m       *prometheus.CounterVec
}

// maxConcurrentUploads bounds memory: each upload may inflate to the
// decompressed limit and decode into several times that.
const maxConcurrentUploads = 2

// NewAPI returns the API over st.
func NewAPI(st *Store, cfg Config) *API {
	a := &API{st: st, log: cfg.Logger, now: cfg.Now, limits: cfg.Limits, uploads: make(chan struct{}, maxConcurrentUploads),
		m: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flightrec_snapshots_received_total",
			Help: "Snapshot uploads by outcome: stored, duplicate, rejected, failed."}, []string{"outcome"})}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.limits == (snapshot.Limits{}) {
		a.limits = snapshot.DefaultLimits
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(a.m,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "flightrec_snapshots_stored", Help: "Snapshots stored."},
				func() float64 { n, _ := st.Stats(); return float64(n) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "flightrec_snapshots_bytes", Help: "Bytes of stored snapshots (gzipped)."},
				func() float64 { _, b := st.Stats(); return float64(b) }))
	}
	return a
}

// Register adds the endpoints to mux behind the scopes they need.
func (a *API) Register(mux *http.ServeMux, tokens *auth.Tokens) {
	mux.Handle("POST "+Path, tokens.Require(auth.Ingest, http.HandlerFunc(a.upload)))
	read := func(pattern string, params []string, serve func(*http.Request, url.Values) (any, error)) {
		mux.Handle("GET "+pattern, tokens.Require(auth.Read, a.get(params, serve)))
	}
	window := []string{"type", "from", "to", "pid", "tid"}
	read(Path, []string{"query", "from", "to", "limit"}, a.list)
	read(Path+"/{id}", nil, a.blob)
	read(Path+"/{id}/timeline", []string{"step", "pid"}, a.timeline)
	read(Path+"/{id}/pprof", window, a.pprof)
	read(Path+"/{id}/flamegraph", append(slices.Clone(window), "max_nodes"), a.flamegraph)
	read(Path+"/{id}/compare", []string{"before", "after", "type", "pid", "tid", "by", "limit"}, a.compare)
}

// PutResponse answers an upload.
type PutResponse struct {
	ID        string `json:"id"`
	Size      int64  `json:"size"`      // bytes stored
	Duplicate bool   `json:"duplicate"` // already stored: this copy was dropped
}

// upload stores a snapshot whole or not at all: 201 when stored, 200 when
// that id was stored before, 400 malformed, 413 too large.
func (a *API) upload(w http.ResponseWriter, r *http.Request) {
	if _, err := checkParams(r.URL.RawQuery, nil); err != nil {
		a.reject(w, err)
		return
	}
	select {
	case a.uploads <- struct{}{}:
		defer func() { <-a.uploads }()
	case <-r.Context().Done():
		writeError(w, &httpError{http.StatusServiceUnavailable, errors.New("server busy: retry")})
		return
	}
	body, err := a.readBody(w, r)
	if err != nil {
		a.reject(w, err)
		return
	}
	snap, err := snapshot.Decode(body, a.limits)
	if err != nil {
		a.reject(w, decodeError(err))
		return
	}
	sum, created, err := a.st.Put(body, snap)
	if err != nil {
		a.m.WithLabelValues("failed").Inc()
		a.log.Error("store snapshot", "id", snap.ID, "err", err)
		writeError(w, err)
		return
	}
	status, outcome := http.StatusCreated, "stored"
	if !created {
		status, outcome = http.StatusOK, "duplicate"
	}
	a.m.WithLabelValues(outcome).Inc()
	a.log.Info("snapshot received", "id", snap.ID, "node", snap.Node, "trigger", snap.Trigger.Kind,
		"reason", snap.Trigger.Reason, "bytes", len(body), "outcome", outcome)
	writeJSON(w, r, status, PutResponse{ID: sum.ID, Size: sum.Size, Duplicate: !created})
}

func (a *API) reject(w http.ResponseWriter, err error) {
	a.m.WithLabelValues("rejected").Inc()
	a.log.Warn("snapshot rejected", "err", err)
	writeError(w, err)
}

// readBody reads at most one byte more than the limit, for Decode to say
// by how much it is too large without the server reading it all.
func (a *API) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity", "gzip", "x-gzip": // Decode sniffs gzip
	default:
		return nil, &httpError{http.StatusUnsupportedMediaType, fmt.Errorf("Content-Encoding %q is not supported: send gzip", enc)}
	}
	if r.ContentLength > a.limits.MaxCompressed {
		return nil, &httpError{http.StatusRequestEntityTooLarge,
			fmt.Errorf("%w: %d bytes, limit %d", snapshot.ErrTooLarge, r.ContentLength, a.limits.MaxCompressed)}
	}
	var buf bytes.Buffer
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, a.limits.MaxCompressed+1))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, &httpError{http.StatusRequestEntityTooLarge,
			fmt.Errorf("%w: body exceeds %d bytes", snapshot.ErrTooLarge, a.limits.MaxCompressed)}
	case err != nil:
		return nil, &httpError{http.StatusBadRequest, fmt.Errorf("read body: %w", err)}
	case buf.Len() == 0:
		return nil, &httpError{http.StatusBadRequest, fmt.Errorf("%w: empty body", snapshot.ErrMalformed)}
	}
	return buf.Bytes(), nil
}

func decodeError(err error) error {
	if errors.Is(err, snapshot.ErrTooLarge) {
		return &httpError{http.StatusRequestEntityTooLarge, err}
	}
	return &httpError{http.StatusBadRequest, err}
}

// ListResponse is GET Path's body, newest trigger first.
type ListResponse struct {
	Snapshots []Summary `json:"snapshots"`
	Total     int       `json:"total"` // matching, before the limit
}

func (a *API) list(r *http.Request, v url.Values) (any, error) {
	var f Filter
	if s := v.Get("query"); s != "" {
		sel, err := query.ParseSelector(s)
		if err != nil {
			return nil, badRequest("bad query: %v", err)
		}
		if sel.Type != "" {
			return nil, badRequest("bad query %s: snapshots have no profile type; select by labels: {service=\"api\"}", s)
		}
		f.Matchers = sel.Matchers
	}
	now := a.now()
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if s := v.Get(p.name); s != "" {
			t, err := query.ParseTime(s, now)
			if err != nil {
				return nil, badRequest("bad %s: %v", p.name, err)
			}
			*p.dst = t
		}
	}
	limit, err := intParam(v, "limit", 100, 1, 10_000)
	if err != nil {
		return nil, err
	}
	f.Limit = limit
	out, total := a.st.List(f)
	if out == nil {
		out = []Summary{}
	}
	return ListResponse{Snapshots: out, Total: total}, nil
}

// blob serves the snapshot as stored, gzipped JSON.
func (a *API) blob(r *http.Request, _ url.Values) (any, error) {
	id := r.PathValue("id")
	b, err := a.st.Blob(id)
	if err != nil {
		return nil, notFound(err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Encoding", "gzip")
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", id+".json.gz"))
	return &rawReply{body: b, header: h}, nil
}

// load decodes the request's snapshot.
func (a *API) load(r *http.Request) (*snapshot.Snapshot, error) {
	snap, err := a.st.Load(r.PathValue("id"))
	return snap, notFound(err)
}

func notFound(err error) error {
	if errors.Is(err, ErrNotFound) {
		return &httpError{http.StatusNotFound, err}
	}
	return err
}

func (a *API) timeline(r *http.Request, v url.Values) (any, error) {
	step := 100 * time.Millisecond
	if s := v.Get("step"); s != "" {
		d, err := query.ParseDuration(s)
		if err != nil || d < time.Millisecond {
			return nil, badRequest("bad step %q: want a duration of at least 1ms, e.g. 100ms", s)
		}
		step = d
	}
	pid, err := uintParam(v, "pid")
	if err != nil {
		return nil, err
	}
	snap, err := a.load(r)
	if err != nil {
		return nil, err
	}
	if steps := (snap.EndNS - snap.StartNS) / int64(step); steps > MaxSteps {
		return nil, badRequest("step %v cuts the %v window into %d steps, more than %d: take a longer step",
			step, time.Duration(snap.EndNS-snap.StartNS), steps, MaxSteps)
	}
	return NewTimeline(snap, int64(step), uint32(pid)), nil
}

// selection reads type, from, to, pid and tid against snap.
func selection(snap *snapshot.Snapshot, v url.Values) (Selection, error) {
	sel := Selection{Type: v.Get("type"), From: snap.StartNS, To: snap.EndNS}
	switch sel.Type {
	case "":
		sel.Type = TypeCPU
	case TypeCPU, TypeOffCPU:
	default:
		return sel, badRequest("bad type %q: want cpu or off_cpu", sel.Type)
	}
	trigger := time.Unix(0, snap.Trigger.TimeNS)
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"from", &sel.From}, {"to", &sel.To}} {
		if s := v.Get(p.name); s != "" {
			t, err := ParseWindowTime(s, trigger)
			if err != nil {
				return sel, badRequest("bad %s: %v", p.name, err)
			}
			*p.dst = t.UnixNano()
		}
	}
	if sel.From >= sel.To {
		return sel, badRequest("from (%d) must be before to (%d)", sel.From, sel.To)
	}
	pid, err := uintParam(v, "pid")
	if err != nil {
		return sel, err
	}
	tid, err := uintParam(v, "tid")
	sel.PID, sel.TID = uint32(pid), uint32(tid)
	return sel, err
}

func (a *API) pprof(r *http.Request, v url.Values) (any, error) {
	snap, err := a.load(r)
	if err != nil {
		return nil, err
	}
	sel, err := selection(snap, v)
	if err != nil {
		return nil, err
	}
	set := StackSet(snap, sel)
	var buf bytes.Buffer
	if err := query.Pprof(set, modelType(sel.Type), time.Unix(0, sel.From), time.Unix(0, sel.To)).Write(&buf); err != nil {
		return nil, fmt.Errorf("encode pprof: %w", err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", snap.ID+"."+sel.Type+".pb.gz"))
	if len(set.Stacks) == 0 {
		h.Set(api.MessageHeader, emptyMessage(sel))
	}
	return &rawReply{body: buf.Bytes(), header: h}, nil
}

func emptyMessage(sel Selection) string {
	return fmt.Sprintf("no %s time in the snapshot from %d to %d for pid %d tid %d (0: any)", sel.Type, sel.From, sel.To, sel.PID, sel.TID)
}

func (a *API) flamegraph(r *http.Request, v url.Values) (any, error) {
	maxNodes, err := intParam(v, "max_nodes", 16384, 2, 1_000_000)
	if err != nil {
		return nil, err
	}
	snap, err := a.load(r)
	if err != nil {
		return nil, err
	}
	sel, err := selection(snap, v)
	if err != nil {
		return nil, err
	}
	set := StackSet(snap, sel)
	out := api.FlamegraphResponse{Type: sel.Type, Unit: "nanoseconds", Flamegraph: *query.NewFlamegraph(set, maxNodes)}
	if len(set.Stacks) == 0 {
		out.Message = emptyMessage(sel)
	}
	return out, nil
}

func (a *API) compare(r *http.Request, v url.Values) (any, error) {
	o := CompareOptions{Before: int64(10 * time.Second), After: int64(10 * time.Second)}
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"before", &o.Before}, {"after", &o.After}} {
		if s := v.Get(p.name); s != "" {
			d, err := query.ParseDuration(s)
			if err != nil || d <= 0 {
				return nil, badRequest("bad %s %q: want a positive duration, e.g. 10s", p.name, s)
			}
			*p.dst = int64(d)
		}
	}
	by, err := query.ParseOrder(v.Get("by"))
	if err != nil {
		return nil, badRequest("bad by: %v", err)
	}
	o.By = by
	if o.Limit, err = intParam(v, "limit", 20, 1, 1_000_000); err != nil {
		return nil, err
	}
	snap, err := a.load(r)
	if err != nil {
		return nil, err
	}
	if o.Selection, err = selection(snap, v); err != nil {
		return nil, err
	}
	return Compare(snap, o), nil
}

// intParam reads an integer parameter in [lo, hi], def when absent.
func intParam(v url.Values, name string, def, lo, hi int) (int, error) {
	s := v.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, badRequest("bad %s %q: want an integer from %d to %d", name, s, lo, hi)
	}
	return n, nil
}

// uintParam reads a pid or tid, 0 when absent.
func uintParam(v url.Values, name string) (uint64, error) {
	s := v.Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return 0, badRequest("bad %s %q: want a positive integer", name, s)
	}
	return n, nil
}
