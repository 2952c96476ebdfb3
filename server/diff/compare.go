package diff

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// test is one function's metric under test: each instance's share.
type test struct {
	fn             int32
	metric         Metric
	base, target   []float64
	sameAs         int  // index of an earlier test with the same shares on every instance, or -1
	sameAsSelf     bool // ... and it is this function's self test
	constant       bool
	w              welch
	lo, hi, mde, q float64
}

// compare tests every function that passes the floor, target against base.
// base's name table becomes the common one.
func compare(base, target *side, opts Options) *Result {
	opts.defaults()
	remap(base, target)
	res := &Result{Status: StatusOK, Alpha: opts.Alpha, MinShare: opts.MinShare,
		Base: summary(base), Target: summary(target), Changes: []Change{}}
	nb, nt := len(base.instances), len(target.instances)
	if nb < opts.MinInstances || nt < opts.MinInstances {
		res.Status = StatusInconclusive
		res.Message = fmt.Sprintf("inconclusive: %d base and %d target instances, need ≥ %d a side "+
			"(the test compares instances, not samples: widen the range or the selectors, or check the instance labels, instance_by)",
			nb, nt, opts.MinInstances)
		return res
	}
	tests := selectTests(base, target, opts.MinShare)
	res.Tested = runTests(tests, opts.Alpha)
	for _, t := range tests {
		res.Changes = append(res.Changes, t.change(base.names[t.fn], opts.Alpha))
	}
	rank(res.Changes)
	return res
}

// remap moves target's function ids onto base's name table.
func remap(base, target *side) {
	index := make(map[string]int32, len(base.names))
	for i, n := range base.names {
		index[n] = int32(i)
	}
	ids := make([]int32, len(target.names))
	for i, n := range target.names {
		id, ok := index[n]
		if !ok {
			id = int32(len(base.names))
			base.names = append(base.names, n)
			index[n] = id
		}
		ids[i] = id
	}
	for _, inst := range target.instances {
		for j, f := range inst.fn {
			inst.fn[j] = ids[f]
		}
	}
	target.names = base.names
}

func summary(s *side) SideSummary {
	out := SideSummary{Instances: len(s.instances), Labels: make([]string, len(s.instances))}
	for i, inst := range s.instances {
		out.Total += inst.total
		out.Labels[i] = inst.labels.String()
	}
	return out
}

// selectTests picks the functions whose mean share over the instances of
// both sides pooled reaches minShare. Under the null both sides are alike,
// so the pooled mean says nothing about the difference: filtering on it
// leaves the tests' p-values valid while sparing the multiple-testing
// correction thousands of functions too small to matter.
func selectTests(base, target *side, minShare float64) []*test {
	n := len(base.names)
	meanSelf, meanCum := make([]float64, n), make([]float64, n)
	all := slices.Concat(base.instances, target.instances)
	for _, inst := range all {
		for j, f := range inst.fn {
			meanSelf[f] += float64(inst.self[j]) / float64(inst.total)
			meanCum[f] += float64(inst.cum[j]) / float64(inst.total)
		}
	}
	selfTest, cumTest := make([]int, n), make([]int, n)
	var tests []*test
	add := func(f int, m Metric) int {
		tests = append(tests, &test{fn: int32(f), metric: m, sameAs: -1,
			base: make([]float64, len(base.instances)), target: make([]float64, len(target.instances))})
		return len(tests) - 1
	}
	for f := range n {
		selfTest[f], cumTest[f] = -1, -1
		if meanSelf[f]/float64(len(all)) >= minShare {
			selfTest[f] = add(f, Self)
		}
		if meanCum[f]/float64(len(all)) >= minShare {
			cumTest[f] = add(f, Total)
		}
	}
	fill(base.instances, selfTest, cumTest, tests, func(t *test) []float64 { return t.base })
	fill(target.instances, selfTest, cumTest, tests, func(t *test) []float64 { return t.target })
	dedupe(tests)
	return tests
}

// dedupe points each test whose shares equal, instance by instance, those
// of an earlier test at that test: a leaf's total is its self, and callers
// that are on every stack of their callee (main, runtime.main, a thread's
// entry) all have one total. They are one hypothesis, tested once, so the
// correction counts them once.
func dedupe(tests []*test) {
	first := map[string]int{}
	var key []byte
	for i, t := range tests {
		key = key[:0]
		for _, x := range slices.Concat(t.base, t.target) {
			key = binary.LittleEndian.AppendUint64(key, math.Float64bits(x))
		}
		if j, ok := first[string(key)]; ok {
			t.sameAs, t.sameAsSelf = j, tests[j].fn == t.fn
			continue
		}
		first[string(key)] = i
	}
}

// fill writes each instance's shares into the tests' vectors of one side.
func fill(insts []instance, selfTest, cumTest []int, tests []*test, vec func(*test) []float64) {
	for i, inst := range insts {
		for j, f := range inst.fn {
			if k := selfTest[f]; k >= 0 {
				vec(tests[k])[i] = float64(inst.self[j]) / float64(inst.total)
			}
			if k := cumTest[f]; k >= 0 {
				vec(tests[k])[i] = float64(inst.cum[j]) / float64(inst.total)
			}
		}
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
		// what reaches that with 80% power.
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

// change reports a test.
func (t *test) change(name string, alpha float64) Change {
	mb, _ := meanVar(t.base)
	mt, _ := meanVar(t.target)
	c := Change{Function: name, Metric: t.metric, BaseShare: mb, TargetShare: mt, Delta: t.w.diff,
		Ratio: ratio(mt, mb), CILow: t.lo, CIHigh: t.hi, P: t.w.p, Q: t.q, MDE: t.mde,
		Verdict: NoEvidence, SameAsSelf: t.sameAsSelf, Constant: t.constant}
	switch {
	case t.q >= alpha:
	case t.w.diff > 0:
		c.Verdict = Regression
	case t.w.diff < 0:
		c.Verdict = Improvement
	}
	return c
}
