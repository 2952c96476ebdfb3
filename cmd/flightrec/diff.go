package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/flightrec/flightrec/server/api"
	"github.com/flightrec/flightrec/server/client"
	"github.com/flightrec/flightrec/server/diff"
	"github.com/flightrec/flightrec/server/query"
)

// Exit codes of diff, a CD gate: 1 (exitError) is a regression.
const (
	exitRegression = exitError
	// exitNoVerdict: too few instances, or no answer from the server; a
	// pipeline must not read either as a pass or as a regression.
	exitNoVerdict = 3
)

// diffFlags are diff's own flags.
type diffFlags struct {
	base, target       string
	baseFrom, baseTo   string
	instanceBy, failOn string
	out                string
	json               bool
	limit              int
}

func (f *diffFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.base, "base", "", "baseline `SELECTOR`, e.g. 'cpu{service=\"api\",track=\"baseline\"}' (required)")
	fs.StringVar(&f.target, "target", "", "target `SELECTOR`, e.g. 'cpu{service=\"api\",track=\"canary\"}' (required)")
	fs.StringVar(&f.baseFrom, "base-from", "", "start `time` of the baseline (default --from)")
	fs.StringVar(&f.baseTo, "base-to", "", "end `time` of the baseline (default --to)")
	fs.StringVar(&f.instanceBy, "instance-by", "", "comma-separated `labels` telling instances apart (default pod, else pid,node)")
	fs.StringVar(&f.failOn, "fail-on", "", "exit 1 on a significant regression beyond `RULES`, e.g. 'self>2pp,total>10%' (default any)")
	fs.StringVar(&f.out, "o", "", "write the target's merged profile to `FILE` and the baseline's beside it (diff.pb.gz: diff.base.pb.gz), for go tool pprof -diff_base")
	fs.BoolVar(&f.json, "json", false, "print the server's JSON answer instead of a table")
	fs.IntVar(&f.limit, "limit", 20, "show this many rows of the table (0: all)")
}

func runDiff(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("diff", e)
	setUsage(fs, e, "flightrec diff --base SELECTOR --target SELECTOR [--from -1h] [--to now] [--instance-by pod]\n"+
		"       [--fail-on 'self>2pp'] [-o diff.pb.gz] [--json]\n\n"+
		"Compares each function's share of the target's profiles with the baseline's,\n"+
		"testing across instances (docs/diff.md). Exit 0: no significant regression\n"+
		"beyond --fail-on; 1: regression; 2: usage error; 3: no verdict (too few\n"+
		"instances, or no answer from the server).")
	var sf serverFlags
	var rf rangeFlags
	var df diffFlags
	sf.register(fs)
	rf.register(fs, "", "profile `type` of selectors that name none (default: the other's, else cpu)")
	df.register(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected arguments %q: the selectors go in --base and --target", pos)
	}
	params, err := df.params(&rf)
	if err != nil {
		return err
	}
	c, err := sf.client()
	if err != nil {
		return err
	}
	body, d, err := fetchDiff(ctx, c, sf.server, params)
	if err != nil {
		return err
	}
	if err := df.show(e, body, d); err != nil {
		return err
	}
	if df.out != "" {
		// The profiles are for reading the change; failing to save them
		// must not hide the verdict the gate runs for.
		if err := writeProfiles(ctx, e, c, &df, &rf, d.Type); err != nil {
			fmt.Fprintf(e.stderr, "flightrec diff: -o: %v\n", err)
		}
	}
	return verdict(d)
}

// params checks the flags and encodes the request: every mistake is a
// usage error, found before asking the server.
func (f *diffFlags) params(rf *rangeFlags) (url.Values, error) {
	v := url.Values{}
	for _, s := range []struct{ flag, value, param string }{{"base", f.base, "base"}, {"target", f.target, "target"}} {
		if s.value == "" {
			return nil, usagef("missing --%s SELECTOR", s.flag)
		}
		if _, err := query.ParseSelector(s.value); err != nil {
			return nil, usagef("--%s: %v", s.flag, err)
		}
		v.Set(s.param, s.value)
	}
	if err := rf.check(); err != nil {
		return nil, err
	}
	now := time.Now()
	for _, t := range []struct{ flag, value, param string }{
		{"from", rf.from, "from"}, {"to", rf.to, "to"}, {"base-from", f.baseFrom, "base_from"}, {"base-to", f.baseTo, "base_to"},
	} {
		if t.value == "" {
			continue
		}
		if _, err := query.ParseTime(t.value, now); err != nil {
			return nil, usagef("--%s: %v", t.flag, err)
		}
		v.Set(t.param, t.value)
	}
	if rf.typ != "" {
		v.Set("type", rf.typ)
	}
	if err := f.checkInstanceBy(); err != nil {
		return nil, err
	}
	if f.instanceBy != "" {
		v.Set("instance_by", f.instanceBy)
	}
	if _, err := diff.ParseGate(f.failOn); err != nil {
		return nil, usagef("--fail-on: %v", err)
	}
	if f.failOn != "" {
		v.Set("fail_on", f.failOn)
	}
	if f.limit < 0 {
		return nil, usagef("--limit %d: must be 0 (all) or more", f.limit)
	}
	return v, nil
}

