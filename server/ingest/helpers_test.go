package ingest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flightrec/flightrec/server/ingest"
	"github.com/flightrec/flightrec/server/model"
)

// memSink is an in-memory Sink; err, when set, fails every Append. As
// the Sink contract (model.Batch) requires, it copies what it keeps: the
// handler reuses a batch's memory once Append returns.
type memSink struct {
	mu      sync.Mutex
	batches []*model.Batch
	err     error
}

func (s *memSink) Append(_ context.Context, b *model.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.batches = append(s.batches, cloneBatch(b))
	return nil
}

// cloneBatch deep-copies b, strings included.
func cloneBatch(b *model.Batch) *model.Batch {
	c := &model.Batch{Key: strings.Clone(b.Key)}
	for _, p := range b.Profiles {
		cp := *p
		cp.Type = model.Type{Name: strings.Clone(p.Type.Name), SampleType: strings.Clone(p.Type.SampleType), SampleUnit: strings.Clone(p.Type.SampleUnit),
			PeriodType: strings.Clone(p.Type.PeriodType), PeriodUnit: strings.Clone(p.Type.PeriodUnit)}
		cp.Labels = p.Labels.Copy()
		cp.Stacks.Frames = make([]model.Frame, len(p.Stacks.Frames))
		for i, f := range p.Stacks.Frames {
			f.Function, f.File, f.Mapping, f.BuildID = strings.Clone(f.Function), strings.Clone(f.File), strings.Clone(f.Mapping), strings.Clone(f.BuildID)
			cp.Stacks.Frames[i] = f
		}
		cp.Stacks.Stacks = make([][]int32, len(p.Stacks.Stacks))
		for i, st := range p.Stacks.Stacks {
			cp.Stacks.Stacks[i] = slices.Clone(st)
		}
		cp.Stacks.Values = slices.Clone(p.Stacks.Values)
		c.Profiles = append(c.Profiles, &cp)
	}
	return c
}

func (s *memSink) take() []*model.Batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.batches
	s.batches = nil
	return b
}

func (s *memSink) profiles() []*model.Profile {
	var out []*model.Profile
	for _, b := range s.take() {
		out = append(out, b.Profiles...)
	}
	return out
}

var errStoreDown = errors.New("disk full")

type server struct {
	*httptest.Server
	sink *memSink
	reg  *prometheus.Registry
	h    *ingest.Handler
}

// newServer serves a Handler with a memSink; configure tweaks it first.
func newServer(t *testing.T, configure func(h *ingest.Handler)) *server {
	t.Helper()
	s := &server{sink: &memSink{}, reg: prometheus.NewRegistry()}
	s.h = &ingest.Handler{
		Sink:    s.sink,
		Metrics: s.reg,
		Now:     func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) },
	}
	if configure != nil {
		configure(s.h)
	}
	mux := http.NewServeMux()
	s.h.Register(mux)
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

type reply struct {
	status   int
	Profiles int    `json:"profiles"`
	Samples  int    `json:"samples"`
	Error    string `json:"error"`
}

// post sends body to path; headers alternate name, value.
func (s *server) post(t *testing.T, path string, body io.Reader, headers ...string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	r := reply{status: resp.StatusCode}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("POST %s: Content-Type %q, want application/json", path, ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("POST %s: response: %v", path, err)
	}
	return r
}

func (s *server) counter(t *testing.T, name string, lvs ...string) float64 {
	t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for i, lp := range m.GetLabel() {
				if i >= len(lvs) || lp.GetValue() != lvs[i] {
					continue metric
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// sample is a leaf-first stack of function names, a value and labels
// (name, value, ...).
type sample struct {
	stack  []string
	value  int64
	labels []string
}

// cpuPprof builds a profile of type cpu/nanoseconds.
func cpuPprof(samples ...sample) *profile.Profile {
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:     10_000_000,
		TimeNanos:  time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC).UnixNano(),
	}
	locs := map[string]*profile.Location{}
	for _, s := range samples {
		ps := &profile.Sample{Value: []int64{s.value}}
		for _, name := range s.stack {
			l := locs[name]
			if l == nil {
				f := &profile.Function{ID: uint64(len(p.Function) + 1), Name: name}
				l = &profile.Location{ID: uint64(len(p.Location) + 1), Line: []profile.Line{{Function: f}}}
				p.Function = append(p.Function, f)
				p.Location = append(p.Location, l)
				locs[name] = l
			}
			ps.Location = append(ps.Location, l)
		}
		for i := 0; i+1 < len(s.labels); i += 2 {
			if ps.Label == nil {
				ps.Label = map[string][]string{}
			}
			ps.Label[s.labels[i]] = []string{s.labels[i+1]}
		}
		p.Sample = append(p.Sample, ps)
	}
	return p
}

// encode writes p uncompressed, or gzipped as profile.Write does.
func encode(t *testing.T, p *profile.Profile, gzipped bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	write := p.WriteUncompressed
	if gzipped {
		write = p.Write
	}
	if err := write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func hasFunction(p *model.Profile, substr string) bool {
	for _, f := range p.Stacks.Frames {
		if strings.Contains(f.Function, substr) {
			return true
		}
	}
	return false
}
