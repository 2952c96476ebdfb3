package diff

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/flightrec/flightrec/server/store"
)

// simulate runs f for runs 0..n-1 in parallel, each with a generator
// seeded by (seed, run), so results do not depend on scheduling.
func simulate[T any](n int, seed uint64, f func(rng *rand.Rand) T) []T {
	out := make([]T, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for run := range next {
				out[run] = f(rand.New(rand.NewPCG(seed, uint64(run))))
			}
		})
	}
	for run := range n {
		next <- run
	}
	close(next)
	wg.Wait()
	return out
}

// sides groups two simulated sides as Run would, over one name table.
func sides(t testing.TB, base, target []store.Group) (*fleet, *fleet, *names) {
	nm := newNames()
	var out [2]fleet
	for i, groups := range [][]store.Group{base, target} {
		table, err := tableOf(groups)
		if err != nil {
			t.Fatal(err)
		}
		if out[i], err = newFleet(table, true, nm); err != nil {
			t.Fatal(err)
		}
	}
	return &out[0], &out[1], nm
}

// flagged says whether any function, and any call path, was flagged.
func flagged(r *Result) (functions, paths bool) {
	for _, c := range r.Changes {
		functions = functions || c.Verdict != NoEvidence
	}
	for _, p := range r.Paths {
		paths = paths || p.Verdict != NoEvidence
	}
	return functions, paths
}

// separateFamilies is what the diff would flag if call paths were a
// Benjamini–Hochberg family of their own, apart from functions: the
// alternative docs/diff.md turns down. Under the global null each family
// is a 5% test, so anything at all is flagged in up to twice as many A/A
// comparisons.
func separateFamilies(sel selection, alpha float64) bool {
	var fns, paths []float64
	for _, t := range sel.tests {
		if t.sameAs >= 0 || t.constant {
			continue
		}
		if t.path >= 0 {
			paths = append(paths, t.w.p)
		} else {
			fns = append(fns, t.w.p)
		}
	}
	for _, p := range [][]float64{fns, paths} {
		for _, q := range bhAdjust(p) {
			if q < alpha {
				return true
			}
		}
	}
	return false
}

// pooledAnyFlagged is the naive test the instance test replaces, on the
// same rows (functions and paths): a two-proportion z-test on the samples
// pooled over each side's instances, as if every sample were independent,
// BH-adjusted.
func pooledAnyFlagged(sel selection, base, target *fleet, alpha float64) bool {
	var p []float64
	for _, t := range sel.tests {
		if t.sameAs < 0 {
			xb, nb := pooled(base, t.base)
			xt, nt := pooled(target, t.target)
			p = append(p, twoProportionP(xb, nb, xt, nt))
		}
	}
	for _, q := range bhAdjust(p) {
		if q < alpha {
			return true
		}
	}
	return false
}

// pooled sums a test's samples and all samples over a side, from each
// instance's share and total (the simulator's values are sample counts).
func pooled(f *fleet, shares []float64) (x, n float64) {
	for i, in := range f.instances {
		n += float64(in.total)
		x += shares[i] * float64(in.total)
	}
	return x, n
}

func twoProportionP(xb, nb, xt, nt float64) float64 {
	pool := (xb + xt) / (nb + nt)
	se := math.Sqrt(pool * (1 - pool) * (1/nb + 1/nt))
	if se == 0 {
		return 1
	}
	z := (xt/nt - xb/nb) / se
	return math.Erfc(math.Abs(z) / math.Sqrt2)
}