func (f *diffFlags) checkInstanceBy() error {
	if f.instanceBy == "" {
		return nil
	}
	for _, n := range strings.Split(f.instanceBy, ",") {
		if !isLabelName(strings.TrimSpace(n)) {
			return usagef("--instance-by: %q is not a label name", n)
		}
	}
	return nil
}

// isLabelName reports whether s is a legacy Prometheus label name, the
// only kind the store keeps.
func isLabelName(s string) bool {
	for i, r := range s {
		letter := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
		if !letter && (i == 0 || r < '0' || r > '9') {
			return false
		}
	}
	return s != ""
}

// verdict turns the answer into diff's exit code.
func verdict(d *api.DiffResponse) error {
	switch {
	case d.Status != diff.StatusOK:
		return codeError{exitNoVerdict, errors.New(d.Message)}
	case d.Gate.Failed:
		var names []string
		for _, c := range d.Gate.Failing {
			names = append(names, fmt.Sprintf("%s %s %+.2f points", c.Function, c.Metric, 100*c.Delta))
		}
		return codeError{exitRegression, fmt.Errorf("regression beyond %s: %s", d.Gate.FailOn, strings.Join(names, "; "))}
	}
	return nil
}

// fetchDiff asks the server. The client package has no diff call of its
// own, so this does the request with the client's settings: a 400 is the
// invocation's fault (exit 2), any other failure leaves no verdict (3).
func fetchDiff(ctx context.Context, c *client.Client, server string, params url.Values) ([]byte, *api.DiffResponse, error) {
	u := strings.TrimSuffix(server, "/") + api.DiffPath + "?" + params.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, usagef("--server: %v", err)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	req.Header.Set("User-Agent", c.UserAgent)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, nil, codeError{exitNoVerdict, fmt.Errorf("GET %s: %w", api.DiffPath, err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, codeError{exitNoVerdict, fmt.Errorf("GET %s: read answer: %w", api.DiffPath, err)}
	}
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(body))
		var er api.ErrorResponse
		if json.Unmarshal(body, &er) == nil && er.Error != "" {
			msg = er.Error
		}
		if resp.StatusCode == http.StatusBadRequest {
			return nil, nil, usageError{errors.New(msg)}
		}
		return nil, nil, codeError{exitNoVerdict, fmt.Errorf("GET %s: %s: %s", api.DiffPath, resp.Status, msg)}
	}
	var d api.DiffResponse
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, nil, codeError{exitNoVerdict, fmt.Errorf("GET %s: decode answer: %w", api.DiffPath, err)}
	}
	return body, &d, nil
}

// writeProfiles saves both sides' merged profiles: the target at -o, the
// baseline beside it, so that go tool pprof -diff_base shows the change.
func writeProfiles(ctx context.Context, e *env, c *client.Client, df *diffFlags, rf *rangeFlags, typ string) error {
	basePath := baseFile(df.out)
	sides := []struct{ path, sel, from, to string }{
		{df.out, df.target, rf.from, rf.to},
		{basePath, df.base, firstNonEmpty(df.baseFrom, rf.from), firstNonEmpty(df.baseTo, rf.to)},
	}
	for _, s := range sides {
		data, err := c.Pprof(ctx, s.sel, s.from, s.to, typ)
		if err != nil {
			return fmt.Errorf("download %s: %w", s.sel, err)
		}
		if err := os.WriteFile(s.path, data, 0o644); err != nil {
			return fmt.Errorf("write profile: %w", err)
		}
	}
	fmt.Fprintf(e.stderr, "wrote %s (target) and %s (baseline); see the change with:\n  go tool pprof -normalize -diff_base %s %s\n",
		df.out, basePath, basePath, df.out)
	return nil
}

