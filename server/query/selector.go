// Package query parses selectors and times, and turns merged stacks into
// pprof profiles, flamegraph trees and top-function tables.
package query

import (
	"errors"
	"fmt"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/flightrec/flightrec/server/model"
)

// Selector is a parsed series selector: cpu{service="api"}.
type Selector struct {
	// Type is the profile type the selector names, "" when it names none
	// ({service="api"}): the caller then applies its default.
	Type string
	// Matchers are the label matchers, without the type's __name__ matcher.
	Matchers []*labels.Matcher
}

// String formats the selector back into selector syntax.
func (s Selector) String() string {
	parts := make([]string, len(s.Matchers))
	for i, m := range s.Matchers {
		parts[i] = m.String()
	}
	return s.Type + "{" + strings.Join(parts, ",") + "}"
}

// ParseSelector parses a Prometheus metric selector whose metric name is the
// profile type. The name may be given as a __name__ matcher, but only an
// equality one: a query merges stacks of one type, whose values would not
// add up across types.
func ParseSelector(s string) (Selector, error) {
	if strings.TrimSpace(s) == "" {
		return Selector{}, errors.New(`invalid selector: empty (want e.g. cpu{service="api"} or {service="api"})`)
	}
	ms, err := parser.NewParser(parser.Options{}).ParseMetricSelector(s)
	if err != nil {
		return Selector{}, fmt.Errorf("invalid selector %q: %w", s, err)
	}
	var sel Selector
	named := false
	for _, m := range ms {
		if m.Name != model.TypeLabel {
			sel.Matchers = append(sel.Matchers, m)
			continue
		}
		switch {
		case named:
			return Selector{}, fmt.Errorf("invalid selector %q: the profile type is given twice", s)
		case m.Type == labels.MatchRegexp || m.Type == labels.MatchNotRegexp:
			return Selector{}, fmt.Errorf("invalid selector %q: profile type must be a plain name, got a regex", s)
		case m.Type != labels.MatchEqual:
			return Selector{}, fmt.Errorf("invalid selector %q: profile type must be a plain name, got %s", s, m.Type)
		case m.Value == "":
			return Selector{}, fmt.Errorf("invalid selector %q: profile type is empty", s)
		}
		named = true
		sel.Type = m.Value
	}
	return sel, nil
}