// TestAA compares fleets of the same service: nothing changed, so a
// sound test flags something in at most alpha of the comparisons (BH at
// 0.05 under the global null is a 5% test), counting every row, functions
// and call paths alike. The pooled-samples test, on the same data and
// rows, flags nearly all of them: instances differ by more than sampling
// noise, and it takes that for change.
func TestAA(t *testing.T) {
	const runs = 3000
	svc := newSimService()
	shape := defaultShape()
	type outcome struct{ functions, paths, separate, pooled bool }
	out := simulate(runs, 1, func(rng *rand.Rand) outcome {
		b, tg, nm := sides(t, svc.fleet(rng, shape, "a"), svc.fleet(rng, shape, "b"))
		res := compare(b, tg, nm, Options{})
		var o outcome
		o.functions, o.paths = flagged(res)
		sel := selectTests(b, tg, len(nm.list), DefaultMinShare)
		runTests(sel.tests, DefaultAlpha)
		o.separate = separateFamilies(sel, DefaultAlpha)
		o.pooled = pooledAnyFlagged(sel, b, tg, DefaultAlpha)
		return o
	})
	var fns, paths, any, separate, pool int
	for _, o := range out {
		fns += b2i(o.functions)
		paths += b2i(o.paths)
		any += b2i(o.functions || o.paths)
		separate += b2i(o.separate)
		pool += b2i(o.pooled)
	}
	pct := func(n int) float64 { return 100 * float64(n) / runs }
	t.Logf("A/A, %d comparisons of %d×%d×%d samples a side: anything flagged at q < 0.05 in %.1f%% (functions %.1f%%, call paths %.1f%%) with the instance test; "+
		"%.1f%% were call paths a family of their own; %.1f%% with a pooled-samples z-test",
		runs, shape.instances, shape.intervals, shape.samples, pct(any), pct(fns), pct(paths), pct(separate), pct(pool))
	if pct(any) > 5 {
		t.Errorf("instance test flagged a function or call path in %.1f%% of A/A comparisons, want ≤ 5%%", pct(any))
	}
	if pct(separate) <= 5 {
		t.Errorf("call paths as a family of their own flagged something in only %.1f%% of A/A comparisons: the simulation no longer shows why they share the functions' family", pct(separate))
	}
	if pct(pool) < 50 {
		t.Errorf("pooled test flagged something in only %.1f%% of A/A comparisons: the simulated over-dispersion is too weak to show why instances matter", pct(pool))
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestPower injects a slowdown of one function, +2 and +1 points of self
// share (5% to 7% and to 6%), in the target, and counts how often it is
// flagged as a regression; the +2 point case is also run on fleets whose
// instances differ more, to show what power depends on. The MDE the diff
// reports should sit near the change detected 80% of the time.
func TestPower(t *testing.T) {
	const runs = 300
	svc := newSimService()
	tests := []struct {
		points, sigma float64
		minPower      float64 // 0: logged only
	}{
		{2, 0.12, 0.95},
		{1, 0.12, 0},
		{2, 0.2, 0},
		{2, 0.3, 0},
	}
	for _, tc := range tests {
		shape := defaultShape()
		shape.instanceSigma = tc.sigma
		slower := svc.withSelf(changed, svc.selfShare(changed)+tc.points/100)
		flagged, mde := power(svc, slower, shape, runs, "")
		t.Logf("power at +%g points of self share (%s 5%% → %g%%), %d instances a side, instance jitter %.0f%%: %.1f%% of %d runs flagged it (mean reported MDE %.2f points)",
			tc.points, changed, 5+tc.points, shape.instances, 100*tc.sigma, 100*flagged, runs, 100*mde)
		if flagged < tc.minPower {
			t.Errorf("+%g points flagged in %.1f%% of runs, want ≥ %.0f%%", tc.points, 100*flagged, 100*tc.minPower)
		}
	}
}

// power returns how often base against slower flags the row as a
// regression, and the mean MDE reported for it: a function's self share,
// or with path a call path (root;...;leaf).
func power(base, slower *simService, shape fleetShape, runs int, path string) (flagged, mde float64) {
	type outcome struct {
		flagged bool
		mde     float64
	}
	out := simulate(runs, 2, func(rng *rand.Rand) outcome {
		nm := newNames()
		bt, err1 := tableOf(base.fleet(rng, shape, "base"))
		tt, err2 := tableOf(slower.fleet(rng, shape, "canary"))
		if err1 != nil || err2 != nil {
			return outcome{}
		}
		b, err1 := newFleet(bt, true, nm)
		tg, err2 := newFleet(tt, true, nm)
		if err1 != nil || err2 != nil {
			return outcome{}
		}
		res := compare(&b, &tg, nm, Options{})
		for _, c := range res.Changes {
			if path == "" && c.Function == changed && c.Metric == Self {
				return outcome{c.Verdict == Regression, c.MDE}
			}
		}
		for _, p := range res.Paths {
			if path != "" && joinFrames(p.Frames) == path {
				return outcome{p.Verdict == Regression, p.MDE}
			}
		}
		return outcome{}
	})
	for _, o := range out {
		flagged += float64(b2i(o.flagged)) / float64(runs)
		mde += o.mde / float64(runs)
	}
	return flagged, mde
}

// slowPath is the sim's call path into changed through handler 0.
const slowPath = "main.main;net/http.(*Server).Serve;app.handler0;" + changed

// TestPathPower makes one call path into changed slower, +2 points, and
// counts how often that path's row is flagged: a slowdown on one route
// into a function that the function's own rows dilute with its other
// routes. +1 point is logged.
func TestPathPower(t *testing.T) {
	const runs = 300
	svc := newSimService()
	var have float64
	for i, st := range svc.stacks {
		if svc.path(st) == slowPath {
			have = svc.share[i]
		}
	}
	if have == 0 {
		t.Fatalf("no stack %s in the simulated service", slowPath)
	}
	for _, tc := range []struct{ points, minPower float64 }{{2, 0.95}, {1, 0}} {
		slower := svc.withPath(slowPath, have+tc.points/100)
		got, mde := power(svc, slower, defaultShape(), runs, slowPath)
		t.Logf("power at +%g points on the call path %s (%.1f%% → %.1f%%): %.1f%% of %d runs flagged it (mean reported MDE %.2f points)",
			tc.points, slowPath, 100*have, 100*have+tc.points, 100*got, runs, 100*mde)
		if got < tc.minPower {
			t.Errorf("+%g points on a call path flagged in %.1f%% of runs, want ≥ %.0f%%", tc.points, 100*got, 100*tc.minPower)
		}
	}
}

// TestOverdispersion checks that the simulated fleets vary between
// instances by more than sampling alone would: the premise of testing
// across instances, and what the pooled test gets wrong.
func TestOverdispersion(t *testing.T) {
	svc := newSimService()
	shape := defaultShape()
	b, tg, nm := sides(t, svc.fleet(rand.New(rand.NewPCG(3, 0)), shape, "a"), svc.fleet(rand.New(rand.NewPCG(3, 1)), shape, "b"))
	n := float64(shape.intervals * shape.samples)
	var ratios []float64
	for _, tc := range selectTests(b, tg, len(nm.list), DefaultMinShare).tests {
		if tc.metric != Self {
			continue
		}
		mean, variance := meanVar(slices.Concat(tc.base, tc.target))
		r := math.Sqrt(variance / (mean * (1 - mean) / n))
		ratios = append(ratios, r)
		if nm.list[tc.fn] == changed {
			t.Logf("%s: %.1f%% self, instance SD %.2f points, %.1f× its sampling SD", changed, 100*mean, 100*math.Sqrt(variance), r)
		}
	}
	slices.Sort(ratios)
	med := ratios[len(ratios)/2]
	t.Logf("instance SD / sampling SD over %d tested self shares: min %.1f, median %.1f, max %.1f", len(ratios), ratios[0], med, ratios[len(ratios)-1])
	if med < 1.5 {
		t.Errorf("median over-dispersion %.1f: the simulated instances vary little more than sampling", med)
	}
}
