// Package apitest serves the query API over a real DuckDB store holding a
// small known fleet, for the tests of the API, its client and the CLI.
package apitest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/flightrec/flightrec/server/api"
	"github.com/flightrec/flightrec/server/model"
	"github.com/flightrec/flightrec/server/store/duckdb"
)

// Server is a running API over the fleet, with a stand-in for the ingest
// endpoint that parses uploads and keeps them.
type Server struct {
	URL      string
	Mux      *http.ServeMux // add handlers (an ingest stand-in) as needed
	Store    *duckdb.Store
	Registry *prometheus.Registry
	// Now is the API's clock, the real time at start so that clients
	// checking times against their own clock agree; Base, when the fleet's
	// first profiles start, is a whole minute 30 to 31 minutes before.
	Now, Base time.Time

	mu      sync.Mutex
	uploads []Upload
}

// Start opens a store in a temporary directory, stores Fleet(Base) and
// serves the API with opts (Now and Registerer are set).
func Start(t testing.TB, opts api.Options) *Server {
	t.Helper()
	st, err := duckdb.Open(t.TempDir(), duckdb.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Now().Truncate(time.Second)
	base := now.Truncate(time.Minute).Add(-30 * time.Minute) // whole minutes: steps align
	s := &Server{Mux: http.NewServeMux(), Store: st, Registry: prometheus.NewRegistry(), Now: now, Base: base}
	if err := st.Append(context.Background(), &model.Batch{Profiles: Fleet(s.Base)}); err != nil {
		t.Fatal(err)
	}
	opts.Now = func() time.Time { return now }
	opts.Registerer = s.Registry
	api.New(st, opts).Register(s.Mux)
	s.Mux.HandleFunc("POST /api/v1/ingest", s.ingest)
	hs := httptest.NewServer(s.Mux)
	t.Cleanup(hs.Close)
	s.URL = hs.URL
	return s
}

// Fleet is the stored data, CPU values in nanoseconds (10 ms a sample):
//
//	cpu{service="api",node="n1",version="1.8.2"} at base, +10s, +20s, each:
//	    main.parse (inlined into main.handle) ← main.handle ← main.main   50ms
//	    runtime.mallocgc ← main.handle ← main.main                         20ms
//	    libc.so.6+0x9a3f0 (unsymbolized) ← main.handle ← main.main         10ms
//	cpu{service="api",node="n3",version="1.8.0"} at base:
//	    main.handle ← main.main                                            40ms
//	cpu{service="db",node="n1"} at base:
//	    db.query ← main.main                                              100ms
//	alloc_space{service="api",node="n1",version="1.8.2"} at base:
//	    runtime.mallocgc ← main.handle ← main.main                   1024 bytes
//
// So cpu{service="api"} totals 280ms: main.parse 150ms self, mallocgc 60ms,
// libc 30ms, main.handle 40ms self and 280ms total; all cpu totals 380ms.
func Fleet(base time.Time) []*model.Profile {
	frames := []model.Frame{
		0: {Function: "main.main", File: "/src/main.go", Line: 10, Mapping: "/app/server", BuildID: "b1"},
		1: {Function: "main.handle", File: "/src/server.go", Line: 20, Mapping: "/app/server", BuildID: "b1"},
		2: {Function: "main.parse", File: "/src/parse.go", Line: 30, Inlined: true, Mapping: "/app/server", BuildID: "b1"},
		3: {Function: "runtime.mallocgc", File: "/go/src/runtime/malloc.go", Line: 1000, Mapping: "/app/server", BuildID: "b1"},
		4: {Mapping: "/usr/lib/libc.so.6", BuildID: "c1", Address: 0x9a3f0},
		5: {Function: "db.query", File: "/src/db.go", Line: 50, Mapping: "/app/db", BuildID: "d1"},
	}
	profile := func(typ model.Type, at time.Time, scale int64, ls labels.Labels, stacks [][]int32, values []int64) *model.Profile {
		return &model.Profile{Type: typ, Labels: ls, Time: at, Duration: 10 * time.Second, Scale: scale,
			Stacks: model.StackSet{Frames: frames, Stacks: stacks, Values: values}}
	}
	const ms10 = 10_000_000
	cpu := model.Type{Name: "cpu", SampleType: "cpu", SampleUnit: "nanoseconds", PeriodType: "cpu", PeriodUnit: "nanoseconds"}
	alloc := model.Type{Name: "alloc_space", SampleType: "alloc_space", SampleUnit: "bytes", PeriodType: "space", PeriodUnit: "bytes"}
	n1 := labels.FromStrings("service", "api", "node", "n1", "version", "1.8.2")
	var out []*model.Profile
	for i := range 3 {
		out = append(out, profile(cpu, base.Add(time.Duration(i)*10*time.Second), ms10, n1,
			[][]int32{{2, 1, 0}, {3, 1, 0}, {4, 1, 0}}, []int64{5, 2, 1}))
	}
	return append(out,
		profile(cpu, base, ms10, labels.FromStrings("service", "api", "node", "n3", "version", "1.8.0"), [][]int32{{1, 0}}, []int64{4}),
		profile(cpu, base, ms10, labels.FromStrings("service", "db", "node", "n1"), [][]int32{{5, 0}}, []int64{10}),
		profile(alloc, base, 1, n1, [][]int32{{3, 1, 0}}, []int64{1024}),
	)
}

// Upload is what the ingest stand-in received.
type Upload struct {
	Labels  labels.Labels
	Profile *profile.Profile
}

// Uploads returns what the ingest stand-in received so far.
func (s *Server) Uploads() []Upload {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.uploads)
}

// ingest stands in for the ingest endpoint (another package's), keeping its
// contract: a pprof body, gzipped or not, and series labels in selector
// syntax; 200 with {"profiles":N,"samples":M}, or 400 with {"error":...}.
func (s *Server) ingest(w http.ResponseWriter, r *http.Request) {
	fail := func(format string, args ...any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(api.ErrorResponse{Error: fmt.Sprintf(format, args...)})
	}
	ls, err := parser.NewParser(parser.Options{}).ParseMetric(r.URL.Query().Get("labels"))
	if err != nil {
		fail("bad labels: %v", err)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		fail("read body: %v", err)
		return
	}
	p, err := profile.ParseData(body)
	if err != nil {
		fail("malformed pprof: %v", err)
		return
	}
	s.mu.Lock()
	s.uploads = append(s.uploads, Upload{Labels: ls, Profile: p})
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]int{"profiles": len(p.SampleType), "samples": len(p.Sample)})
}
