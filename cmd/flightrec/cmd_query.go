package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/google/pprof/profile"
)

func runQuery(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("query", e)
	setUsage(fs, e, "flightrec query SELECTOR [-o FILE] [--from -1h] [--to now] [--type cpu]\n\n"+
		"Downloads the profiles SELECTOR matches, merged, as a gzipped pprof file\n"+
		"for go tool pprof.")
	var sf serverFlags
	var rf rangeFlags
	sf.register(fs)
	rf.register(fs, "cpu", "profile `type` when SELECTOR names none")
	out := fs.String("o", "profile.pb.gz", "write the profile to `FILE` (- for stdout)")
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
	c, err := sf.client()
	if err != nil {
		return err
	}
	data, msg, err := c.FetchPprof(ctx, sel, rf.from, rf.to, rf.typ)
	if err != nil {
		return err
	}
	if *out == "-" {
		_, err = e.stdout.Write(data)
	} else {
		err = os.WriteFile(*out, data, 0o644)
	}
	if err != nil {
		return fmt.Errorf("write profile: %w", err)
	}
	fmt.Fprintln(e.stderr, summary(*out, data, msg))
	return nil
}

// summary describes a downloaded profile in one line.
func summary(out string, data []byte, msg string) string {
	if out == "-" {
		out = "stdout"
	}
	p, err := profile.ParseData(data)
	if err != nil || len(p.SampleType) == 0 {
		return fmt.Sprintf("wrote %s (%d bytes)", out, len(data))
	}
	if len(p.Sample) == 0 {
		return fmt.Sprintf("wrote %s: empty profile: %s", out, msg)
	}
	var total int64
	for _, s := range p.Sample {
		total += s.Value[0]
	}
	st := p.SampleType[0]
	start := time.Unix(0, p.TimeNanos).UTC()
	return fmt.Sprintf("wrote %s: %d samples, %s %s from %s to %s", out, len(p.Sample), formatValue(total, st.Unit), st.Type,
		start.Format(time.RFC3339), start.Add(time.Duration(p.DurationNanos)).Format(time.RFC3339))
}
