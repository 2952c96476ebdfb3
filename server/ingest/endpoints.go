package ingest

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/google/pprof/profile"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/flightrec/flightrec/server/ingest/pprofconv"
	"github.com/flightrec/flightrec/server/ingest/pyroscope"
	"github.com/flightrec/flightrec/server/model"
)

// decodeAgent reads docs/wire.md's request. Every label of the agent's
// samples identifies a process, so none goes through the limiter.
func (h *Handler) decodeAgent(r *http.Request, body []byte, sc *pprofconv.Scratch) (*model.Batch, error) {
	if _, err := query(r); err != nil {
		return nil, err
	}
	key, err := idempotencyKey(r)
	if err != nil {
		return nil, err
	}
	if err := sc.Decode(body, h.Limits.MaxDecompressedBytes); err != nil {
		return nil, err
	}
	profiles, err := h.convert(sc.Convert, pprofconv.Options{})
	if err != nil {
		return nil, err
	}
	return &model.Batch{Profiles: profiles, Key: key}, nil
}

// decodePprof reads a pprof upload whose series labels are in
// ?labels={service="api"}; sample labels add to them within the limiter.
func (h *Handler) decodePprof(r *http.Request, body []byte, sc *pprofconv.Scratch) (*model.Batch, error) {
	q, err := query(r, "labels")
	if err != nil {
		return nil, err
	}
	base, err := parseSelector(q.Get("labels"))
	if err != nil {
		return nil, err
	}
	key, err := idempotencyKey(r)
	if err != nil {
		return nil, err
	}
	if err := sc.Decode(body, h.Limits.MaxDecompressedBytes); err != nil {
		return nil, err
	}
	profiles, err := h.convert(sc.Convert, pprofconv.Options{Labels: base, Filter: h.filter(base)})
	if err != nil {
		return nil, err
	}
	return &model.Batch{Profiles: profiles, Key: key}, nil
}

// parseSelector parses labels= as a PromQL series ({service="api"}): a
// plain label set, names in the legacy charset, no metric name (the pprof
// gives the types). Empty values mean "absent", as in Prometheus.
func parseSelector(s string) (labels.Labels, error) {
	if s == "" {
		return labels.EmptyLabels(), nil
	}
	// UTF-8 names parse, so that the check below can name a bad one
	// ("http.method") instead of the parser pointing at a character.
	ls, err := parser.NewParser(parser.Options{EnableUnquotedUTF8Names: true}).ParseMetric(s)
	if err != nil {
		return labels.EmptyLabels(), pprofconv.Errorf(pprofconv.ErrBadLabels, "parameter labels: %w", err)
	}
	if name, dup := ls.HasDuplicateLabelNames(); dup {
		return labels.EmptyLabels(), pprofconv.Errorf(pprofconv.ErrBadLabels, "parameter labels: label %s given twice", name)
	}
	err = ls.Validate(func(l labels.Label) error {
		switch {
		case l.Name == labels.MetricName:
			return fmt.Errorf("parameter labels names a profile type (%s): types come from the pprof; use {name=\"value\", ...}", l.Value)
		case !pprofconv.ValidLabelName(l.Name):
			return fmt.Errorf("parameter labels: invalid label name %q: use [a-zA-Z_][a-zA-Z0-9_]*", l.Name)
		case pprofconv.ReservedLabelName(l.Name):
			return fmt.Errorf("parameter labels: label name %q is reserved", l.Name)
		case len(l.Value) > maxLabelValue:
			return fmt.Errorf("parameter labels: value of %s is longer than %s", l.Name, pprofconv.FormatBytes(maxLabelValue))
		}
		return nil
	})
	if err != nil {
		return labels.EmptyLabels(), pprofconv.Errorf(pprofconv.ErrBadLabels, "%w", err)
	}
	return ls.WithoutEmpty(), nil
}

// maxLabelValue bounds labels= values as pprofconv bounds sample labels'.
const maxLabelValue = 1 << 10

// decodePyroscope reads Pyroscope's /ingest request (package pyroscope).
func (h *Handler) decodePyroscope(r *http.Request, body []byte, sc *pprofconv.Scratch) (*model.Batch, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, pprofconv.Errorf(errBadRequest, "query: %w", err)
	}
	req, err := pyroscope.ParseRequest(q, r.Header.Get("Content-Type"), body)
	if err != nil {
		return nil, err
	}
	key, err := idempotencyKey(r)
	if err != nil {
		return nil, err
	}
	opt := pprofconv.Options{Labels: req.Labels, Hint: req.Hint, Start: req.From, Filter: h.filter(req.Labels)}
	if !req.From.IsZero() && !req.Until.IsZero() {
		opt.Duration = req.Until.Sub(req.From)
	}
	convert := sc.Convert
	if req.PrevProfile == nil && !pyroscope.AnyCumulative(req.SampleTypes) {
		// No delta to compute (pyroscope-go sends deltas): the fast path.
		if err := sc.Decode(req.Profile, h.Limits.MaxDecompressedBytes); err != nil {
			return nil, err
		}
	} else {
		p, err := h.pyroscopeProfile(req)
		if err != nil {
			return nil, err
		}
		convert = func(opt pprofconv.Options) ([]*model.Profile, pprofconv.Stats, error) {
			return pprofconv.Convert(p, opt)
		}
	}
	profiles, err := h.convert(convert, opt)
	if err != nil {
		return nil, err
	}
	return &model.Batch{Profiles: profiles, Key: key}, nil
}

// pyroscopeProfile decodes the profile and prev_profile within one
// decompression budget and applies sample_type_config's cumulative flags,
// with pprof's Profile (pyroscope.Delta uses its Merge).
func (h *Handler) pyroscopeProfile(req *pyroscope.Request) (*profile.Profile, error) {
	budget := h.Limits.MaxDecompressedBytes
	raw, err := pprofconv.Inflate(req.Profile, budget)
	if err != nil {
		return nil, err
	}
	p, err := pprofconv.Parse(raw)
	if err != nil {
		return nil, err
	}
	var prev *profile.Profile
	if req.PrevProfile != nil {
		if prev, err = pprofconv.Decode(req.PrevProfile, budget-int64(len(raw))); err != nil {
			return nil, fmt.Errorf("prev_profile: %w", err)
		}
	}
	p, dropped, err := pyroscope.Delta(p, prev, req.SampleTypes)
	if err != nil {
		return nil, err
	}
	if len(dropped) > 0 {
		h.Logger.Warn("ingest: cumulative sample types sent without prev_profile are not stored",
			"app", req.Name.App, "types", dropped)
	}
	return p, nil
}

// filter puts sample labels under the sender's base labels through the
// limiter.
func (h *Handler) filter(base labels.Labels) pprofconv.SampleFilter {
	return func(typ string, sample labels.Labels) labels.Labels {
		return h.Limiter.Admit(typ, base, sample)
	}
}

// convert converts a profile with convert (Scratch.Convert or Convert)
// and counts the sample labels it dropped.
func (h *Handler) convert(convert func(pprofconv.Options) ([]*model.Profile, pprofconv.Stats, error), opt pprofconv.Options) ([]*model.Profile, error) {
	opt.Limits = h.Limits.Profile
	opt.Now = h.Now()
	out, stats, err := convert(opt)
	if err != nil {
		return nil, err
	}
	h.m.dropped.WithLabelValues(dropConflict).Add(float64(stats.Conflicts))
	h.m.dropped.WithLabelValues(dropReserved).Add(float64(stats.Reserved))
	return out, nil
}
