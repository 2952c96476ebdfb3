package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/flightrec/flightrec/server/api"
	"github.com/flightrec/flightrec/server/api/apitest"
	"github.com/flightrec/flightrec/server/diff"
	"github.com/flightrec/flightrec/server/model"
)

const (
	baseline = `cpu{service="web",track="baseline"}`
	canary   = `cpu{service="web",track="canary"}`
)

// startTracks serves the fleet plus a deployment of n pods a track, the
// canary's web.compress slower by the given points of share.
func startTracks(t *testing.T, n int, slower float64) *apitest.Server {
	t.Helper()
	s := apitest.Start(t, api.Options{})
	if err := s.Store.Append(context.Background(), &model.Batch{Profiles: apitest.Tracks(s.Base, n, slower)}); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDiffFindsRegression(t *testing.T) {
	s := startTracks(t, 6, 0.03)
	var d api.DiffResponse
	getJSON(t, s, api.DiffPath, q("base", baseline, "target", canary, "from", "-1h", "fail_on", "self>2pp"), &d)
	if d.Status != diff.StatusOK || d.Type != "cpu" || d.Unit != "nanoseconds" || d.Base.Instances != 6 || d.Target.Instances != 6 ||
		d.InstanceBy != diff.AutoInstance || d.Base.Selector != baseline {
		t.Fatalf("diff %+v", d)
	}
	top := d.Changes[0]
	if top.Function != "web.compress" || top.Metric != diff.Self || top.Verdict != diff.Regression ||
		top.Delta < 0.025 || top.Delta > 0.035 || top.CILow <= 0 || top.Q >= 0.05 {
		t.Errorf("top change %+v, want web.compress self +3 points", top)
	}
	for _, c := range d.Changes {
		if c.Verdict == diff.Regression && c.Function != "web.compress" && c.Function != "web.handle" {
			t.Errorf("%s %s flagged as a regression: %+v", c.Function, c.Metric, c)
		}
	}
	if !d.Gate.Failed || d.Gate.FailOn != "self>2pp" || len(d.Gate.Failing) != 1 || d.Gate.Failing[0].Function != "web.compress" {
		t.Errorf("gate %+v, want web.compress failing self>2pp", d.Gate)
	}

	// The call path into compress is its self test again (every compress
	// stack is main;handle;compress): the same row, as a path.
	var path *diff.PathChange
	for i, p := range d.Paths {
		if strings.Join(p.Frames, ";") == "main.main;web.handle;web.compress" {
			path = &d.Paths[i]
		}
	}
	if path == nil || path.Verdict != diff.Regression || path.Q != top.Q || path.SameAs != "web.compress self" || d.Paths[0].Verdict != diff.Regression {
		t.Errorf("call path into web.compress %+v, want the regression of web.compress self, ranked first, in %+v", path, d.Paths)
	}

	// A threshold beyond the change passes; instance_by splits by pod alone.
	getJSON(t, s, api.DiffPath, q("base", baseline, "target", canary, "fail_on", "self>5pp", "instance_by", "pod"), &d)
	if d.Gate.Failed || d.InstanceBy != "pod" || d.Changes[0].Verdict != diff.Regression {
		t.Errorf("self>5pp: gate %+v, instance_by %q", d.Gate, d.InstanceBy)
	}
}

func TestDiffAA(t *testing.T) {
	s := startTracks(t, 6, 0)
	var d api.DiffResponse
	getJSON(t, s, api.DiffPath, q("base", baseline, "target", canary), &d)
	if d.Status != diff.StatusOK || d.Gate.Failed || d.Gate.FailOn != diff.DefaultGate {
		t.Errorf("no change: status %s, gate %+v", d.Status, d.Gate)
	}
	for _, c := range d.Changes {
		if c.Verdict != diff.NoEvidence {
			t.Errorf("no change, yet %s %s is a %s: %+v", c.Function, c.Metric, c.Verdict, c)
		}
	}
	for _, p := range d.Paths {
		if p.Verdict != diff.NoEvidence {
			t.Errorf("no change, yet the path %v is a %s: %+v", p.Frames, p.Verdict, p)
		}
	}
	if len(d.Paths) < 4 {
		t.Errorf("%d call paths tested, want main.main and the 3 ≥ 10%% paths under it at least", len(d.Paths))
	}
}

// TestDiffPathsJSON checks the wire form the UI reads: "paths", each with
// "frames" (names, root first), the shares and the verdict.
func TestDiffPathsJSON(t *testing.T) {
	s := startTracks(t, 6, 0.03)
	var d struct {
		Paths []map[string]any `json:"paths"`
	}
	getJSON(t, s, api.DiffPath, q("base", baseline, "target", canary), &d)
	if len(d.Paths) == 0 {
		t.Fatal("no paths in the diff")
	}
	for _, p := range d.Paths {
		frames, ok := p["frames"].([]any)
		if !ok || len(frames) == 0 || frames[0] != "main.main" {
			t.Errorf("path %v: frames %v, want names from main.main down", p, p["frames"])
		}
		for _, k := range []string{"base_share", "target_share", "delta", "ci_low", "ci_high", "p", "q", "mde", "verdict"} {
			if _, ok := p[k]; !ok {
				t.Errorf("path %v has no %s", p["frames"], k)
			}
		}
	}
}

func TestDiffInconclusive(t *testing.T) {
	s := startTracks(t, 2, 0.03)
	var d api.DiffResponse
	getJSON(t, s, api.DiffPath, q("base", baseline, "target", canary), &d)
	if d.Status != diff.StatusInconclusive || !strings.HasPrefix(d.Message, "inconclusive: 2 base and 2 target instances, need ≥ 3") ||
		d.Gate.Failed || len(d.Changes) != 0 {
		t.Errorf("2 pods a track: %+v", d)
	}
	// By service, each track is one instance.
	getJSON(t, s, api.DiffPath, q("base", baseline, "target", canary, "instance_by", "service"), &d)
	if d.Status != diff.StatusInconclusive || d.Base.Instances != 1 {
		t.Errorf("by service: %+v", d)
	}
}

func TestDiffBadRequests(t *testing.T) {
	s := startTracks(t, 3, 0.03)
	tests := []struct {
		name   string
		params []string
		want   string
	}{
		{"no base", []string{"target", canary}, "missing base"},
		{"bad selector", []string{"base", `cpu{service=`, "target", canary}, "bad base: invalid selector"},
		{"regex type", []string{"base", baseline, "target", `{__name__=~"c.*"}`}, "bad target"},
		{"empty base", []string{"base", `cpu{service="web",track="nope"}`, "target", canary},
			`base: no profiles match cpu{service="web",track="nope"}`},
		{"disjoint types", []string{"base", baseline, "target", `off_cpu{service="web"}`},
			"base is cpu profiles and target off_cpu"},
		{"selector types win over type", []string{"base", baseline, "target", canary, "type", "alloc_space"}, ""},
		{"type for both", []string{"base", `{track="baseline"}`, "target", `{track="canary"}`, "type", "alloc_space"},
			"base: no profiles match alloc_space"},
		{"bad fail_on", []string{"base", baseline, "target", canary, "fail_on", "self>2"}, `bad fail-on "self>2"`},
		{"bad instance_by", []string{"base", baseline, "target", canary, "instance_by", "pod,2x"}, `bad instance_by: "2x"`},
		{"empty instance_by", []string{"base", baseline, "target", canary, "instance_by", ""}, "bad instance_by: empty"},
		{"bad base range", []string{"base", baseline, "target", canary, "base_from", "yesterday"}, "base range: bad from"},
		{"unknown parameter", []string{"base", baseline, "target", canary, "query", "x"}, `unknown parameter "query"`},
	}
	for _, tc := range tests {
		status, body, _ := get(t, s, api.DiffPath, q(tc.params...))
		if tc.want == "" {
			if status != http.StatusOK {
				t.Errorf("%s: %d %s", tc.name, status, body)
			}
			continue
		}
		var e api.ErrorResponse
		if status != http.StatusBadRequest || json.Unmarshal(body, &e) != nil || !strings.Contains(e.Error, tc.want) {
			t.Errorf("%s: %d %s, want 400 with %q", tc.name, status, body, tc.want)
		}
	}
}
