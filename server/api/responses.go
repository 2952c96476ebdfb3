package api

import (
	"github.com/flightrec/flightrec/server/model"
	"github.com/flightrec/flightrec/server/query"
)

// The JSON bodies of the endpoints (docs/api.md). Lists are never null, and
// an empty answer says why in Message.

// FlamegraphResponse is /api/v1/flamegraph's body.
type FlamegraphResponse struct {
	Type string `json:"type"` // the profile type queried
	Unit string `json:"unit"` // of the values: nanoseconds, bytes, count, ...
	query.Flamegraph
	Message string `json:"message,omitempty"`
}

// TopResponse is /api/v1/top's body.
type TopResponse struct {
	Type string `json:"type"`
	Unit string `json:"unit"`
	query.Top
	Message string `json:"message,omitempty"`
}

// SeriesResponse is /api/v1/series's body. Times are Unix milliseconds.
// Steps start at multiples of Step since the epoch, so From is "from"
// rounded down to one.
type SeriesResponse struct {
	Type    string   `json:"type"`
	Unit    string   `json:"unit"`
	From    int64    `json:"from_ms"`
	To      int64    `json:"to_ms"`
	Step    int64    `json:"step_ms"`
	Series  []Series `json:"series"`
	Message string   `json:"message,omitempty"`
}

// Series is one series over time. Each point is [t, v]: t the start of its
// step in Unix milliseconds, v the sum of the values in the step. Steps
// without profiles have no point, so a gap means no data, not zero.
type Series struct {
	Labels map[string]string `json:"labels"`
	Points [][2]int64        `json:"points"`
}

// LabelsResponse is /api/v1/labels's body.
type LabelsResponse struct {
	Names   []string `json:"names"`
	Message string   `json:"message,omitempty"`
}

// LabelValuesResponse is /api/v1/labels/{name}/values's body.
type LabelValuesResponse struct {
	Name    string   `json:"name"`
	Values  []string `json:"values"`
	Message string   `json:"message,omitempty"`
}

// TypesResponse is /api/v1/types's body.
type TypesResponse struct {
	Types   []Type `json:"types"`
	Message string `json:"message,omitempty"`
}

// Type is a profile type: Name is what selectors use, the rest is pprof's
// description of the values.
type Type struct {
	Name       string `json:"name"`
	SampleType string `json:"sample_type"`
	SampleUnit string `json:"sample_unit"`
	PeriodType string `json:"period_type,omitempty"`
	PeriodUnit string `json:"period_unit,omitempty"`
}

func typeOf(t model.Type) Type {
	return Type{Name: t.Name, SampleType: t.SampleType, SampleUnit: t.SampleUnit, PeriodType: t.PeriodType, PeriodUnit: t.PeriodUnit}
}

// unit is what a type's values count, "count" when it was stored without.
func unit(t model.Type) string {
	if t.SampleUnit == "" {
		return "count"
	}
	return t.SampleUnit
}
