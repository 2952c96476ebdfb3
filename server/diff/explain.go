package diff

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/flightrec/flightrec/server/store"
)

// ExplainResult says which cohort of instances, if any, spends a different
// share in one function than the rest of the selection (docs/diff.md).
type ExplainResult struct {
	Status     Status       `json:"status"`
	Message    string       `json:"message,omitempty"`
	Function   string       `json:"function"`
	Metric     Metric       `json:"metric"`
	By         []string     `json:"by"`
	InstanceBy string       `json:"instance_by"`
	Selection  SideSummary  `json:"selection"`
	Alpha      float64      `json:"alpha"`
	Tested     int          `json:"tested"`      // size of the BH family
	Found      int          `json:"significant"` // cohorts with q < alpha
	Cohorts    []CohortTest `json:"cohorts"`
}

// CohortTest is one cohort, label=value, against the other instances.
type CohortTest struct {
	Label     string `json:"label"`
	Value     string `json:"value"`
	Instances int    `json:"instances"`
	Others    int    `json:"others"`
	Contrast
	// Mirror marks the second value of a label with exactly two, held by
	// every instance: its test is the first's with the sign flipped,
	// counted once in the family.
	Mirror bool `json:"mirror,omitempty"`
}

// Explain tests, for each label of req.By and each of its values, the
// function's share in the instances with that value against all others.
func Explain(ctx context.Context, st store.Store, req CohortRequest, opts Options) (*ExplainResult, error) {
	if err := req.check(); err != nil {
		return nil, err
	}
	ms, err := readMembers(ctx, st, req, false)
	if err != nil {
		return nil, err
	}
	res := explain(ms, req.By, opts)
	res.Function, res.Metric, res.By = req.Function, req.Metric, req.By
	res.InstanceBy = instanceByName(req.InstanceBy)
	res.Selection = membersSummary(ms)
	describe(&res.Selection, req.Query)
	return res, nil
}

// explain runs the cohort tests on the members.
func explain(ms []member, by []string, opts Options) *ExplainResult {
	opts.defaults()
	res := &ExplainResult{Status: StatusOK, Alpha: opts.Alpha, Cohorts: []CohortTest{}}
	for i, label := range by {
		res.Cohorts = append(res.Cohorts, labelCohorts(ms, i, label, opts.MinInstances)...)
	}
	ptrs := make([]*Contrast, len(res.Cohorts))
	for i := range res.Cohorts {
		ptrs[i] = &res.Cohorts[i].Contrast
	}
	res.Tested = adjust(ptrs, opts.Alpha)
	mirror(res.Cohorts)
	for _, c := range res.Cohorts {
		res.Found += boolInt(c.Significant)
	}
	rankCohorts(res.Cohorts)
	if res.Tested == 0 {
		res.Status = StatusInconclusive
		res.Message = fmt.Sprintf("inconclusive: no cohort of %s has ≥ %d instances in it and ≥ %d outside it, among %d instances "+
			"(the test compares instances: widen the range or the selector, or check instance_by)",
			strings.Join(by, ", "), opts.MinInstances, opts.MinInstances, len(ms))
	}
	return res
}

// labelCohorts tests every value of the label'th cohort label.
func labelCohorts(ms []member, label int, name string, min int) []CohortTest {
	var values []string
	held := 0
	for _, m := range ms {
		if v := m.values[label]; v != "" {
			values = append(values, v)
			held++
		}
	}
	slices.Sort(values)
	values = slices.Compact(values)
	var out []CohortTest
	for i, v := range values {
		var in, rest []float64
		for _, m := range ms {
			if m.values[label] == v {
				in = append(in, m.share)
			} else {
				rest = append(rest, m.share)
			}
		}
		c := CohortTest{Label: name, Value: v, Instances: len(in), Others: len(rest)}
		c.Contrast = contrast(in, rest, min)
		// Two values shared by all: the second test repeats the first.
		if i == 1 && len(values) == 2 && held == len(ms) && c.Tested {
			c.Tested, c.Mirror = false, true
		}
		out = append(out, c)
	}
	return out
}

// mirror copies each mirrored cohort's test from its label's first value.
func mirror(cs []CohortTest) {
	for i := range cs {
		if !cs[i].Mirror {
			continue
		}
		first := cs[i-1].Contrast
		c := &cs[i].Contrast
		c.Tested, c.Q, c.MDE, c.Significant, c.P = true, first.Q, first.MDE, first.Significant, first.P
		c.Permutations, c.Exact = first.Permutations, first.Exact
		c.Delta, c.CILow, c.CIHigh = -first.Delta, -first.CIHigh, -first.CILow
	}
}

// rankCohorts orders significant cohorts by the size of their difference,
// then the rest by q, untested ones last.
func rankCohorts(cs []CohortTest) {
	slices.SortStableFunc(cs, func(a, b CohortTest) int {
		return cmp.Or(
			-cmp.Compare(boolInt(a.Significant), boolInt(b.Significant)),
			-cmp.Compare(boolInt(a.Tested), boolInt(b.Tested)),
			signifSize(a, b),
			cmp.Compare(a.Q, b.Q),
			cmp.Compare(a.Label, b.Label),
			cmp.Compare(a.Value, b.Value),
		)
	})
}

// signifSize orders two significant cohorts by |Delta|, larger first.
func signifSize(a, b CohortTest) int {
	if !a.Significant || !b.Significant {
		return 0
	}
	return cmp.Compare(math.Abs(b.Delta), math.Abs(a.Delta))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func instanceByName(by []string) string {
	if by == nil {
		return AutoInstance
	}
	return strings.Join(by, "+")
}

func membersSummary(ms []member) SideSummary {
	s := SideSummary{Instances: len(ms), Labels: make([]string, len(ms))}
	for i, m := range ms {
		s.Labels[i] = m.key
		s.Total += m.total
	}
	return s
}
