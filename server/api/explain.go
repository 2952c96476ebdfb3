package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/flightrec/flightrec/server/diff"
)

// ExplainPath finds the cohort of instances (a version, a node, a zone)
// whose share of one function differs from the others' (docs/diff.md).
const ExplainPath = "/api/v1/explain"

// cohortParams are what ExplainPath and BisectPath take. type is the
// metric, self or total, as in diff's rules: the profile type comes from
// the selector, else the server's default.
func cohortParams() []string {
	return []string{"query", "function", "by", "from", "to", "type", "instance_by"}
}

// ExplainResponse is /api/v1/explain's body.
type ExplainResponse struct {
	Type string `json:"type"`
	Unit string `json:"unit"`
	diff.ExplainResult
}

func (a *API) explain(ctx context.Context, _ *http.Request, v url.Values) (any, error) {
	req, err := a.parseCohort(v)
	if err != nil {
		return nil, err
	}
	res, err := diff.Explain(ctx, a.st, req.CohortRequest, diff.Options{})
	if err != nil {
		return nil, a.cohortError(ctx, req, err)
	}
	typ, err := a.profileType(ctx, req.selection)
	if err != nil {
		return nil, err
	}
	return ExplainResponse{Type: req.Query.Type, Unit: unit(typ), ExplainResult: *res}, nil
}

// cohortRequest is a parsed explain or bisect request and its selection,
// for messages.
type cohortRequest struct {
	diff.CohortRequest
	selection selection
}

// parseCohort reads the parameters explain and bisect share.
func (a *API) parseCohort(v url.Values) (cohortRequest, error) {
	var req cohortRequest
	rv := cloneValues(v)
	rv.Del("type") // the metric here, not a profile type
	s, err := a.parseSelection(rv, a.opts.DefaultType)
	if err != nil {
		return req, err
	}
	req.selection, req.Query = s, s.Query
	if req.Function = v.Get("function"); req.Function == "" {
		return req, badRequest("missing function: the function whose share to test, e.g. runtime.mallocgc")
	}
	switch m := diff.Metric(v.Get("type")); m {
	case "", diff.Self, diff.Total:
		req.Metric = m
	default:
		return req, badRequest("bad type %q: want self or total, the share to test (the profile type goes in the query, e.g. cpu{...})", m)
	}
	if req.By, err = labelNames(v, "by"); err != nil {
		return req, err
	}
	if len(req.By) == 0 {
		return req, badRequest("missing by: comma-separated labels whose values form cohorts, e.g. version,node")
	}
	if v.Has("instance_by") {
		if req.InstanceBy, err = labelNames(v, "instance_by"); err != nil {
			return req, err
		}
		if len(req.InstanceBy) == 0 {
			return req, badRequest("bad instance_by: empty (omit it for pod, else pid and node)")
		}
	}
	return req, nil
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = vs
	}
	return out
}

// cohortError makes the caller's mistakes 400s.
func (a *API) cohortError(ctx context.Context, req cohortRequest, err error) error {
	var empty *diff.EmptyError
	switch {
	case errors.As(err, &empty):
		return badRequest("%s", a.emptyMessage(ctx, req.selection, "profiles"))
	case errors.Is(err, diff.ErrInput):
		return badRequest("%v", err)
	}
	return fmt.Errorf("cohorts of %s: %w", req.selection.describe(), err)
}
