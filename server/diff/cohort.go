package diff

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

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
	// CILow, CIHigh: the 95% interval of Delta that the permutation test
	// implies, the shifts of the group it does not reject.
	CILow  float64 `json:"ci_low"`
	CIHigh float64 `json:"ci_high"`
	P      float64 `json:"p"`   // permutation test of Welch's t (docs/diff.md)
	Q      float64 `json:"q"`   // Benjamini–Hochberg over the tested family
	MDE    float64 `json:"mde"` // as Change.MDE, at the permutation critical value
	// Permutations is how many relabellings of the instances P counts: p is
	// at least 1/(Permutations+1). With Exact, they are every labelling.
	Permutations int  `json:"permutations,omitempty"`
	Exact        bool `json:"exact,omitempty"`
	// Tested is false when a group has fewer than the minimum instances:
	// then only the shares (of the groups that have instances) are set.
	Tested      bool `json:"tested"`
	Significant bool `json:"significant"` // Q < alpha

	w            welch     // the observed difference, its spread and df
	group, other []float64 // the shares, tested once the family is known
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
	c.Tested, c.Delta, c.group, c.other = true, c.w.diff, group, other
	return c
}

func mean(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

// adjust runs the permutation tests of the tested contrasts, with as many
// relabellings as the family's size asks for, and sets their q-values and
// significance as one Benjamini–Hochberg family; it returns its size.
func adjust(cs []*Contrast, alpha float64) int {
	var family []*Contrast
	for _, c := range cs {
		if c.Tested {
			family = append(family, c)
		}
	}
	b := permutations(len(family), alpha)
	parallel(len(family), func(i int) { family[i].permute(b, alpha/float64(len(family))) })
	p := make([]float64, len(family))
	for i, c := range family {
		p[i] = c.P
	}
	for i, q := range bhAdjust(p) {
		family[i].Q, family[i].Significant = q, q < alpha
	}
	return len(family)
}

// parallel runs f(0..n-1) on as many goroutines as there are CPUs: a
// family's permutation tests are independent, and each is deterministic.
func parallel(n int, f func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(n, runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for i := range next {
				f(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// permute tests the contrast by relabelling its instances b times (or
// every way, when there are fewer), with the MDE at the level a lone
// finding needs, alpha/m.
func (c *Contrast) permute(b int, level float64) {
	pt := newPermTest(c.group, c.other, b)
	c.P = pt.pValue(0)
	c.CILow, c.CIHigh = pt.interval(0.95, c.w)
	c.MDE = pt.mde(level, DefaultPower, c.w)
	c.Permutations, c.Exact = len(pt.draws), pt.exact
}
