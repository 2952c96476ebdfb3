package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/flightrec/flightrec/server/api"
	"github.com/flightrec/flightrec/server/diff"
)

func runBisect(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("bisect", e)
	setUsage(fs, e, "flightrec bisect SELECTOR --function NAME [--by version] [--from -1h] [--to now]\n"+
		"       [--type self|total] [--instance-by pod] [--json]\n\n"+
		"Orders the values of --by by when each was first seen, tests the function's\n"+
		"share in each against the one before, and names the first at which it changed\n"+
		"significantly (docs/diff.md). Exit 0: answered, whether or not something\n"+
		"changed; 2: usage error; 3: inconclusive (too few instances) or no answer\n"+
		"from the server.")
	var sf serverFlags
	var cf cohortFlags
	sf.register(fs)
	cf.register(fs, "version")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	params, err := cf.params(pos)
	if err != nil {
		return err
	}
	if strings.Contains(cf.by, ",") {
		return usagef("--by %q: bisect orders the values of one label", cf.by)
	}
	var r api.BisectResponse
	return report(ctx, e, sf, cf.json, api.BisectPath, params, &r,
		func() { showBisect(e.stdout, &r) }, func() (diff.Status, string) { return r.Status, r.Message })
}

func showBisect(w io.Writer, r *api.BisectResponse) {
	fmt.Fprintf(w, "%s bisect: %s %s share in %d instances of %s, by %s in first-seen order; instances by %s\n",
		r.Type, r.Function, r.Metric, r.Selection.Instances, r.Selection.Selector, r.Label, r.InstanceBy)
	fmt.Fprintln(w, rangeLine(r.Selection))
	rows := [][]string{{r.Label, "first seen", "instances", "share %"}}
	for _, v := range r.Versions {
		rows = append(rows, []string{v.Value, time.UnixMilli(v.FirstSeen).UTC().Format(time.RFC3339), fmt.Sprint(v.Instances), fmt.Sprintf("%.2f", 100*v.Share)})
	}
	fmt.Fprintln(w)
	printTable(w, rows)
	if r.Status != diff.StatusOK {
		return
	}
	fmt.Fprintf(w, "\n%d tests of a value against the one before, flagged at q < %g (Benjamini–Hochberg)\n\n", r.Tested, r.Alpha)
	rows = [][]string{{"step", "to %", "from %", "Δ points", "95% CI", "q", "MDE"}}
	for _, s := range r.Steps {
		if s.Tested {
			rows = append(rows, append([]string{s.From + " → " + s.To}, contrastCells(s.Contrast)...))
		}
	}
	printTable(w, rows)
	if r.Changed == nil {
		fmt.Fprintf(w, "\nno evidence: the share did not change significantly between consecutive values (q < %g)\n", r.Alpha)
		return
	}
	s := r.Changed
	fmt.Fprintf(w, "\nchanged at %s=%q: %.2f%% → %.2f%% after %s, %+.2f points (95%% CI [%+.2f, %+.2f], q %s)\n",
		r.Label, s.To, 100*s.OtherShare, 100*s.Share, s.From, 100*s.Delta, 100*s.CILow, 100*s.CIHigh, formatQ(s.Q))
}
