package diff

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/model"
	"github.com/flightrec/flightrec/server/store"
)

// cohortStore serves one simulated fleet: MergeBy returns its groups with
// all their labels (the code under test reads only those it asked for),
// SeriesOverTime one series per group with a point at its version's
// first-seen time.
type cohortStore struct {
	store.Store
	groups []store.Group
	seen   map[string]time.Time
}

func (c *cohortStore) MergeBy(context.Context, store.Query, []string) ([]store.Group, error) {
	return slices.Clone(c.groups), nil
}

func (c *cohortStore) SeriesOverTime(_ context.Context, _ store.Query, _ time.Duration) ([]model.Series, error) {
	var out []model.Series
	for _, g := range c.groups {
		t := c.seen[g.Labels.Get("version")]
		out = append(out, model.Series{Labels: g.Labels, Points: []model.Point{{Time: t.Add(time.Minute), Value: 5}, {Time: t, Value: 1}}})
	}
	return out, nil
}

var fleetQuery = store.Query{Type: "cpu", Start: time.Unix(0, 0), End: time.Unix(3600, 0)}

// cohortFleet is n instances of svc, those for which slow says so of
// slower instead; instance i runs version versions[i%len], on node
// n(i/perNode), in zone a or b by halves: cohorts that cut across each
// other.
func cohortFleet(rng *rand.Rand, svc, slower *simService, n, perNode int, versions []string, slow func(ls labels.Labels) bool) []store.Group {
	shape := defaultShape()
	shape.instances = 1
	out := make([]store.Group, n)
	for i := range out {
		ls := labels.FromStrings("pod", fmt.Sprintf("p%02d", i), "version", versions[i%len(versions)],
			"node", fmt.Sprintf("n%d", i/perNode), "zone", []string{"a", "b"}[2*i/n])
		s := svc
		if slow(ls) {
			s = slower
		}
		out[i] = store.Group{Labels: ls, Stacks: s.fleet(rng, shape, "x")[0].Stacks}
	}
	return out
}

var simVersions = []string{"1.1", "1.2", "1.3", "1.4"}

// seenInOrder makes versions first seen an hour apart, in order.
func seenInOrder(versions []string) map[string]time.Time {
	m := map[string]time.Time{}
	for i, v := range versions {
		m[v] = time.Unix(int64(i)*3600, 0)
	}
	return m
}

func cohortReq(by ...string) CohortRequest {
	return CohortRequest{Query: fleetQuery, Function: changed, By: by}
}

// TestExplainFindsCohort injects +3 points of self share in one cohort of
// a fleet of 64 instances (4 versions of 16, 8 nodes of 8, 2 zones) and
// counts how often explain ranks it first, significant.
func TestExplainFindsCohort(t *testing.T) {
	const runs = 50
	svc := newSimService()
	slower := svc.withSelf(changed, svc.selfShare(changed)+0.03)
	tests := []struct{ label, value string }{
		{"version", "1.3"},
		{"node", "n7"},
	}
	for _, tc := range tests {
		found := simulate(runs, 11, func(rng *rand.Rand) bool {
			groups := cohortFleet(rng, svc, slower, 64, 8, simVersions, func(ls labels.Labels) bool { return ls.Get(tc.label) == tc.value })
			res, err := Explain(context.Background(), &cohortStore{groups: groups}, cohortReq("version", "node", "zone"), Options{})
			if err != nil || res.Status != StatusOK || res.Found == 0 {
				return false
			}
			top := res.Cohorts[0]
			return top.Label == tc.label && top.Value == tc.value && top.Q < 0.05 && top.Delta > 0.02 && top.Delta < 0.04
		})
		rate := float64(count(found)) / runs
		t.Logf("explain, +3 points in %s=%q (64 instances): ranked first with q < 0.05 in %.0f%% of %d runs", tc.label, tc.value, 100*rate, runs)
		if rate < 0.9 {
			t.Errorf("%s=%q ranked first in %.0f%% of runs, want ≥ 90%%", tc.label, tc.value, 100*rate)
		}
	}
}

