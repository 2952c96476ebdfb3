package main

import (
	"context"
	"fmt"

	"github.com/flightrec/flightrec/server/query"
)

func runLabels(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("labels", e)
	setUsage(fs, e, "flightrec labels [NAME] [--query SELECTOR] [--type TYPE] [--from -1h] [--to now]\n\n"+
		"Lists the label names of the series with data in the range, or with NAME\n"+
		"the values of that label (NAME __name__ lists profile types).")
	var sf serverFlags
	var rf rangeFlags
	sf.register(fs)
	rf.register(fs, "", "only series of this profile `type` (default: all types)")
	sel := fs.String("query", "", "only series this `SELECTOR` matches")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usagef("want at most one label NAME, got %d arguments", len(pos))
	}
	if *sel != "" {
		if _, err := query.ParseSelector(*sel); err != nil {
			return usagef("--query: %v", err)
		}
	}
	if err := rf.check(); err != nil {
		return err
	}
	c, err := sf.client()
	if err != nil {
		return err
	}
	var list []string
	what := "label names"
	if len(pos) == 1 {
		what = "values of " + pos[0]
		list, err = c.LabelValues(ctx, pos[0], *sel, rf.from, rf.to, rf.typ)
	} else {
		list, err = c.Labels(ctx, *sel, rf.from, rf.to, rf.typ)
	}
	if err != nil {
		return err
	}
	if len(list) == 0 {
		fmt.Fprintf(e.stderr, "no %s: no series match in the range\n", what)
	}
	for _, s := range list {
		fmt.Fprintln(e.stdout, s)
	}
	return nil
}
