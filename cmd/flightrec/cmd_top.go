package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/flightrec/flightrec/server/api"
	"github.com/flightrec/flightrec/server/query"
)

func runTop(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("top", e)
	setUsage(fs, e, "flightrec top SELECTOR [--limit 20] [--order self|total] [--from -1h] [--to now] [--type cpu]\n\n"+
		"Prints the functions the profiles SELECTOR matches spend most in, like\n"+
		"go tool pprof -top: flat is time in the function itself, cum with its callees.")
	var sf serverFlags
	var rf rangeFlags
	sf.register(fs)
	rf.register(fs, "cpu", "profile `type` when SELECTOR names none")
	limit := fs.Int("limit", 20, "show this many functions (0: all)")
	order := fs.String("order", "self", "sort by self (flat) or total (cum)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	sel, err := selectorArg(pos)
	if err != nil {
		return err
	}
	if err := rf.check(); err != nil {
		return err
	}
	if _, err := query.ParseOrder(*order); err != nil {
		return usagef("--order: %v", err)
	}
	if *limit < 0 {
		return usagef("--limit %d: must be 0 (all) or more", *limit)
	}
	c, err := sf.client()
	if err != nil {
		return err
	}
	// The server's limit 0 is its default; all is a large one.
	n := *limit
	if n == 0 {
		n = 1_000_000
	}
	top, err := c.Top(ctx, sel, rf.from, rf.to, rf.typ, *order, n)
	if err != nil {
		return err
	}
	if len(top.Functions) == 0 {
		fmt.Fprintln(e.stderr, top.Message)
		return nil
	}
	printTop(e.stdout, top, *order)
	return nil
}

// printTop prints a table like pprof -top's: its column widths, growing
// for longer cells.
func printTop(w io.Writer, top *api.TopResponse, order string) {
	by := "flat"
	if order == string(query.ByTotal) {
		by = "cum"
	}
	fmt.Fprintf(w, "Showing top %d of %d functions by %s, of %s total (%s)\n",
		len(top.Functions), top.Count, by, formatValue(top.Total, top.Unit), top.Type)
	rows := [][]string{{"flat", "flat%", "sum%", "cum", "cum%"}}
	var sum int64
	for _, f := range top.Functions {
		sum += f.Self
		rows = append(rows, []string{
			formatValue(f.Self, top.Unit), percent(f.Self, top.Total), percent(sum, top.Total),
			formatValue(f.Total, top.Unit), percent(f.Total, top.Total),
		})
	}
	width := []int{10, 6, 6, 10, 6}
	for _, r := range rows {
		for i, cell := range r {
			width[i] = max(width[i], len(cell))
		}
	}
	for i, r := range rows {
		var b strings.Builder
		for j, cell := range r {
			if j > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%*s", width[j], cell)
		}
		if i > 0 {
			b.WriteString("  " + top.Functions[i-1].Name)
		}
		fmt.Fprintln(w, b.String())
	}
}
