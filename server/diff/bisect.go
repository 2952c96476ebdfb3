package diff

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/flightrec/flightrec/server/store"
)

// BisectResult says at which version, in the order versions were first
// seen, the function's share changed (docs/diff.md).
type BisectResult struct {
	Status     Status      `json:"status"`
	Message    string      `json:"message,omitempty"`
	Function   string      `json:"function"`
	Metric     Metric      `json:"metric"`
	Label      string      `json:"by"`
	InstanceBy string      `json:"instance_by"`
	Selection  SideSummary `json:"selection"`
	Alpha      float64     `json:"alpha"`
	Tested     int         `json:"tested"` // size of the BH family
	// FirstSeenStep is the resolution of the first-seen times.
	FirstSeenStep int64        `json:"first_seen_step_ms"`
	Versions      []Version    `json:"versions"` // by first-seen time
	Steps         []BisectStep `json:"steps"`    // consecutive versions
	// Changed is the first step with a significant change; null: none.
	Changed *BisectStep `json:"changed"`
}

// Version is one value of the label, with its instances' mean share.
type Version struct {
	Value     string  `json:"value"`
	FirstSeen int64   `json:"first_seen_ms"` // Unix ms, at FirstSeenStep
	Instances int     `json:"instances"`
	Share     float64 `json:"share"`
}

// BisectStep tests version To against the version before it, From: Share
// is To's, OtherShare From's.
type BisectStep struct {
	From string `json:"from"`
	To   string `json:"to"`
	Contrast
}

// firstSeenPoints bounds the points per series the first-seen read asks
// for, and so sets its resolution: an hour gives 3.6 s.
const firstSeenPoints = 1000

// Bisect orders the values of the one label in req.By by when each was
// first seen and tests each against the one before.
func Bisect(ctx context.Context, st store.Store, req CohortRequest, opts Options) (*BisectResult, error) {
	if err := req.check(); err != nil {
		return nil, err
	}
	if len(req.By) != 1 {
		return nil, inputf("bad by %q: bisect orders the values of one label, e.g. version", req.By)
	}
	ms, err := readMembers(ctx, st, req, true)
	if err != nil {
		return nil, err
	}
	step := firstSeenStep(req.Query)
	seen, err := firstSeen(ctx, st, req.Query, req.By[0], step)
	if err != nil {
		return nil, err
	}
	res := bisect(ms, seen, opts)
	res.Function, res.Metric, res.Label = req.Function, req.Metric, req.By[0]
	res.InstanceBy = instanceByName(req.InstanceBy)
	res.FirstSeenStep = step.Milliseconds()
	res.Selection = membersSummary(ms)
	describe(&res.Selection, req.Query)
	return res, nil
}

func firstSeenStep(q store.Query) time.Duration {
	return max(q.End.Sub(q.Start)/firstSeenPoints, time.Millisecond).Truncate(time.Millisecond)
}

// firstSeen is, per value of label, the start of the first step with data
// of a series carrying it. SeriesOverTime gives each series' totals per
// step, which is all first-seen needs: the store has no per-value minimum
// time, and a MergeBy per window would read every stack.
func firstSeen(ctx context.Context, st store.Store, q store.Query, label string, step time.Duration) (map[string]time.Time, error) {
	series, err := st.SeriesOverTime(ctx, q, step)
	if errors.Is(err, store.ErrUnknownType) {
		series, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("first seen of %s: %w", label, err)
	}
	out := map[string]time.Time{}
	for _, s := range series {
		v := s.Labels.Get(label)
		for _, p := range s.Points {
			if t, ok := out[v]; v != "" && p.Value > 0 && (!ok || p.Time.Before(t)) {
				out[v] = p.Time
			}
		}
	}
	return out, nil
}

// bisect tests consecutive versions; the label is each member's only
// cohort value.
func bisect(ms []member, seen map[string]time.Time, opts Options) *BisectResult {
	opts.defaults()
	res := &BisectResult{Status: StatusOK, Alpha: opts.Alpha, Versions: []Version{}, Steps: []BisectStep{}}
	shares := map[string][]float64{}
	for _, m := range ms {
		if v := m.values[0]; v != "" {
			shares[v] = append(shares[v], m.share)
		}
	}
	for v, sh := range shares {
		res.Versions = append(res.Versions, Version{Value: v, FirstSeen: msOf(seen, v), Instances: len(sh), Share: mean(sh)})
	}
	// Values never seen over time (none, with a consistent store) go last.
	slices.SortFunc(res.Versions, func(a, b Version) int {
		return cmp.Or(cmp.Compare(boolInt(a.FirstSeen == 0), boolInt(b.FirstSeen == 0)), cmp.Compare(a.FirstSeen, b.FirstSeen), cmp.Compare(a.Value, b.Value))
	})
	for i := 1; i < len(res.Versions); i++ {
		from, to := res.Versions[i-1].Value, res.Versions[i].Value
		res.Steps = append(res.Steps, BisectStep{From: from, To: to, Contrast: contrast(shares[to], shares[from], opts.MinInstances)})
	}
	ptrs := make([]*Contrast, len(res.Steps))
	for i := range res.Steps {
		ptrs[i] = &res.Steps[i].Contrast
	}
	res.Tested = adjust(ptrs, opts.Alpha)
	for i := range res.Steps {
		if res.Steps[i].Significant {
			res.Changed = &res.Steps[i]
			break
		}
	}
	if res.Tested == 0 {
		res.Status = StatusInconclusive
		res.Message = fmt.Sprintf("inconclusive: no two consecutive of %d values have ≥ %d instances each "+
			"(the test compares instances: widen the range or the selector, or check instance_by)", len(res.Versions), opts.MinInstances)
	}
	return res
}

// msOf is v's first-seen time in Unix ms, 0 when unknown.
func msOf(seen map[string]time.Time, v string) int64 {
	t, ok := seen[v]
	if !ok {
		return 0
	}
	return t.UnixMilli()
}
