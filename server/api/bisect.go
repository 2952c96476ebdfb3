package api

import (
	"context"
	"net/http"
	"net/url"

	"github.com/flightrec/flightrec/server/diff"
)

// BisectPath finds the version, in the order versions were first seen, at
// which one function's share changed (docs/diff.md).
const BisectPath = "/api/v1/bisect"

// BisectResponse is /api/v1/bisect's body.
type BisectResponse struct {
	Type string `json:"type"`
	Unit string `json:"unit"`
	diff.BisectResult
}

func (a *API) bisect(ctx context.Context, _ *http.Request, v url.Values) (any, error) {
	req, err := a.parseCohort(v)
	if err != nil {
		return nil, err
	}
	res, err := diff.Bisect(ctx, a.st, req.CohortRequest, diff.Options{})
	if err != nil {
		return nil, a.cohortError(ctx, req, err)
	}
	typ, err := a.profileType(ctx, req.selection)
	if err != nil {
		return nil, err
	}
	return BisectResponse{Type: req.Query.Type, Unit: unit(typ), BisectResult: *res}, nil
}
