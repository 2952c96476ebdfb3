package diff

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// test is one function's metric, or one call path, under test: each
// instance's share.
type test struct {
	fn             int32 // function id; -1 for a path
	path           int32 // call-path node; -1 for a function
	metric         Metric
	base, target   []float64
	sameAs         int  // index of an earlier test with the same shares on every instance, or -1
	sameAsSelf     bool // ... and it is this function's self test
	constant       bool
	w              welch
	lo, hi, mde, q float64
}

// compare tests every function and call path that passes the floor,
// target against base; nm names both sides' function ids.
func compare(base, target *fleet, nm *names, opts Options) *Result {
	opts.defaults()
	res := &Result{Status: StatusOK, Alpha: opts.Alpha, MinShare: opts.MinShare,
		Base: summary(base), Target: summary(target), Changes: []Change{}, Paths: []PathChange{}}
	nb, nt := len(base.instances), len(target.instances)
	if nb < opts.MinInstances || nt < opts.MinInstances {
		res.Status = StatusInconclusive
		res.Message = fmt.Sprintf("inconclusive: %d base and %d target instances, need ≥ %d a side "+
			"(the test compares instances, not samples: widen the range or the selectors, or check the instance labels, instance_by)",
			nb, nt, opts.MinInstances)
		return res
	}
	sel := selectTests(base, target, len(nm.list), opts.MinShare)
	res.Tested = runTests(sel.tests, opts.Alpha)
	for _, t := range sel.tests {
		c := t.change(nm, opts.Alpha)
		if t.path < 0 {
			res.Changes = append(res.Changes, c)
			continue
		}
		p := PathChange{Frames: sel.tree.frames(t.path, nm), Stats: c.Stats}
		if t.sameAs >= 0 {
			p.SameAs = sel.tests[t.sameAs].describe(nm, sel.tree)
		}
		res.Paths = append(res.Paths, p)
	}
	rank(res.Changes)
	rankPaths(res.Paths)
	return res
}

func summary(f *fleet) SideSummary {
	out := SideSummary{Instances: len(f.instances), Labels: make([]string, len(f.instances))}
	for i, in := range f.instances {
		out.Total += in.total
		out.Labels[i] = in.labels.String()
	}
	return out
}

// selection is the tests chosen, over the call tree of both sides.
type selection struct {
	tests []*test
	tree  *callTree
}

// chosen maps functions and call-path nodes to their tests (-1: none).
type chosen struct {
	self, total, path []int
}

// selectTests picks the functions (self and total) and the call paths
// whose mean share over the instances of both sides pooled reaches
// minShare, and fills their instance shares. Under the null both sides
// are alike, so the pooled mean says nothing about the difference:
// filtering on it leaves the tests' p-values valid while sparing the
// multiple-testing correction thousands of rows too small to matter. The
// pooled mean needs no per-instance sums: it is the sum, over distinct
// stacks, of each stack's share summed over instances; only the chosen
// rows are then summed per instance.
func selectTests(base, target *fleet, functions int, minShare float64) selection {
	sides := []*fleet{base, target}
	n := float64(len(base.instances) + len(target.instances))
	weights := [][]float64{stackWeights(base), stackWeights(target)}
	meanSelf, meanTotal := make([]float64, functions), make([]float64, functions)
	seen := newStamps(functions)
	for i, f := range sides {
		for s, st := range f.stacks {
			if len(st) == 0 { // no instance has it (newFleet drops its rows)
				continue
			}
			w := weights[i][s]
			meanSelf[st[0]] += w
			seen.next()
			for _, fn := range st {
				if seen.first(fn) {
					meanTotal[fn] += w
				}
			}
		}
	}
	tree, leaf, meanPath := pathShares(sides, weights, minShare*n)
	var tests []*test
	add := func(fn, path int32, m Metric, mean float64) int {
		if mean/n < minShare {
			return -1
		}
		tests = append(tests, &test{fn: fn, path: path, metric: m, sameAs: -1,
			base: make([]float64, len(base.instances)), target: make([]float64, len(target.instances))})
		return len(tests) - 1
	}
	c := chosen{self: make([]int, functions), total: make([]int, functions), path: make([]int, len(meanPath))}
	for f := range functions {
		c.self[f] = add(int32(f), -1, Self, meanSelf[f])
		c.total[f] = add(int32(f), -1, Total, meanTotal[f])
	}
	for p := range meanPath {
		c.path[p] = add(-1, int32(p), "", meanPath[p])
	}
	fill(base, leaf[0], tree, c, tests, func(t *test) []float64 { return t.base })
	fill(target, leaf[1], tree, c, tests, func(t *test) []float64 { return t.target })
	dedupe(tests)
	return selection{tests: tests, tree: tree}
}

