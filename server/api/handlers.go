package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/flightrec/flightrec/server/model"
	"github.com/flightrec/flightrec/server/query"
	"github.com/flightrec/flightrec/server/store"
)

// MessageHeader carries the empty-result message of pprof downloads, whose
// body cannot.
const MessageHeader = "X-Flightrec-Message"

func (a *API) endpoints() []endpoint {
	with := func(extra ...string) []string { return append(slices.Clone(stackParams), extra...) }
	rangeParams := []string{"query", "from", "to", "type"}
	return []endpoint{
		// pprof adds "seconds" to URLs when run with -seconds: taken, ignored.
		{"pprof", PprofPath, with("seconds"), a.pprof},
		{"flamegraph", FlamegraphPath, with("max_nodes"), a.flamegraph},
		{"top", TopPath, with("limit", "order"), a.top},
		{"series", SeriesPath, with("step", "by"), a.series},
		{"labels", LabelsPath, rangeParams, a.labels},
		{"label_values", LabelValuesPath, rangeParams, a.labelValues},
		{"types", TypesPath, []string{"from", "to"}, a.listTypes},
		{"diff", DiffPath, diffParams(), a.diff},
		{"explain", ExplainPath, cohortParams(), a.explain},
		{"bisect", BisectPath, cohortParams(), a.bisect},
	}
}

func (a *API) pprof(ctx context.Context, _ *http.Request, v url.Values) (any, error) {
	s, err := a.parseSelection(v, a.opts.DefaultType)
	if err != nil {
		return nil, err
	}
	set, typ, msg, err := a.merge(ctx, s)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := query.Pprof(set, typ, s.Start, s.End).Write(&buf); err != nil {
		return nil, fmt.Errorf("encode pprof: %w", err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", `attachment; filename="profile.pb.gz"`)
	if msg != "" {
		h.Set(MessageHeader, msg)
	}
	return &rawReply{buf.Bytes(), h}, nil
}

func (a *API) flamegraph(ctx context.Context, _ *http.Request, v url.Values) (any, error) {
	s, err := a.parseSelection(v, a.opts.DefaultType)
	if err != nil {
		return nil, err
	}
	maxNodes, err := intParam(v, "max_nodes", a.opts.MaxNodes, 2, 1_000_000)
	if err != nil {
		return nil, err
	}
	set, typ, msg, err := a.merge(ctx, s)
	if err != nil {
		return nil, err
	}
	return FlamegraphResponse{Type: s.Type, Unit: unit(typ), Flamegraph: *query.NewFlamegraph(set, maxNodes), Message: msg}, nil
}

func (a *API) top(ctx context.Context, _ *http.Request, v url.Values) (any, error) {
	s, err := a.parseSelection(v, a.opts.DefaultType)
	if err != nil {
		return nil, err
	}
	limit, err := intParam(v, "limit", 50, 0, 1_000_000)
	if err != nil {
		return nil, err
	}
	order, err := query.ParseOrder(v.Get("order"))
	if err != nil {
		return nil, badRequest("%v", err)
	}
	set, typ, msg, err := a.merge(ctx, s)
	if err != nil {
		return nil, err
	}
	return TopResponse{Type: s.Type, Unit: unit(typ), Top: *query.NewTop(set, order, limit), Message: msg}, nil
}

// merge merges the selection's stacks and finds its type's description;
// an empty result comes with a message saying why.
func (a *API) merge(ctx context.Context, s selection) (*model.StackSet, model.Type, string, error) {
	set, err := a.st.Merge(ctx, s.Query)
	if errors.Is(err, store.ErrUnknownType) {
		set, err = &model.StackSet{}, nil
	}
	if err != nil {
		return nil, model.Type{}, "", fmt.Errorf("merge %s: %w", s.describe(), err)
	}
	if len(set.Stacks) == 0 {
		return set, model.Type{Name: s.Type}, a.emptyMessage(ctx, s, "profiles"), nil
	}
	typ, err := a.profileType(ctx, s)
	return set, typ, "", err
}

// profileType describes the selection's type, which has data in its range.
func (a *API) profileType(ctx context.Context, s selection) (model.Type, error) {
	a.typesMu.Lock()
	t, ok := a.types[s.Type]
	a.typesMu.Unlock()
	if ok {
		return t, nil
	}
	types, err := a.st.Types(ctx, s.Start, s.End)
	if err != nil {
		return model.Type{}, fmt.Errorf("profile types: %w", err)
	}
	a.typesMu.Lock()
	defer a.typesMu.Unlock()
	for _, t := range types {
		a.types[t.Name] = t
	}
	if t, ok := a.types[s.Type]; ok {
		return t, nil
	}
	return model.Type{Name: s.Type}, nil
}

// emptyMessage says that nothing matched and, when the type is the reason,
// which types do have data: the usual mistake is the default type.
func (a *API) emptyMessage(ctx context.Context, s selection, what string) string {
	msg := fmt.Sprintf("no %s match %s", what, s.describe())
	if s.Type == "" {
		return msg
	}
	types, err := a.st.Types(ctx, s.Start, s.End)
	if err != nil {
		return msg
	}
	var names []string
	for _, t := range types {
		if t.Name == s.Type {
			return msg
		}
		names = append(names, t.Name)
	}
	if len(names) == 0 {
		return msg + "; there are no profiles at all in the range"
	}
	return fmt.Sprintf("%s; there are no %s profiles in the range, types with data: %s", msg, s.Type, strings.Join(names, ", "))
}
