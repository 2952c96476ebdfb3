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
	"slices"
	"strings"
	"time"

	"github.com/flightrec/flightrec/server/api"
	"github.com/flightrec/flightrec/server/client"
	"github.com/flightrec/flightrec/server/diff"
)

// cohortFlags are the flags explain and bisect share.
type cohortFlags struct {
	from, to   string
	function   string
	by         string
	metric     string
	instanceBy string
	json       bool
}

func (f *cohortFlags) register(fs *flag.FlagSet, defaultBy string) {
	fs.StringVar(&f.from, "from", "-1h", "start `time`: RFC 3339, Unix seconds, -1h, now-30m, ...")
	fs.StringVar(&f.to, "to", "now", "end `time`")
	fs.StringVar(&f.function, "function", "", "the function whose share to test, as top names it (required)")
	fs.StringVar(&f.by, "by", defaultBy, "comma-separated cohort `labels`")
	// --type is the metric, as in diff's rules: the profile type is the selector's.
	fs.StringVar(&f.metric, "type", "self", "the share to test: self or total")
	fs.StringVar(&f.instanceBy, "instance-by", "", "comma-separated `labels` telling instances apart (default pod, else pid,node)")
	fs.BoolVar(&f.json, "json", false, "print the server's JSON answer instead of a table")
}

// params checks the flags and encodes the request.
func (f *cohortFlags) params(pos []string) (url.Values, error) {
	sel, err := selectorArg(pos)
	if err != nil {
		return nil, err
	}
	rf := rangeFlags{from: f.from, to: f.to}
	if err := rf.check(); err != nil {
		return nil, err
	}
	if f.function == "" {
		return nil, usagef("missing --function NAME")
	}
	if f.metric != string(diff.Self) && f.metric != string(diff.Total) {
		return nil, usagef("--type %q: want self or total", f.metric)
	}
	if f.by == "" {
		return nil, usagef("missing --by LABELS")
	}
	for _, n := range strings.Split(f.by, ",") {
		if !isLabelName(strings.TrimSpace(n)) {
			return nil, usagef("--by: %q is not a label name", n)
		}
	}
	if err := (&diffFlags{instanceBy: f.instanceBy}).checkInstanceBy(); err != nil {
		return nil, err
	}
	v := url.Values{"query": {sel}, "function": {f.function}, "by": {f.by}, "from": {f.from}, "to": {f.to}, "type": {f.metric}}
	if f.instanceBy != "" {
		v.Set("instance_by", f.instanceBy)
	}
	return v, nil
}

func runExplain(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("explain", e)
	setUsage(fs, e, "flightrec explain SELECTOR --function NAME [--by version,node,zone] [--from -1h] [--to now]\n"+
		"       [--type self|total] [--instance-by pod] [--json]\n\n"+
		"Tests, for each value of each --by label, the function's share in the instances\n"+
		"with that value against all other instances, and ranks the significant cohorts\n"+
		"by the size of the difference (docs/diff.md). Exit 0: answered, whether or not\n"+
		"a cohort stands out; 2: usage error; 3: inconclusive (too few instances) or no\n"+
		"answer from the server.")
	var sf serverFlags
	var cf cohortFlags
	sf.register(fs)
	cf.register(fs, "version,node,zone")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	params, err := cf.params(pos)
	if err != nil {
		return err
	}
	var r api.ExplainResponse
	return report(ctx, e, sf, cf.json, api.ExplainPath, params, &r,
		func() { showExplain(e.stdout, &r) }, func() (diff.Status, string) { return r.Status, r.Message })
}

// report fetches an explain or bisect answer into out, prints it as JSON or
// through show, and turns a status other than ok into exit 3.
func report(ctx context.Context, e *env, sf serverFlags, asJSON bool, path string, params url.Values, out any,
	show func(), status func() (diff.Status, string)) error {
	c, err := sf.client()
	if err != nil {
		return err
	}
	body, err := fetchJSON(ctx, c, sf.server, path, params, out)
	if err != nil {
		return err
	}
	if asJSON {
		fmt.Fprintf(e.stdout, "%s\n", body)
	} else {
		show()
	}
	if st, msg := status(); st != diff.StatusOK {
		return codeError{exitNoVerdict, errors.New(msg)}
	}
	return nil
}