// pathShares builds the call tree of both sides as far down as it can
// pass the floor, and sums each node's share over instances. A node's
// share is at most its parent's, so the tree grows a level at a time and
// a stack stops at its first node below the floor: most stacks leave
// after a few frames, and the deep tail of a flame graph, millions of
// nodes, is never built. leaf is, per side and stack, the deepest node
// built on its path (-1: none).
func pathShares(sides []*fleet, weights [][]float64, floor float64) (tree *callTree, leaf [][]int32, sum []float64) {
	tree = newCallTree()
	leaf = make([][]int32, len(sides))
	live := make([][]int32, len(sides)) // stacks still descending
	for i, f := range sides {
		leaf[i] = make([]int32, len(f.stacks))
		for s, st := range f.stacks {
			leaf[i][s] = -1
			if len(st) > 0 {
				live[i] = append(live[i], int32(s))
			}
		}
	}
	for depth := 0; ; depth++ {
		grown := false
		for i, f := range sides {
			for _, s := range live[i] {
				st := f.stacks[s]
				p := tree.child(leaf[i][s], st[len(st)-1-depth])
				leaf[i][s] = p
				sum = append(sum, make([]float64, len(tree.fn)-len(sum))...)
				sum[p] += weights[i][s]
				grown = true
			}
		}
		if !grown {
			return tree, leaf, sum
		}
		for i, f := range sides {
			live[i] = slices.DeleteFunc(live[i], func(s int32) bool {
				return sum[leaf[i][s]] < floor || len(f.stacks[s]) <= depth+1
			})
		}
	}
}

// stackWeights is, per distinct stack, its share summed over instances.
func stackWeights(f *fleet) []float64 {
	w := make([]float64, len(f.stacks))
	for _, in := range f.instances {
		t := float64(in.total)
		for j, s := range in.stack {
			w[s] += float64(in.value[j]) / t
		}
	}
	return w
}

// fill writes each instance's shares into the tests' vectors of one side.
// Each distinct stack's tests (its leaf's self, its functions' totals,
// its call-path prefixes: those chosen) are listed once, then every
// instance's values are added to them.
func fill(f *fleet, leaf []int32, tree *callTree, c chosen, tests []*test, vec func(*test) []float64) {
	off := make([]int32, len(f.stacks)+1)
	var into []int32
	seen := newStamps(len(c.total))
	for s, st := range f.stacks {
		if len(st) == 0 {
			off[s+1] = int32(len(into))
			continue
		}
		if k := c.self[st[0]]; k >= 0 {
			into = append(into, int32(k))
		}
		seen.next()
		for _, fn := range st {
			if k := c.total[fn]; k >= 0 && seen.first(fn) {
				into = append(into, int32(k))
			}
		}
		for p := leaf[s]; p >= 0; p = tree.parent[p] {
			if k := c.path[p]; k >= 0 {
				into = append(into, int32(k))
			}
		}
		off[s+1] = int32(len(into))
	}
	vecs := make([][]float64, len(tests))
	for k, t := range tests {
		vecs[k] = vec(t)
	}
	for i, in := range f.instances {
		for j, s := range in.stack {
			v := float64(in.value[j]) // exact: integer sums stay below 2^53
			for _, k := range into[off[s]:off[s+1]] {
				vecs[k][i] += v
			}
		}
		for _, x := range vecs {
			x[i] /= float64(in.total)
		}
	}
}

