package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/flightrec/flightrec/server/diff"
	"github.com/flightrec/flightrec/server/query"
	"github.com/flightrec/flightrec/server/store"
)

// DiffPath compares a baseline and a target selection function by function
// across instances (docs/diff.md).
const DiffPath = "/api/v1/diff"

// diffParams are what DiffPath takes: base_from and base_to default to from
// and to, for a baseline over another range (before a deploy).
func diffParams() []string {
	return []string{"base", "target", "from", "to", "base_from", "base_to", "type", "instance_by", "fail_on"}
}

// DiffResponse is /api/v1/diff's body: the comparison and the gate's
// decision on it.
type DiffResponse struct {
	Type string `json:"type"`
	Unit string `json:"unit"`
	diff.Result
	Gate DiffGate `json:"gate"`
}

// DiffGate is what fail_on decided. Failed is false for inconclusive
// diffs: the caller tells them apart by status.
type DiffGate struct {
	FailOn  string        `json:"fail_on"`
	Failed  bool          `json:"failed"`
	Failing []diff.Change `json:"failing"`
}

func (a *API) diff(ctx context.Context, _ *http.Request, v url.Values) (any, error) {
	req, err := a.parseDiff(v)
	if err != nil {
		return nil, err
	}
	gate, err := diff.ParseGate(v.Get("fail_on"))
	if err != nil {
		return nil, badRequest("%v", err)
	}
	res, err := diff.Run(ctx, a.st, req, diff.Options{})
	if err != nil {
		return nil, a.diffError(ctx, req, v, err)
	}
	typ, err := a.profileType(ctx, selection{Query: req.Target})
	if err != nil {
		return nil, err
	}
	failing := gate.Failing(res)
	return DiffResponse{Type: req.Target.Type, Unit: unit(typ), Result: *res,
		Gate: DiffGate{FailOn: gate.String(), Failed: len(failing) > 0, Failing: failing}}, nil
}

// diffError makes the caller's mistakes 400s, saying of an empty side why
// nothing matched.
func (a *API) diffError(ctx context.Context, req diff.Request, v url.Values, err error) error {
	var empty *diff.EmptyError
	switch {
	case errors.As(err, &empty):
		s := selection{Query: req.Base, selector: v.Get("base")}
		if empty.Side == "target" {
			s = selection{Query: req.Target, selector: v.Get("target")}
		}
		return badRequest("%s: %s", empty.Side, a.emptyMessage(ctx, s, "profiles"))
	case errors.Is(err, diff.ErrInput):
		return badRequest("%v", err)
	}
	return fmt.Errorf("diff: %w", err)
}

// parseDiff reads both selections. A side whose selector names no type
// takes the type parameter, else the other side's, else the default; two
// different types are refused by diff.Run.
func (a *API) parseDiff(v url.Values) (diff.Request, error) {
	var req diff.Request
	var sels [2]query.Selector
	for i, name := range []string{"base", "target"} {
		s := v.Get(name)
		if s == "" {
			return req, badRequest(`missing %s: a selector, e.g. cpu{service="api",track="%s"}`, name, []string{"baseline", "canary"}[i])
		}
		sel, err := query.ParseSelector(s)
		if err != nil {
			return req, badRequest("bad %s: %v", name, err)
		}
		sels[i] = sel
	}
	typ := v.Get("type")
	if typ != "" && !validName(typ) {
		return req, badRequest("bad type %q: want a name like cpu or alloc_space", typ)
	}
	for i := range sels {
		if sels[i].Type == "" {
			sels[i].Type = firstOf(typ, sels[1-i].Type, a.opts.DefaultType)
		}
	}
	var err error
	if req.Target, err = a.diffRange(sels[1], v.Get("from"), v.Get("to")); err != nil {
		return req, err
	}
	if req.Base, err = a.diffRange(sels[0], firstOf(v.Get("base_from"), v.Get("from")), firstOf(v.Get("base_to"), v.Get("to"))); err != nil {
		return req, fmt.Errorf("base range: %w", err)
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

// diffRange is a store query of sel over from and to as parseRange reads
// them.
func (a *API) diffRange(sel query.Selector, from, to string) (store.Query, error) {
	rv := url.Values{}
	if from != "" {
		rv.Set("from", from)
	}
	if to != "" {
		rv.Set("to", to)
	}
	start, end, err := a.parseRange(rv)
	return store.Query{Type: sel.Type, Matchers: sel.Matchers, Start: start, End: end}, err
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
