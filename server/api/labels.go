package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/flightrec/flightrec/server/model"
	"github.com/flightrec/flightrec/server/store"
)

// labelQuery reads the selection label listings narrow to: unlike the stack
// endpoints, no type means all types.
func (a *API) labelQuery(v url.Values) (selection, store.LabelQuery, error) {
	s, err := a.parseSelection(v, "")
	lq := store.LabelQuery{Type: s.Type, Matchers: s.Matchers, Start: s.Start, End: s.End}
	return s, lq, err
}

func (a *API) labels(ctx context.Context, _ *http.Request, v url.Values) (any, error) {
	s, lq, err := a.labelQuery(v)
	if err != nil {
		return nil, err
	}
	names, err := a.st.LabelNames(ctx, lq)
	if err != nil {
		return nil, fmt.Errorf("label names of %s: %w", s.describe(), err)
	}
	resp := LabelsResponse{Names: nonNil(names)}
	if len(names) == 0 {
		resp.Message = a.emptyMessage(ctx, s, "series")
	}
	return resp, nil
}

func (a *API) labelValues(ctx context.Context, r *http.Request, v url.Values) (any, error) {
	name := r.PathValue("name")
	if name != model.TypeLabel && !validLabelName(name) {
		return nil, badRequest("bad label name %q", name)
	}
	s, lq, err := a.labelQuery(v)
	if err != nil {
		return nil, err
	}
	var values []string
	if name == model.TypeLabel {
		values, err = a.typeNames(ctx, lq)
	} else {
		values, err = a.st.LabelValues(ctx, name, lq)
	}
	if err != nil {
		return nil, fmt.Errorf("values of %s for %s: %w", name, s.describe(), err)
	}
	resp := LabelValuesResponse{Name: name, Values: nonNil(values)}
	if len(values) == 0 {
		what := "series"
		if name != model.TypeLabel {
			what = "series with label " + name
		}
		resp.Message = a.emptyMessage(ctx, s, what)
	}
	return resp, nil
}

// typeNames answers values of __name__, the profile types, for UIs that
// complete selectors the Prometheus way: the types with series matching lq.
func (a *API) typeNames(ctx context.Context, lq store.LabelQuery) ([]string, error) {
	types, err := a.st.Types(ctx, lq.Start, lq.End)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range types {
		if lq.Type != "" && t.Name != lq.Type {
			continue
		}
		if len(lq.Matchers) > 0 {
			series, err := a.st.Series(ctx, store.Query{Type: t.Name, Matchers: lq.Matchers, Start: lq.Start, End: lq.End})
			if err != nil {
				return nil, err
			}
			if len(series) == 0 {
				continue
			}
		}
		out = append(out, t.Name)
	}
	return out, nil
}

func (a *API) listTypes(ctx context.Context, _ *http.Request, v url.Values) (any, error) {
	start, end, err := a.parseRange(v)
	if err != nil {
		return nil, err
	}
	types, err := a.st.Types(ctx, start, end)
	if err != nil {
		return nil, fmt.Errorf("profile types: %w", err)
	}
	resp := TypesResponse{Types: make([]Type, len(types))}
	for i, t := range types {
		resp.Types[i] = typeOf(t)
	}
	if len(types) == 0 {
		resp.Message = fmt.Sprintf("no profiles from %s to %s", formatTime(start), formatTime(end))
	}
	return resp, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