// stamps marks ids as seen within one round, without clearing between
// rounds: a function counts once towards a stack's totals however often
// it recurses.
type stamps struct {
	at  []int32
	gen int32
}

func newStamps(n int) *stamps { return &stamps{at: make([]int32, n)} }
func (s *stamps) next()       { s.gen++ }

func (s *stamps) first(id int32) bool {
	if s.at[id] == s.gen {
		return false
	}
	s.at[id] = s.gen
	return true
}

// dedupe points each test whose shares equal, instance by instance, those
// of an earlier test at that test: a leaf's total is its self, callers
// that are on every stack of their callee (main, runtime.main, a thread's
// entry) all have one total, and a call path whose every stack goes
// through one function is that function's total. They are one
// hypothesis, tested once, so the correction counts them once.
func dedupe(tests []*test) {
	first := map[string]int{}
	var key []byte
	for i, t := range tests {
		key = key[:0]
		for _, x := range slices.Concat(t.base, t.target) {
			key = binary.LittleEndian.AppendUint64(key, math.Float64bits(x))
		}
		if j, ok := first[string(key)]; ok {
			t.sameAs, t.sameAsSelf = j, t.path < 0 && tests[j].fn == t.fn
			continue
		}
		first[string(key)] = i
	}
}

func constant(t *test) bool {
	v := t.base[0]
	for _, x := range slices.Concat(t.base, t.target) {
		if x != v {
			return false
		}
	}
	return true
}

// runTests runs Welch's test on each distinct test and adjusts the
// p-values of the family for multiple testing. It returns the family's size.
func runTests(tests []*test, alpha float64) int {
	var family []*test
	for _, t := range tests {
		switch {
		case t.sameAs >= 0:
		case constant(t):
			// The same share on every instance of both sides (the root's
			// 100% total) leaves nothing to test: kept out of the family,
			// it does not dilute the correction of the others.
			t.constant = true
			t.w, t.q = welchTest(t.base, t.target), 1
			t.lo, t.hi = t.w.diff, t.w.diff
		default:
			family = append(family, t)
		}
	}
	p := make([]float64, len(family))
	for i, t := range family {
		t.w = welchTest(t.base, t.target)
		t.lo, t.hi = t.w.interval(0.95)
		// A lone change is flagged when its p is below alpha/m: the MDE is
		// what reaches that with 80% probability.
		t.mde = t.w.mde(alpha/float64(len(family)), DefaultPower)
		p[i] = t.w.p
	}
	for i, q := range bhAdjust(p) {
		family[i].q = q
	}
	for _, t := range tests {
		if t.sameAs >= 0 {
			s := tests[t.sameAs]
			t.w, t.lo, t.hi, t.mde, t.q, t.constant = s.w, s.lo, s.hi, s.mde, s.q, s.constant
		}
	}
	return len(family)
}

// change reports a test (for a path, its Function and Metric are empty).
func (t *test) change(nm *names, alpha float64) Change {
	mb, _ := meanVar(t.base)
	mt, _ := meanVar(t.target)
	c := Change{Metric: t.metric, Stats: Stats{BaseShare: mb, TargetShare: mt, Delta: t.w.diff,
		Ratio: ratio(mt, mb), CILow: t.lo, CIHigh: t.hi, P: t.w.p, Q: t.q, MDE: t.mde,
		Verdict: NoEvidence, Constant: t.constant}, SameAsSelf: t.sameAsSelf}
	if t.fn >= 0 {
		c.Function = nm.list[t.fn]
	}
	switch {
	case t.q >= alpha:
	case t.w.diff > 0:
		c.Verdict = Regression
	case t.w.diff < 0:
		c.Verdict = Improvement
	}
	return c
}

// describe names a test for a row that repeats it: "fn self", "fn
// total", or a path's frames joined by ";".
func (t *test) describe(nm *names, tree *callTree) string {
	if t.path >= 0 {
		return joinFrames(tree.frames(t.path, nm))
	}
	return nm.list[t.fn] + " " + string(t.metric)
}