// baseFile is where the baseline goes: diff.pb.gz → diff.base.pb.gz.
func baseFile(out string) string {
	if stem, ok := strings.CutSuffix(out, ".pb.gz"); ok {
		return stem + ".base.pb.gz"
	}
	return out + ".base"
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// show writes the answer: the server's JSON with --json, else a header
// and the ranked table.
func (f *diffFlags) show(e *env, body []byte, d *api.DiffResponse) error {
	if f.json {
		_, err := fmt.Fprintf(e.stdout, "%s\n", body)
		return err
	}
	fmt.Fprintf(e.stdout, "%s diff: target %s (%d instances) vs baseline %s (%d instances); instances by %s\n",
		d.Type, d.Target.Selector, d.Target.Instances, d.Base.Selector, d.Base.Instances, d.InstanceBy)
	fmt.Fprintln(e.stdout, describeRanges(d))
	if d.Status != diff.StatusOK {
		return nil // the exit code's message says why
	}
	fmt.Fprintf(e.stdout, "%d tests of functions and call paths with ≥ %g%% mean share, flagged at q < %g (Benjamini–Hochberg)\n\n",
		d.Tested, 100*d.MinShare, d.Alpha)
	printDiffTable(e.stdout, d.Changes, f.limit)
	printPathTable(e.stdout, d.Paths, f.limit)
	gate := "pass"
	if d.Gate.Failed {
		gate = "FAIL"
	}
	fmt.Fprintf(e.stdout, "\ngate %s: %s\n", d.Gate.FailOn, gate)
	return nil
}

func describeRanges(d *api.DiffResponse) string {
	r := func(s diff.SideSummary) string {
		return time.UnixMilli(s.From).UTC().Format(time.RFC3339) + " to " + time.UnixMilli(s.To).UTC().Format(time.RFC3339)
	}
	if d.Base.From == d.Target.From && d.Base.To == d.Target.To {
		return "from " + r(d.Target)
	}
	return "target from " + r(d.Target) + ", baseline from " + r(d.Base)
}

// printDiffTable prints the ranked changes, leaving out total rows that
// repeat a leaf's self row and shares equal on every instance (the root's
// 100%).
func printDiffTable(w io.Writer, changes []diff.Change, limit int) {
	rows := [][]string{{"function", "metric", "base %", "target %", "Δ points", "95% CI", "q", "verdict", "MDE"}}
	shown, hidden := 0, 0
	for _, c := range changes {
		if c.SameAsSelf || c.Constant {
			continue
		}
		if limit > 0 && shown == limit {
			hidden++
			continue
		}
		shown++
		rows = append(rows, []string{c.Function, string(c.Metric),
			fmt.Sprintf("%.2f", 100*c.BaseShare), fmt.Sprintf("%.2f", 100*c.TargetShare), fmt.Sprintf("%+.2f", 100*c.Delta),
			fmt.Sprintf("[%+.2f, %+.2f]", 100*c.CILow, 100*c.CIHigh), formatQ(c.Q), string(c.Verdict), fmt.Sprintf("%.2f", 100*c.MDE)})
	}
	printTable(w, rows, 1, 7) // function, metric and verdict are text
	if hidden > 0 {
		fmt.Fprintf(w, "(%d more rows: --limit 0 or --json for all)\n", hidden)
	}
}

// pathRows is how many call paths the table shows: a few, as pointers
// into the flame graph; --json has them all.
const pathRows = 5

// printPathTable prints the first call paths of the ranking, leaving out
// those that repeat another row's test (their row says it) and constant
// ones.
func printPathTable(w io.Writer, paths []diff.PathChange, limit int) {
	rows := [][]string{{"call path (root;…;leaf)", "base %", "target %", "Δ points", "95% CI", "q", "verdict", "MDE"}}
	n := pathRows
	if limit > 0 {
		n = min(n, limit)
	}
	more := 0
	for _, p := range paths {
		if p.SameAs != "" || p.Constant {
			continue
		}
		if len(rows) > n && limit != 0 {
			more++
			continue
		}
		rows = append(rows, []string{shortPath(p.Frames),
			fmt.Sprintf("%.2f", 100*p.BaseShare), fmt.Sprintf("%.2f", 100*p.TargetShare), fmt.Sprintf("%+.2f", 100*p.Delta),
			fmt.Sprintf("[%+.2f, %+.2f]", 100*p.CILow, 100*p.CIHigh), formatQ(p.Q), string(p.Verdict), fmt.Sprintf("%.2f", 100*p.MDE)})
	}
	if len(rows) == 1 {
		return // every path repeats a function's row
	}
	fmt.Fprintln(w)
	printTable(w, rows, 6)
	if more > 0 {
		fmt.Fprintf(w, "(%d more call paths: --limit 0 or --json for all)\n", more)
	}
}

// shortPath keeps a path's root and its last two frames, where the
// change is; the frames between are in --json.
func shortPath(frames []string) string {
	if len(frames) <= 3 {
		return strings.Join(frames, ";")
	}
	return frames[0] + ";…;" + strings.Join(frames[len(frames)-2:], ";")
}

func formatQ(q float64) string {
	if q < 0.001 {
		return "<0.001"
	}
	return fmt.Sprintf("%.3f", q)
}