// TestBisectFindsVersion injects +3 points from one version on, in the
// versions' first-seen order: bisect must name that version. The second
// case orders the versions against their names, so that sorting by name
// would name another.
func TestBisectFindsVersion(t *testing.T) {
	const runs = 50
	svc := newSimService()
	slower := svc.withSelf(changed, svc.selfShare(changed)+0.03)
	tests := []struct {
		versions []string // in first-seen order
		from     int      // index of the first slower one
	}{
		{simVersions, 2},
		{[]string{"d", "c", "b", "a"}, 2},
	}
	for _, tc := range tests {
		slowSet := tc.versions[tc.from:]
		found := simulate(runs, 12, func(rng *rand.Rand) bool {
			groups := cohortFleet(rng, svc, slower, 24, 4, tc.versions, func(ls labels.Labels) bool { return slices.Contains(slowSet, ls.Get("version")) })
			st := &cohortStore{groups: groups, seen: seenInOrder(tc.versions)}
			res, err := Bisect(context.Background(), st, cohortReq("version"), Options{})
			return err == nil && res.Changed != nil && res.Changed.To == tc.versions[tc.from] && res.Changed.Delta > 0.02
		})
		rate := float64(count(found)) / runs
		t.Logf("bisect, +3 points from %s on (versions %v by first seen, 6 instances each): named it in %.0f%% of %d runs",
			tc.versions[tc.from], tc.versions, 100*rate, runs)
		if rate < 0.9 {
			t.Errorf("versions %v: named %s in %.0f%% of runs, want ≥ 90%%", tc.versions, tc.versions[tc.from], 100*rate)
		}
	}
}

// TestCohortsAA: with nothing injected, neither explain nor bisect should
// find anything in at least 90% of runs (BH at 0.05 promises about 95%
// for independent tests), with cohorts of 8 instances against 56 and of 4
// against 60. The second case is where Welch's p-values, which the
// permutation tests replace, fail: their BH family, on the same fleets,
// finds something in over 10% of them (docs/diff.md).
func TestCohortsAA(t *testing.T) {
	const runs = 100
	svc := newSimService()
	tests := []struct {
		perNode    int
		welchFails bool
	}{
		{8, false},
		{4, true},
	}
	for _, tc := range tests {
		r := aaRates(svc, runs, tc.perNode)
		t.Logf("nothing injected, %d runs of 64 instances (16 a version, %d a node, 32 a zone): no evidence from explain in %.0f%% "+
			"(with Welch's p-values %.0f%%), from bisect in %.0f%%", runs, tc.perNode, 100*r.explain, 100*r.welch, 100*r.bisect)
		if r.explain < 0.9 || r.bisect < 0.9 {
			t.Errorf("%d a node: no evidence from explain in %.0f%%, bisect in %.0f%% of A/A runs, want ≥ 90%% each", tc.perNode, 100*r.explain, 100*r.bisect)
		}
		if tc.welchFails && r.welch >= 0.9 {
			t.Errorf("%d a node: Welch's p-values gave no evidence in %.0f%% of A/A runs: the simulation no longer shows why explain permutes", tc.perNode, 100*r.welch)
		}
	}
}

// aaRate is how often, in fleets of one service, explain, explain with
// Welch's p-values and bisect find nothing.
type aaRate struct{ explain, welch, bisect float64 }

func aaRates(svc *simService, runs, perNode int) aaRate {
	type outcome struct{ explain, welch, bisect bool }
	out := simulate(runs, 13, func(rng *rand.Rand) outcome {
		groups := cohortFleet(rng, svc, svc, 64, perNode, simVersions, func(labels.Labels) bool { return false })
		st := &cohortStore{groups: groups, seen: seenInOrder(simVersions)}
		e, err1 := Explain(context.Background(), st, cohortReq("version", "node", "zone"), Options{})
		b, err2 := Bisect(context.Background(), st, cohortReq("version"), Options{})
		ok := err1 == nil && e.Status == StatusOK
		return outcome{ok && e.Found == 0, ok && !welchFinds(e), err2 == nil && b.Status == StatusOK && b.Changed == nil}
	})
	var r aaRate
	for _, o := range out {
		r.explain += float64(boolInt(o.explain)) / float64(runs)
		r.welch += float64(boolInt(o.welch)) / float64(runs)
		r.bisect += float64(boolInt(o.bisect)) / float64(runs)
	}
	return r
}

// welchFinds says whether explain would have found a cohort with Welch's
// p-values, the test the permutations replace, over the same family.
func welchFinds(res *ExplainResult) bool {
	var p []float64
	for _, c := range res.Cohorts {
		if c.Tested && !c.Mirror {
			p = append(p, welchTest(c.other, c.group).p)
		}
	}
	for _, q := range bhAdjust(p) {
		if q < res.Alpha {
			return true
		}
	}
	return false
}

func count(bs []bool) int {
	n := 0
	for _, b := range bs {
		n += boolInt(b)
	}
	return n
}

