package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/api"
	"github.com/flightrec/flightrec/server/api/apitest"
	"github.com/flightrec/flightrec/server/diff"
	"github.com/flightrec/flightrec/server/model"
)

const web = `cpu{service="web"}`

var versions = []string{"1.1", "1.2", "1.3", "1.4"}

// startVersions serves the fleet plus service "web" deployed in versions
// 1.1 to 1.4, each first seen a minute after the one before, 6 pods a
// version on nodes n0 to n5; pods for which slow says so spend 3 more
// points of share in web.compress (10% otherwise). Six, not fewer: the
// tests count relabellings of the instances, and 4 against 4 have only 70,
// too few for a p-value small enough for a family of three steps.
func startVersions(t *testing.T, slow func(version, node string) bool) *apitest.Server {
	t.Helper()
	s := apitest.Start(t, api.Options{})
	frames := []model.Frame{{Function: "main.main"}, {Function: "web.handle"}, {Function: "web.parse"}, {Function: "web.compress"}}
	stacks := [][]int32{{2, 1, 0}, {3, 1, 0}, {1, 0}}
	cpu := model.Type{Name: "cpu", SampleType: "cpu", SampleUnit: "nanoseconds", PeriodType: "cpu", PeriodUnit: "nanoseconds"}
	rng := rand.New(rand.NewPCG(8, 8))
	var ps []*model.Profile
	for vi, v := range versions {
		for i := range 6 {
			node := fmt.Sprintf("n%d", i)
			share := []float64{0.5, 0.1, 0.4}
			if slow(v, node) {
				share = []float64{0.5 * 0.87 / 0.9, 0.13, 0.4 * 0.87 / 0.9}
			}
			ls := labels.FromStrings("service", "web", "version", v, "node", node, "pod", fmt.Sprintf("web-%s-%d", v, i))
			for k := range 3 {
				values := make([]int64, len(stacks))
				for j := range stacks {
					values[j] = int64(1000 * share[j] * (1 + 0.05*rng.NormFloat64()))
				}
				at := s.Base.Add(time.Duration(vi)*time.Minute + time.Duration(k)*10*time.Second)
				ps = append(ps, &model.Profile{Type: cpu, Labels: ls, Time: at, Duration: 10 * time.Second, Scale: 10_000_000,
					Stacks: model.StackSet{Frames: frames, Stacks: stacks, Values: values}})
			}
		}
	}
	if err := s.Store.Append(context.Background(), &model.Batch{Profiles: ps}); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestExplainFindsCohort(t *testing.T) {
	s := startVersions(t, func(v, _ string) bool { return v == "1.3" })
	var r api.ExplainResponse
	getJSON(t, s, api.ExplainPath, q("query", web, "function", "web.compress", "by", "version,node", "from", "-1h"), &r)
	top := r.Cohorts[0]
	if r.Status != diff.StatusOK || r.Type != "cpu" || r.Metric != diff.Self || r.Selection.Instances != 24 || r.Found != 1 ||
		top.Label != "version" || top.Value != "1.3" || !top.Significant || top.Delta < 0.025 || top.Delta > 0.035 || top.Q >= 0.05 ||
		top.Permutations < 2000 || top.CILow <= 0 || top.MDE <= 0 {
		t.Errorf("explain: %+v", r)
	}
	getJSON(t, s, api.ExplainPath, q("query", web, "function", "web.compress", "by", "node", "type", "total"), &r)
	if r.Status != diff.StatusOK || r.Metric != diff.Total || r.Found != 0 {
		t.Errorf("by node: %+v, want no evidence", r)
	}
}

func TestBisectFindsVersion(t *testing.T) {
	s := startVersions(t, func(v, _ string) bool { return v >= "1.3" })
	var r api.BisectResponse
	getJSON(t, s, api.BisectPath, q("query", web, "function", "web.compress", "by", "version", "from", "-1h"), &r)
	if r.Status != diff.StatusOK || r.Changed == nil || r.Changed.From != "1.2" || r.Changed.To != "1.3" || r.Tested != 3 ||
		len(r.Versions) != 4 || r.FirstSeenStep != 3600 {
		t.Fatalf("bisect: %+v", r)
	}
	for i, v := range r.Versions {
		// First seen at the start of the step of its first profile.
		first := s.Base.Add(time.Duration(i) * time.Minute).UnixMilli()
		if v.Value != versions[i] || v.Instances != 6 || v.FirstSeen > first || v.FirstSeen <= first-r.FirstSeenStep {
			t.Errorf("version %d: %+v, want %s with 6 instances", i, v, versions[i])
		}
	}
	if r.Steps[2].Significant {
		t.Errorf("1.3 → 1.4 flagged: %+v", r.Steps[2])
	}
}

func TestCohortBadRequests(t *testing.T) {
	s := startVersions(t, func(string, string) bool { return false })
	tests := []struct {
		name   string
		path   string
		params []string
		want   string
	}{
		{"no function", api.ExplainPath, []string{"query", web, "by", "version"}, "missing function"},
		{"bad selector", api.ExplainPath, []string{"query", "cpu{", "function", "f", "by", "version"}, "bad query"},
		{"empty by", api.ExplainPath, []string{"query", web, "function", "web.compress", "by", ""}, "missing by"},
		{"bad by", api.BisectPath, []string{"query", web, "function", "web.compress", "by", "ver-sion"}, `bad by: "ver-sion"`},
		{"bad type", api.ExplainPath, []string{"query", web, "function", "web.compress", "by", "node", "type", "alloc_space"}, `bad type "alloc_space": want self or total`},
		{"unknown function", api.BisectPath, []string{"query", web, "function", "nope", "by", "version"}, `function "nope": not in any stack`},
		{"two labels", api.BisectPath, []string{"query", web, "function", "web.compress", "by", "version,node"}, "one label"},
		{"empty", api.ExplainPath, []string{"query", `cpu{service="nope"}`, "function", "f", "by", "node"}, `no profiles match cpu{service="nope"}`},
	}
	for _, tc := range tests {
		status, body, _ := get(t, s, tc.path, q(tc.params...))
		var e api.ErrorResponse
		if status != http.StatusBadRequest || json.Unmarshal(body, &e) != nil || !strings.Contains(e.Error, tc.want) {
			t.Errorf("%s: %d %s, want 400 with %q", tc.name, status, body, tc.want)
		}
	}
}
