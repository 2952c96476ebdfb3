package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/model"
	"github.com/flightrec/flightrec/server/query"
)

// targetPoints is what the default step aims at: enough for a chart as
// wide as a screen.
const targetPoints = 500

// minStep is the smallest default step: agents send a profile per series
// every 10 s, so finer steps show gaps, not detail.
const minStep = 10 * time.Second

func (a *API) series(ctx context.Context, _ *http.Request, v url.Values) (any, error) {
	s, err := a.parseSelection(v, a.opts.DefaultType)
	if err != nil {
		return nil, err
	}
	by, err := labelNames(v, "by")
	if err != nil {
		return nil, err
	}
	step, err := a.step(v, s)
	if err != nil {
		return nil, err
	}
	// Steps at multiples of step since the epoch keep points in place as a
	// chart's window slides, instead of jittering with "from".
	q := s.Query
	q.Start = time.UnixMilli(q.Start.UnixMilli() / step.Milliseconds() * step.Milliseconds())
	series, err := a.st.SeriesOverTime(ctx, q, step)
	if err != nil {
		return nil, fmt.Errorf("series of %s: %w", s.describe(), err)
	}
	resp := SeriesResponse{Type: s.Type, Unit: "count", From: q.Start.UnixMilli(), To: s.End.UnixMilli(), Step: step.Milliseconds()}
	if v.Has("by") {
		series = groupSeries(series, by)
	}
	resp.Series = encodeSeries(series)
	if len(resp.Series) == 0 {
		resp.Message = a.emptyMessage(ctx, s, "profiles")
		return resp, nil
	}
	typ, err := a.profileType(ctx, s)
	resp.Unit = unit(typ)
	return resp, err
}

// step reads the step, or picks a round one giving at most targetPoints.
func (a *API) step(v url.Values, s selection) (time.Duration, error) {
	span := s.End.Sub(s.Start)
	str := v.Get("step")
	if str == "" {
		return defaultStep(span), nil
	}
	step, err := query.ParseDuration(str)
	if err != nil {
		return 0, badRequest("bad step: %v", err)
	}
	if step < time.Second {
		return 0, badRequest("bad step %q: must be at least 1s", str)
	}
	if n := (span + step - 1) / step; n > time.Duration(a.opts.MaxPoints) {
		return 0, badRequest("step %s over %v gives %d points per series, more than the limit of %d: use a larger step",
			str, span, n, a.opts.MaxPoints)
	}
	return step, nil
}

func defaultStep(span time.Duration) time.Duration {
	want := (span + targetPoints - 1) / targetPoints
	for _, s := range []time.Duration{
		minStep, 15 * time.Second, 30 * time.Second,
		time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
		time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
	} {
		if s >= want {
			return s
		}
	}
	day := 24 * time.Hour
	return (want + day - 1) / day * day
}

// groupSeries sums series with the same values of the by labels, point by
// point. The store answers per series; sums here keep it simple, and the
// series of one type in a range are few enough.
func groupSeries(in []model.Series, by []string) []model.Series {
	type group struct {
		labels labels.Labels
		points map[time.Time]int64
	}
	groups := map[string]*group{}
	for _, s := range in {
		ls := s.Labels.MatchLabels(true, by...)
		key := ls.String()
		g, ok := groups[key]
		if !ok {
			g = &group{labels: ls, points: map[time.Time]int64{}}
			groups[key] = g
		}
		for _, p := range s.Points {
			g.points[p.Time] += p.Value
		}
	}
	out := make([]model.Series, 0, len(groups))
	for _, g := range groups {
		s := model.Series{Labels: g.labels}
		for t, v := range g.points {
			s.Points = append(s.Points, model.Point{Time: t, Value: v})
		}
		slices.SortFunc(s.Points, func(a, b model.Point) int { return a.Time.Compare(b.Time) })
		out = append(out, s)
	}
	return out
}

// encodeSeries converts to the wire form, series sorted by labels.
func encodeSeries(in []model.Series) []Series {
	slices.SortFunc(in, func(a, b model.Series) int { return labels.Compare(a.Labels, b.Labels) })
	out := make([]Series, len(in))
	for i, s := range in {
		out[i] = Series{Labels: s.Labels.Map(), Points: make([][2]int64, len(s.Points))}
		for j, p := range s.Points {
			out[i].Points[j] = [2]int64{p.Time.UnixMilli(), p.Value}
		}
	}
	return out
}
