package api

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/flightrec/flightrec/server/query"
	"github.com/flightrec/flightrec/server/store"
)

// Parameters the stack endpoints share.
var stackParams = []string{"query", "from", "to", "type"}

// selection is a parsed query, from, to and type.
type selection struct {
	store.Query
	selector string // as given, for messages
}

// parseSelection reads the selector and range; defaultType applies when
// the selector names no type and the request has no type parameter.
func (a *API) parseSelection(v url.Values, defaultType string) (selection, error) {
	s := selection{selector: v.Get("query")}
	if s.selector == "" {
		s.selector = "{}"
	}
	sel, err := query.ParseSelector(s.selector)
	if err != nil {
		return s, badRequest("bad query: %v", err)
	}
	s.Type, s.Matchers = sel.Type, sel.Matchers
	if s.Type == "" {
		s.Type = v.Get("type")
		if s.Type == "" {
			s.Type = defaultType
		}
	}
	if s.Type != "" && !validName(s.Type) {
		return s, badRequest("bad type %q: want a name like cpu or alloc_space", s.Type)
	}
	s.Start, s.End, err = a.parseRange(v)
	return s, err
}

// parseRange reads from and to: by default the last DefaultRange.
func (a *API) parseRange(v url.Values) (time.Time, time.Time, error) {
	now := a.opts.Now()
	end := now
	if to := v.Get("to"); to != "" {
		t, err := query.ParseTime(to, now)
		if err != nil {
			return time.Time{}, time.Time{}, badRequest("bad to: %v", err)
		}
		end = t
	}
	start := end.Add(-a.opts.DefaultRange)
	if from := v.Get("from"); from != "" {
		t, err := query.ParseTime(from, now)
		if err != nil {
			return time.Time{}, time.Time{}, badRequest("bad from: %v", err)
		}
		start = t
	}
	if !start.Before(end) {
		return time.Time{}, time.Time{}, badRequest("from (%s) must be before to (%s)", formatTime(start), formatTime(end))
	}
	if a.opts.MaxRange > 0 && end.Sub(start) > a.opts.MaxRange {
		return time.Time{}, time.Time{}, badRequest("range from %s to %s is %v, longer than the server's limit of %v",
			formatTime(start), formatTime(end), end.Sub(start), a.opts.MaxRange)
	}
	return start, end, nil
}

// intParam reads an integer parameter in [lo, hi], def when absent.
func intParam(v url.Values, name string, def, lo, hi int) (int, error) {
	s := v.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, badRequest("bad %s %q: want an integer from %d to %d", name, s, lo, hi)
	}
	return n, nil
}

// labelNames reads a comma-separated list of label names.
func labelNames(v url.Values, param string) ([]string, error) {
	var out []string
	for _, n := range strings.Split(v.Get(param), ",") {
		if n = strings.TrimSpace(n); n == "" {
			continue
		}
		if !validLabelName(n) {
			return nil, badRequest("bad %s: %q is not a label name", param, n)
		}
		out = append(out, n)
	}
	return out, nil
}

// The store keeps legacy Prometheus names, so these are all names can be.
var (
	nameRE      = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

func validName(s string) bool      { return nameRE.MatchString(s) }
func validLabelName(s string) bool { return labelNameRE.MatchString(s) }

// formatTime prints times at the store's precision, milliseconds.
func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.999Z07:00") }

// describe names a selection in messages: cpu{service="api"} from … to ….
func (s selection) describe() string {
	sel := query.Selector{Type: s.Type, Matchers: s.Matchers}
	return fmt.Sprintf("%s from %s to %s", sel, formatTime(s.Start), formatTime(s.End))
}
