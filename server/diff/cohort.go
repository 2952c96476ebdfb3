package diff

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/store"
)

// CohortRequest is what explain and bisect read: one selection, split into
// instances, each carrying its values of the cohort labels By.
type CohortRequest struct {
	Query    store.Query
	Function string
	Metric   Metric // "" is Self
	By       []string
	// InstanceBy as in Request: nil is AutoInstance.
	InstanceBy []string
}

// check refuses what cannot be answered, before reading anything.
func (r *CohortRequest) check() error {
	switch {
	case strings.TrimSpace(r.Function) == "":
		return inputf("missing function: the function whose share to test, e.g. runtime.mallocgc")
	case len(r.By) == 0:
		return inputf("empty by: the labels whose values form cohorts, e.g. version,node")
	}
	switch r.Metric {
	case "":
		r.Metric = Self
	case Self, Total:
	default:
		return inputf("bad metric %q: want self or total", r.Metric)
	}
	return nil
}

// member is one instance as the cohort tests see it: its share of the
// function and its value of each cohort label ("" when it has none).
type member struct {
	key    string
	share  float64
	total  int64
	values []string // parallel to the request's By
}

// readMembers merges the selection per instance and cohort values and
// returns the instances. With split, an instance that carries several
// values of a cohort label is one member per value (bisect: its time on
// each version is evidence about that version); without, it is one member
// that goes by the first value in label order (explain; rare in practice).
func readMembers(ctx context.Context, st store.Store, req CohortRequest, split bool) ([]member, error) {
	inst, auto := req.InstanceBy, req.InstanceBy == nil
	if auto {
		inst = autoBy()
	}
	by := slices.Compact(slices.Sorted(slices.Values(slices.Concat(inst, req.By))))
	groups, err := st.MergeBy(ctx, req.Query, by)
	if errors.Is(err, store.ErrUnknownType) {
		groups, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("merge by %s: %w", strings.Join(by, ","), err)
	}
	return members(groups, req, inst, auto, split)
}

// members regroups MergeBy groups into instances and takes each one's
// share of the function.
func members(groups []store.Group, req CohortRequest, inst []string, auto, split bool) ([]member, error) {
	slices.SortFunc(groups, func(a, b store.Group) int { return labels.Compare(a.Labels, b.Labels) })
	values := map[string][]string{}
	keyed := make([]store.Group, 0, len(groups))
	for _, g := range groups {
		key := instanceKey(g.Labels, inst, auto)
		if split {
			key = withCohort(key, g.Labels, req.By)
		}
		k := key.String()
		vs, ok := values[k]
		if !ok {
			vs = make([]string, len(req.By))
			values[k] = vs
		}
		for i, name := range req.By {
			if vs[i] == "" { // the first value, in label order, wins
				vs[i] = g.Labels.Get(name)
			}
		}
		keyed = append(keyed, store.Group{Labels: key, Stacks: g.Stacks})
	}
	s, err := summarize(keyed, false)
	if err != nil {
		return nil, err
	}
	if len(s.instances) == 0 {
		return nil, &EmptyError{Side: "selection"}
	}
	fn := slices.Index(s.names, req.Function)
	if fn < 0 {
		return nil, inputf("function %q: not in any stack of the selection (names as in top: package.Function)", req.Function)
	}
	out := make([]member, len(s.instances))
	for i, in := range s.instances {
		k := in.labels.String()
		out[i] = member{key: k, share: shareOf(in, int32(fn), req.Metric), total: in.total, values: values[k]}
	}
	return out, nil
}

// instanceKey is the labels that tell g's instance apart, as summarize
// decides them for Run.
func instanceKey(ls labels.Labels, inst []string, auto bool) labels.Labels {
	if pod := ls.Get("pod"); auto && pod != "" {
		return labels.FromStrings("pod", pod)
	}
	b := labels.NewScratchBuilder(len(inst))
	for _, n := range inst {
		if v := ls.Get(n); v != "" && (!auto || n != "pod") {
			b.Add(n, v)
		}
	}
	b.Sort()
	return b.Labels()
}

// withCohort adds the cohort labels of ls to key.
func withCohort(key, ls labels.Labels, by []string) labels.Labels {
	b := labels.NewBuilder(key)
	for _, n := range by {
		if v := ls.Get(n); v != "" {
			b.Set(n, v)
		}
	}
	return b.Labels()
}

// shareOf is the instance's self or total share of function fn.
func shareOf(in instance, fn int32, m Metric) float64 {
	j := slices.Index(in.fn, fn)
	if j < 0 {
		return 0
	}
	if m == Total {
		return float64(in.cum[j]) / float64(in.total)
	}
	return float64(in.self[j]) / float64(in.total)
}

// Contrast is one test of the function's share, instances of one group
// against another's: Delta is Share - OtherShare.
type Contrast struct {
	Share      float64 `json:"share"`       // mean over the group's instances
	OtherShare float64 `json:"other_share"` // mean over the other's
	Delta      float64 `json:"delta"`
	CILow      float64 `json:"ci_low"` // 95% Welch interval of Delta
	CIHigh     float64 `json:"ci_high"`
	P          float64 `json:"p"`
	Q          float64 `json:"q"`   // Benjamini–Hochberg over the tested family
	MDE        float64 `json:"mde"` // as Change.MDE
	// Tested is false when a group has fewer than the minimum instances:
	// then only the shares (of the groups that have instances) are set.
	Tested      bool `json:"tested"`
	Significant bool `json:"significant"` // Q < alpha

	w welch // the test, for the MDE once the family's size is known
}

// contrast fills c from the shares of the group and of the other one;
// too few instances on a side leave it untested.
func contrast(group, other []float64, min int) Contrast {
	var c Contrast
	if len(group) > 0 {
		c.Share = mean(group)
	}
	if len(other) > 0 {
		c.OtherShare = mean(other)
	}
	c.Delta = c.Share - c.OtherShare
	if len(group) < min || len(other) < min {
		return c
	}
	c.w = welchTest(other, group)
	c.Tested, c.Delta, c.P = true, c.w.diff, c.w.p
	c.CILow, c.CIHigh = c.w.interval(0.95)
	return c
}

func mean(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

// adjust sets the q-values, significance and MDEs of the tested contrasts
// as one Benjamini–Hochberg family, and returns its size.
func adjust(cs []*Contrast, alpha float64) int {
	var family []*Contrast
	for _, c := range cs {
		if c.Tested {
			family = append(family, c)
		}
	}
	p := make([]float64, len(family))
	for i, c := range family {
		p[i] = c.P
	}
	for i, q := range bhAdjust(p) {
		c := family[i]
		c.Q, c.Significant = q, q < alpha
		c.MDE = c.w.mde(alpha/float64(len(family)), DefaultPower)
	}
	return len(family)
}
