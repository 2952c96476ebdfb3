package triggers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/model"
	"github.com/flightrec/flightrec/server/query"
	"github.com/flightrec/flightrec/server/store/duckdb"
	"github.com/flightrec/flightrec/server/triggers"
)

// fleetStore is a real store holding, relative to now:
//
//	cpu{service="api",node="n1"}      1 min ago
//	cpu{service="api",node="n2"}      3 min ago
//	off_cpu{service="api",node="n4"}  1 min ago
//	cpu{service="db",node="n3"}       1 min ago
//	cpu{service="api",node="old"}    10 min ago (outside the 5-minute look-back)
//	cpu{service="api"}                1 min ago (no node label)
func fleetStore(t testing.TB, now time.Time) *duckdb.Store {
	t.Helper()
	st, err := duckdb.Open(t.TempDir(), duckdb.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cpu := model.Type{Name: "cpu", SampleType: "cpu", SampleUnit: "nanoseconds", PeriodType: "cpu", PeriodUnit: "nanoseconds"}
	off := model.Type{Name: "off_cpu", SampleType: "off_cpu", SampleUnit: "nanoseconds"}
	prof := func(typ model.Type, ago time.Duration, kv ...string) *model.Profile {
		return &model.Profile{Type: typ, Labels: labels.FromStrings(kv...), Time: now.Add(-ago), Duration: 10 * time.Second, Scale: 1,
			Stacks: model.StackSet{Frames: []model.Frame{{Function: "main.main"}}, Stacks: [][]int32{{0}}, Values: []int64{1}}}
	}
	err = st.Append(context.Background(), &model.Batch{Profiles: []*model.Profile{
		prof(cpu, time.Minute, "service", "api", "node", "n1"),
		prof(cpu, 3*time.Minute, "service", "api", "node", "n2"),
		prof(off, time.Minute, "service", "api", "node", "n4"),
		prof(cpu, time.Minute, "service", "db", "node", "n3"),
		prof(cpu, 10*time.Minute, "service", "api", "node", "old"),
		prof(cpu, time.Minute, "service", "api"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

type server struct {
	URL string
	Svc *triggers.Service
	Reg *prometheus.Registry
}

// serve runs the trigger endpoints, resolving selectors with r.
func serve(t testing.TB, r triggers.Resolver, cfg triggers.Config) *server {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	svc := triggers.New(r, cfg)
	mux := http.NewServeMux()
	svc.Register(mux, nil)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return &server{URL: hs.URL, Svc: svc, Reg: reg}
}

func post(t testing.TB, url string, body any) (int, []byte) {
	t.Helper()
	b, ok := body.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// pending returns what node's agent would get now.
func pending(t testing.TB, s *server, node string) []triggers.Trigger {
	t.Helper()
	got, err := s.Svc.Queue().Wait(context.Background(), node, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// count reads flightrec_triggers_total{kind,outcome}.
func count(t testing.TB, s *server, kind, outcome string) int {
	t.Helper()
	mfs, err := s.Reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "flightrec_triggers_total" {
			continue
		}
		for _, m := range mf.Metric {
			ls := map[string]string{}
			for _, lp := range m.Label {
				ls[lp.GetName()] = lp.GetValue()
			}
			if ls["kind"] == kind && ls["outcome"] == outcome {
				return int(m.Counter.GetValue())
			}
		}
	}
	return 0
}

// stubResolver resolves selectors, as strings, to fixed nodes.
type stubResolver map[string][]string

func (r stubResolver) Nodes(_ context.Context, sel query.Selector, _, _ time.Time) ([]string, error) {
	return r[sel.String()], nil
}
