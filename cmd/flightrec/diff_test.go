package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flightrec/flightrec/server/api"
	"github.com/flightrec/flightrec/server/api/apitest"
	"github.com/flightrec/flightrec/server/diff"
	"github.com/flightrec/flightrec/server/model"
)

const (
	baseSel   = `cpu{service="web",track="baseline"}`
	targetSel = `cpu{service="web",track="canary"}`
)

// startTracks serves a deployment of n pods a track whose canary spends 3
// more points of share in web.compress.
func startTracks(t *testing.T, n int) *apitest.Server {
	t.Helper()
	s := apitest.Start(t, api.Options{})
	if err := s.Store.Append(context.Background(), &model.Batch{Profiles: apitest.Tracks(s.Base, n, 0.03)}); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDiffExitCodes(t *testing.T) {
	s := startTracks(t, 6)
	small := startTracks(t, 2)
	diffArgs := func(srv *apitest.Server, extra ...string) []string {
		return append([]string{"diff", "--base", baseSel, "--target", targetSel, "--server", srv.URL, "--from", "-1h"}, extra...)
	}
	tests := []struct {
		name         string
		args         []string
		code         int
		stdout, errs string // substrings expected
	}{
		{"regression", diffArgs(s, "--fail-on", "self>2pp"), 1, "gate self>2pp: FAIL", "regression beyond self>2pp: web.compress self +2."},
		{"default gate", diffArgs(s), 1, "gate self>0pp,total>0pp: FAIL", "web.compress self +2."},
		{"within threshold", diffArgs(s, "--fail-on", "self>5pp,total>50%"), 0, "gate self>5pp,total>50%: pass", ""},
		{"json", diffArgs(s, "--json", "--fail-on", "self>5pp"), 0, `"status":"ok"`, ""},
		{"inconclusive", diffArgs(small), 3, "instances by pod, else pid+node", "inconclusive: 2 base and 2 target instances, need ≥ 3"},
		{"no --target", []string{"diff", "--base", baseSel, "--server", s.URL}, 2, "", "missing --target SELECTOR"},
		{"bad selector", diffArgs(s, "--base", "cpu{"), 2, "", "--base: invalid selector"},
		{"bad fail-on", diffArgs(s, "--fail-on", "self>2"), 2, "", `--fail-on: bad fail-on "self>2": rule "self>2": limit "2" has no unit`},
		{"bad instance-by", diffArgs(s, "--instance-by", "pod,no-dash"), 2, "", `--instance-by: "no-dash" is not a label name`},
		{"bad time", diffArgs(s, "--base-from", "yesterday"), 2, "", "--base-from: bad time"},
		{"positional", append(diffArgs(s), "extra"), 2, "", "unexpected arguments"},
		{"empty side", diffArgs(s, "--target", `cpu{track="nope"}`), 2, "", `target: no profiles match cpu{track="nope"}`},
		{"disjoint types", diffArgs(s, "--target", `alloc_space{service="api"}`), 2, "", "base is cpu profiles and target alloc_space"},
		{"no server", []string{"diff", "--base", baseSel, "--target", targetSel, "--server", "http://127.0.0.1:1"}, 3, "", "GET /api/v1/diff"},
	}
	for _, tc := range tests {
		code, stdout, stderr := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(stdout, tc.stdout) || !strings.Contains(stderr, tc.errs) {
			t.Errorf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", tc.name, code, tc.code, stdout, stderr)
		}
	}
}

func TestDiffTableAndJSON(t *testing.T) {
	s := startTracks(t, 6)
	_, stdout, _ := runCLI(t, "diff", "--base", baseSel, "--target", targetSel, "--server", s.URL, "--limit", "2")
	lines := strings.Split(stdout, "\n")
	if len(lines) < 6 || !strings.HasPrefix(lines[4], "function      metric  base %  target %  Δ points") ||
		!strings.HasPrefix(lines[5], "web.compress  self") || !strings.Contains(lines[5], "regression") ||
		!strings.Contains(stdout, "(2 more rows: --limit 0 or --json for all)") {
		t.Errorf("table:\n%s", stdout)
	}
	_, stdout, _ = runCLI(t, "diff", "--base", baseSel, "--target", targetSel, "--server", s.URL, "--json")
	var d api.DiffResponse
	if err := json.Unmarshal([]byte(stdout), &d); err != nil || d.Changes[0].Function != "web.compress" || !d.Gate.Failed {
		t.Errorf("--json: %v\n%s", err, stdout)
	}
	if len(d.Paths) == 0 || strings.Join(d.Paths[0].Frames, ";") != "main.main;web.handle;web.compress" || d.Paths[0].Verdict != diff.Regression {
		t.Errorf("--json: paths %+v, want main.main;web.handle;web.compress first", d.Paths)
	}
}

// TestPathTable checks the call-path table: rows repeating another row's
// test and constant rows left out, the middle of long paths elided, a few
// rows unless --limit 0.
func TestPathTable(t *testing.T) {
	row := func(v diff.Verdict, frames ...string) diff.PathChange {
		return diff.PathChange{Frames: frames, Stats: diff.Stats{BaseShare: 0.05, TargetShare: 0.07, Delta: 0.02, Q: 0.01, Verdict: v}}
	}
	paths := []diff.PathChange{row(diff.Regression, "main", "serve", "handler0", "parse", "malloc")}
	for i := range 6 {
		paths = append(paths, row(diff.NoEvidence, "main", fmt.Sprint("h", i)))
	}
	repeat := row(diff.Regression, "main", "x")
	repeat.SameAs = "x total"
	paths = append(paths, repeat, diff.PathChange{Frames: []string{"main"}, Stats: diff.Stats{BaseShare: 1, TargetShare: 1, Q: 1, Constant: true}})
	var b strings.Builder
	printPathTable(&b, paths, 20)
	out := b.String()
	if !strings.Contains(out, "main;…;parse;malloc") || !strings.Contains(out, "main;h3") || strings.Contains(out, "main;h4") ||
		strings.Contains(out, "main;x") || !strings.Contains(out, "(2 more call paths") {
		t.Errorf("path table:\n%s", out)
	}
	b.Reset()
	printPathTable(&b, paths, 0)
	if out := b.String(); !strings.Contains(out, "main;h5") || strings.Contains(out, "more call paths") {
		t.Errorf("path table, --limit 0:\n%s", out)
	}
	b.Reset()
	printPathTable(&b, paths[7:], 20)
	if b.Len() != 0 {
		t.Errorf("only repeats and constants, yet a table:\n%s", b.String())
	}
}

// TestDiffPprof writes both sides' profiles and reads the change back with
// go tool pprof -diff_base, as the -o help suggests.
func TestDiffPprof(t *testing.T) {
	s := startTracks(t, 6)
	out := filepath.Join(t.TempDir(), "diff.pb.gz")
	code, _, stderr := runCLI(t, "diff", "--base", baseSel, "--target", targetSel, "--server", s.URL, "-o", out, "--fail-on", "self>5pp")
	base := strings.TrimSuffix(out, ".pb.gz") + ".base.pb.gz"
	if code != 0 || !strings.Contains(stderr, "go tool pprof -normalize -diff_base "+base+" "+out) {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, f := range []string{out, base} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// 6 pods × 3 profiles × ~1000 samples of 10ms, give or take the jitter.
		if total := profileTotal(t, data); total < 170e9 || total > 190e9 {
			t.Errorf("%s: total %d, want about 180s", f, total)
		}
	}
	if testing.Short() {
		return
	}
	cmd := exec.Command("go", "tool", "pprof", "-top", "-normalize", "-diff_base", base, out)
	cmd.Env = append(os.Environ(), "PPROF_TMPDIR="+t.TempDir())
	top, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof: %v\n%s", err, top)
	}
	t.Logf("%s", top)
	// compress is the only function with more of the (normalized) total.
	for _, line := range strings.Split(string(top), "\n") {
		if strings.HasSuffix(line, "web.compress") && strings.HasPrefix(strings.TrimSpace(line), "-") {
			t.Errorf("web.compress shrank in pprof's diff:\n%s", top)
		}
	}
	if !strings.Contains(string(top), "web.compress") {
		t.Errorf("pprof -diff_base output lacks web.compress:\n%s", top)
	}
}