// TestMembers checks how groups become instances: by pod, else pid and
// node, with the first cohort value of an instance that has several, or
// one instance per value when split.
func TestMembers(t *testing.T) {
	g := func(alloc int64, kv ...string) store.Group { return group(labels.FromStrings(kv...), 90-alloc, alloc) }
	groups := []store.Group{
		g(10, "pod", "a", "version", "2", "node", "n1"),
		g(30, "pod", "a", "version", "1", "node", "n1"), // a's second version
		g(20, "pid", "7", "node", "n2", "version", "1"),
		g(40, "pid", "8", "node", "n2"), // no version
	}
	tests := []struct {
		name  string
		split bool
		want  []string // key share% version
	}{
		{"first value", false, []string{`{node="n2", pid="7"} 20 1`, `{node="n2", pid="8"} 40 `, `{pod="a"} 20 1`}},
		{"split", true, []string{`{node="n2", pid="7", version="1"} 20 1`, `{node="n2", pid="8"} 40 `,
			`{pod="a", version="1"} 30 1`, `{pod="a", version="2"} 10 2`}},
	}
	for _, tc := range tests {
		req := CohortRequest{Function: "alloc", Metric: Self, By: []string{"version"}}
		ms, err := members(slices.Clone(groups), req, autoBy(), true, tc.split)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range ms {
			got = append(got, fmt.Sprintf("%s %.0f %s", m.key, 100*m.share, m.values[0]))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: got\n%s\nwant\n%s", tc.name, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
		}
	}
}

func TestCohortBadInput(t *testing.T) {
	st := &cohortStore{groups: pods("p", 10, 11, 12, 13)}
	tests := []struct {
		name   string
		req    CohortRequest
		bisect bool
		want   string
	}{
		{"no function", CohortRequest{By: []string{"version"}}, false, "missing function"},
		{"empty by", CohortRequest{Function: "alloc"}, false, "empty by"},
		{"bad metric", CohortRequest{Function: "alloc", By: []string{"v"}, Metric: "flat"}, false, `bad metric "flat"`},
		{"unknown function", CohortRequest{Function: "nope", By: []string{"v"}}, false, `function "nope": not in any stack`},
		{"two labels to bisect", CohortRequest{Function: "alloc", By: []string{"a", "b"}}, true, "bisect orders the values of one label"},
		{"empty", CohortRequest{Function: "alloc", By: []string{"v"}}, true, "selection: no profiles match"},
	}
	for _, tc := range tests {
		s := store.Store(st)
		if tc.name == "empty" {
			s = &cohortStore{}
		}
		var err error
		if tc.bisect {
			_, err = Bisect(context.Background(), s, tc.req, Options{})
		} else {
			_, err = Explain(context.Background(), s, tc.req, Options{})
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInput) {
			t.Errorf("%s: error %v, want an input error with %q", tc.name, err, tc.want)
		}
	}
}

// TestExplainSmall: a label whose cohorts all have too few instances is
// untested; with nothing tested the answer is inconclusive. Two values
// held by all count once in the family.
func TestExplainSmall(t *testing.T) {
	ms := []member{}
	for i := range 6 {
		ms = append(ms, member{key: fmt.Sprint(i), share: 0.1 + 0.01*float64(i%3), values: []string{fmt.Sprint(i), []string{"x", "y"}[i%2]}})
	}
	res := explain(ms[:4], []string{"pod"}, Options{})
	if res.Status != StatusInconclusive || res.Tested != 0 || len(res.Cohorts) != 4 || !strings.HasPrefix(res.Message, "inconclusive: no cohort of pod") {
		t.Errorf("4 singleton cohorts: %+v", res)
	}
	res = explain(ms, []string{"pod", "half"}, Options{})
	if res.Status != StatusOK || res.Tested != 1 || len(res.Cohorts) != 8 {
		t.Fatalf("two halves: %+v", res)
	}
	x, y := res.Cohorts[0], res.Cohorts[1]
	if !x.Tested || !y.Tested || !y.Mirror || x.Q != y.Q || x.Delta != -y.Delta || x.CILow != -y.CIHigh {
		t.Errorf("halves: %+v and %+v, want one test and its mirror", x, y)
	}
}

// BenchmarkExplain times explain's tests, the store aside, on 200
// instances labelled with 10 versions, 50 nodes and 3 zones: 63 cohorts,
// each a permutation test of 12,600 relabellings with its interval.
func BenchmarkExplain(b *testing.B) {
	rng := rand.New(rand.NewPCG(9, 9))
	ms := make([]member, 200)
	for i := range ms {
		ms[i] = member{key: fmt.Sprint(i), share: 0.05 * math.Exp(0.12*rng.NormFloat64()),
			values: []string{fmt.Sprint(i % 10), fmt.Sprint(i / 4), fmt.Sprint(i % 3)}}
	}
	by := []string{"version", "node", "zone"}
	if res := explain(ms, by, Options{}); res.Tested != 63 || res.Cohorts[0].Permutations != 12600 {
		b.Fatalf("%d cohorts tested with %d relabellings, want 63 with 12600", res.Tested, res.Cohorts[0].Permutations)
	}
	for b.Loop() {
		explain(ms, by, Options{})
	}
}
