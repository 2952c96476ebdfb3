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

// sides summarizes two fleets as Run would, sharing base's name table.
func sides(t testing.TB, base, target []store.Group) (*side, *side) {
	b, err := summarize(base, true)
	if err != nil {
		t.Fatal(err)
	}
	tg, err := summarize(target, true)
	if err != nil {
		t.Fatal(err)
	}
	return &b, &tg
}

func anyFlagged(r *Result) bool {
	for _, c := range r.Changes {
		if c.Verdict != NoEvidence {
			return true
		}
	}
	return false
}

// pooledAnyFlagged is the naive test the instance test replaces, on the
// same functions: a two-proportion z-test on the samples pooled over each
// side's instances, as if every sample were independent, BH-adjusted.
func pooledAnyFlagged(base, target *side, alpha float64) bool {
	remap(base, target)
	var p []float64
	for _, t := range selectTests(base, target, DefaultMinShare) {
		if t.sameAs < 0 {
			xb, nb := pooled(base, t)
			xt, nt := pooled(target, t)
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

// pooled sums a test's function's samples and all samples over a side
// (the simulator's values are sample counts).
func pooled(s *side, t *test) (x, n float64) {
	for _, inst := range s.instances {
		n += float64(inst.total)
		for j, f := range inst.fn {
			if f == t.fn && t.metric == Self {
				x += float64(inst.self[j])
			} else if f == t.fn {
				x += float64(inst.cum[j])
			}
		}
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
// 0.05 under the global null is a 5% test). The pooled-samples test, on
// the same data and functions, flags nearly all of them: instances differ
// by more than sampling noise, and it takes that for change.
func TestAA(t *testing.T) {
	const runs = 3000
	svc := newSimService()
	shape := defaultShape()
	type outcome struct{ instance, pooled bool }
	out := simulate(runs, 1, func(rng *rand.Rand) outcome {
		b, tg := sides(t, svc.fleet(rng, shape, "a"), svc.fleet(rng, shape, "b"))
		flagged := anyFlagged(compare(b, tg, Options{}))
		return outcome{flagged, pooledAnyFlagged(b, tg, DefaultAlpha)}
	})
	var inst, pool int
	for _, o := range out {
		inst += b2i(o.instance)
		pool += b2i(o.pooled)
	}
	rate, poolRate := float64(inst)/runs, float64(pool)/runs
	t.Logf("A/A, %d comparisons of %d×%d×%d samples a side: any function flagged at q < 0.05 in %.1f%% (instance test), %.1f%% (pooled-samples z-test)",
		runs, shape.instances, shape.intervals, shape.samples, 100*rate, 100*poolRate)
	if rate > 0.05 {
		t.Errorf("instance test flagged something in %.1f%% of A/A comparisons, want ≤ 5%%", 100*rate)
	}
	if poolRate < 0.5 {
		t.Errorf("pooled test flagged something in only %.1f%% of A/A comparisons: the simulated over-dispersion is too weak to show why instances matter", 100*poolRate)
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
		flagged, mde := power(svc, slower, shape, runs)
		t.Logf("power at +%g points of self share (%s 5%% → %g%%), %d instances a side, instance jitter %.0f%%: %.1f%% of %d runs flagged it (mean reported MDE %.2f points)",
			tc.points, changed, 5+tc.points, shape.instances, 100*tc.sigma, 100*flagged, runs, 100*mde)
		if flagged < tc.minPower {
			t.Errorf("+%g points flagged in %.1f%% of runs, want ≥ %.0f%%", tc.points, 100*flagged, 100*tc.minPower)
		}
	}
}

// power returns how often base against slower flags changed as a
// regression, and the mean MDE reported for it.
func power(base, slower *simService, shape fleetShape, runs int) (flagged, mde float64) {
	type outcome struct {
		flagged bool
		mde     float64
	}
	out := simulate(runs, 2, func(rng *rand.Rand) outcome {
		b, err1 := summarize(base.fleet(rng, shape, "base"), true)
		tg, err2 := summarize(slower.fleet(rng, shape, "canary"), true)
		if err1 != nil || err2 != nil {
			return outcome{}
		}
		for _, c := range compare(&b, &tg, Options{}).Changes {
			if c.Function == changed && c.Metric == Self {
				return outcome{c.Verdict == Regression, c.MDE}
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

// TestOverdispersion checks that the simulated fleets vary between
// instances by more than sampling alone would: the premise of testing
// across instances, and what the pooled test gets wrong.
func TestOverdispersion(t *testing.T) {
	svc := newSimService()
	shape := defaultShape()
	b, tg := sides(t, svc.fleet(rand.New(rand.NewPCG(3, 0)), shape, "a"), svc.fleet(rand.New(rand.NewPCG(3, 1)), shape, "b"))
	remap(b, tg)
	n := float64(shape.intervals * shape.samples)
	var ratios []float64
	for _, tc := range selectTests(b, tg, DefaultMinShare) {
		if tc.metric != Self {
			continue
		}
		mean, variance := meanVar(slices.Concat(tc.base, tc.target))
		r := math.Sqrt(variance / (mean * (1 - mean) / n))
		ratios = append(ratios, r)
		if b.names[tc.fn] == changed {
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
