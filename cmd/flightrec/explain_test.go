package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/api"
	"github.com/flightrec/flightrec/server/api/apitest"
	"github.com/flightrec/flightrec/server/model"
)

const webSel = `cpu{service="web"}`

// startVersions serves service "web" in versions 1.1 to 1.4, first seen a
// minute apart, n pods each on nodes n0.., 3% jitter per stack; from version slowFrom on (""
// none), web.compress takes 3 more points of share.
func startVersions(t *testing.T, n int, slowFrom string) *apitest.Server {
	t.Helper()
	s := apitest.Start(t, api.Options{})
	frames := []model.Frame{{Function: "main.main"}, {Function: "web.handle"}, {Function: "web.parse"}, {Function: "web.compress"}}
	stacks := [][]int32{{2, 1, 0}, {3, 1, 0}, {1, 0}}
	cpu := model.Type{Name: "cpu", SampleType: "cpu", SampleUnit: "nanoseconds", PeriodType: "cpu", PeriodUnit: "nanoseconds"}
	rng := rand.New(rand.NewPCG(9, 9))
	var ps []*model.Profile
	for vi, v := range []string{"1.1", "1.2", "1.3", "1.4"} {
		share := []float64{0.5, 0.1, 0.4}
		if slowFrom != "" && v >= slowFrom {
			share = []float64{0.5 * 0.87 / 0.9, 0.13, 0.4 * 0.87 / 0.9}
		}
		for i := range n {
			ls := labels.FromStrings("service", "web", "version", v, "node", fmt.Sprintf("n%d", i), "pod", fmt.Sprintf("web-%s-%d", v, i))
			values := make([]int64, len(stacks))
			for j := range stacks {
				values[j] = int64(3000 * share[j] * (1 + 0.03*rng.NormFloat64()))
			}
			ps = append(ps, &model.Profile{Type: cpu, Labels: ls, Time: s.Base.Add(time.Duration(vi) * time.Minute), Duration: 10 * time.Second,
				Scale: 10_000_000, Stacks: model.StackSet{Frames: frames, Stacks: stacks, Values: values}})
		}
	}
	if err := s.Store.Append(context.Background(), &model.Batch{Profiles: ps}); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestExplainBisectExitCodes(t *testing.T) {
	s := startVersions(t, 6, "1.3")
	flat := startVersions(t, 6, "")
	small := startVersions(t, 2, "1.3")
	args := func(cmd string, srv *apitest.Server, extra ...string) []string {
		return append([]string{cmd, webSel, "--function", "web.compress", "--server", srv.URL}, extra...)
	}
	tests := []struct {
		name         string
		args         []string
		code         int
		stdout, errs string // substrings expected
	}{
		{"explain finds", args("explain", s, "--by", "version"), 0, `finding: version="1.`, ""},
		{"explain nothing", args("explain", flat, "--by", "version"), 0, "no evidence: no cohort's share differs", ""},
		{"explain json", args("explain", s, "--json"), 0, `"significant":`, ""},
		{"explain inconclusive", args("explain", small, "--by", "version"), 3, "explain: web.compress self share in 8 instances", "inconclusive: no cohort of version"},
		{"bisect finds", args("bisect", s), 0, `changed at version="1.3": `, ""},
		{"bisect nothing", args("bisect", flat, "--type", "total"), 0, "no evidence: the share did not change", ""},
		{"bisect inconclusive", args("bisect", small), 3, "1.4  ", "inconclusive: no two consecutive of 4 values"},
		{"no function", []string{"explain", webSel, "--server", s.URL}, 2, "", "missing --function NAME"},
		{"no selector", []string{"bisect", "--function", "f", "--server", s.URL}, 2, "", "missing SELECTOR"},
		{"bad type", args("explain", s, "--type", "cpu"), 2, "", `--type "cpu": want self or total`},
		{"bad by", args("explain", s, "--by", "a-b"), 2, "", `--by: "a-b" is not a label name`},
		{"bisect two labels", args("bisect", s, "--by", "version,node"), 2, "", "bisect orders the values of one label"},
		{"unknown function", []string{"bisect", webSel, "--function", "nope", "--server", s.URL}, 2, "", `function "nope": not in any stack`},
		{"no server", []string{"explain", webSel, "--function", "f", "--server", "http://127.0.0.1:1"}, 3, "", "GET /api/v1/explain"},
	}
	for _, tc := range tests {
		code, stdout, stderr := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(stdout, tc.stdout) || !strings.Contains(stderr, tc.errs) {
			t.Errorf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", tc.name, code, tc.code, stdout, stderr)
		}
	}
}

func TestBisectJSON(t *testing.T) {
	s := startVersions(t, 6, "1.3")
	code, stdout, _ := runCLI(t, "bisect", webSel, "--function", "web.compress", "--server", s.URL, "--json")
	var r api.BisectResponse
	if err := json.Unmarshal([]byte(stdout), &r); code != 0 || err != nil || r.Changed == nil || r.Changed.To != "1.3" || len(r.Versions) != 4 {
		t.Errorf("exit %d, %v\n%s", code, err, stdout)
	}
}