func showExplain(w io.Writer, r *api.ExplainResponse) {
	fmt.Fprintf(w, "%s explain: %s %s share in %d instances of %s, cohorts by %s; instances by %s\n",
		r.Type, r.Function, r.Metric, r.Selection.Instances, r.Selection.Selector, strings.Join(r.By, ", "), r.InstanceBy)
	fmt.Fprintln(w, rangeLine(r.Selection))
	if r.Status != diff.StatusOK {
		return
	}
	fmt.Fprintf(w, "%d tests of a cohort against the other instances, flagged at q < %g (Benjamini–Hochberg)\n\n", r.Tested, r.Alpha)
	rows := [][]string{{"cohort", "instances", "others", "cohort %", "others %", "Δ points", "95% CI", "q", "MDE"}}
	for _, c := range r.Cohorts {
		if !c.Tested {
			continue
		}
		rows = append(rows, append([]string{fmt.Sprintf("%s=%q", c.Label, c.Value), fmt.Sprint(c.Instances), fmt.Sprint(c.Others)},
			contrastCells(c.Contrast)...))
	}
	printTable(w, rows)
	if r.Found == 0 {
		fmt.Fprintf(w, "\nno evidence: no cohort's share differs significantly from the other instances' (q < %g)\n", r.Alpha)
		return
	}
	top := r.Cohorts[0]
	fmt.Fprintf(w, "\nfinding: %s=%q: %.2f%% against %.2f%% in the other instances, %+.2f points (95%% CI [%+.2f, %+.2f], q %s)\n",
		top.Label, top.Value, 100*top.Share, 100*top.OtherShare, 100*top.Delta, 100*top.CILow, 100*top.CIHigh, formatQ(top.Q))
}

// contrastCells are the shares and the test of a contrast, for a table.
func contrastCells(c diff.Contrast) []string {
	return []string{fmt.Sprintf("%.2f", 100*c.Share), fmt.Sprintf("%.2f", 100*c.OtherShare), fmt.Sprintf("%+.2f", 100*c.Delta),
		fmt.Sprintf("[%+.2f, %+.2f]", 100*c.CILow, 100*c.CIHigh), formatQ(c.Q), fmt.Sprintf("%.2f", 100*c.MDE)}
}

func rangeLine(s diff.SideSummary) string {
	return "from " + time.UnixMilli(s.From).UTC().Format(time.RFC3339) + " to " + time.UnixMilli(s.To).UTC().Format(time.RFC3339)
}

// printTable aligns rows: the first column and the columns in left (text)
// left, the others (numbers) right.
func printTable(w io.Writer, rows [][]string, left ...int) {
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, cell := range r {
			width[i] = max(width[i], len([]rune(cell)))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, cell := range r {
			pad := strings.Repeat(" ", width[i]-len([]rune(cell)))
			if i == 0 || slices.Contains(left, i) {
				b.WriteString(cell + pad + "  ")
			} else {
				b.WriteString(pad + cell + "  ")
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

// fetchJSON GETs path and decodes a 200 into out, with the conventions of
// fetchDiff: a 400 is a usage error, any other failure exit 3.
func fetchJSON(ctx context.Context, c *client.Client, server, path string, params url.Values, out any) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(server, "/")+path+"?"+params.Encode(), nil)
	if err != nil {
		return nil, usagef("--server: %v", err)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	req.Header.Set("User-Agent", c.UserAgent)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, codeError{exitNoVerdict, fmt.Errorf("GET %s: %w", path, err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, codeError{exitNoVerdict, fmt.Errorf("GET %s: read answer: %w", path, err)}
	}
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(body))
		var er api.ErrorResponse
		if json.Unmarshal(body, &er) == nil && er.Error != "" {
			msg = er.Error
		}
		if resp.StatusCode == http.StatusBadRequest {
			return nil, usageError{errors.New(msg)}
		}
		return nil, codeError{exitNoVerdict, fmt.Errorf("GET %s: %s: %s", path, resp.Status, msg)}
	}
	if err := json.Unmarshal(body, out); err != nil {
		return nil, codeError{exitNoVerdict, fmt.Errorf("GET %s: decode answer: %w", path, err)}
	}
	return body, nil
}
