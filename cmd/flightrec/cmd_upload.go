package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

func runUpload(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("upload", e)
	setUsage(fs, e, "flightrec upload [--labels '{service=\"api\"}'] FILE...\n\n"+
		"Sends pprof files (gzipped or not; - reads stdin) to the server, stored as\n"+
		"series with the given labels.")
	var sf serverFlags
	sf.register(fs)
	ls := fs.String("labels", "", "series `labels` in selector syntax: {service=\"api\",version=\"1.2\"}")
	files, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return usagef("missing FILE: the pprof file to upload")
	}
	if err := checkLabels(*ls); err != nil {
		return err
	}
	c, err := sf.client()
	if err != nil {
		return err
	}
	for _, f := range files {
		body, err := readInput(f)
		if err != nil {
			return err
		}
		res, err := c.Ingest(ctx, *ls, body)
		if err != nil {
			return fmt.Errorf("upload %s: %w", f, err)
		}
		fmt.Fprintf(e.stdout, "uploaded %s: %d profiles, %d samples\n", f, res.Profiles, res.Samples)
	}
	return nil
}

// checkLabels catches malformed --labels before the upload: a set of
// name="value" pairs without a profile type, which the file's sample types
// decide.
func checkLabels(s string) error {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	ls, err := parser.NewParser(parser.Options{}).ParseMetric(s)
	if err != nil {
		return usagef(`--labels %s: %v (want e.g. {service="api",version="1.2"})`, s, err)
	}
	seen := map[string]bool{}
	var bad error
	ls.Range(func(l labels.Label) {
		switch {
		case bad != nil:
		case l.Name == labels.MetricName:
			bad = usagef("--labels %s: names profile type %q; types come from the file's sample types", s, l.Value)
		case strings.HasPrefix(l.Name, "__"):
			bad = usagef("--labels %s: label names starting with __ are reserved", s)
		case seen[l.Name]:
			bad = usagef("--labels %s: label %s given twice", s, l.Name)
		}
		seen[l.Name] = true
	})
	return bad
}

func readInput(name string) ([]byte, error) {
	var b []byte
	var err error
	if name == "-" {
		b, err = io.ReadAll(os.Stdin)
	} else {
		b, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return b, nil
}
