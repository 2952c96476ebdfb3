package diff

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Reference values are from standard t tables and closed forms (df = 1 is
// the Cauchy distribution, df = 2 has P(T > t) = (1 - t/√(2+t²))/2).
func TestStudentSF(t *testing.T) {
	tests := []struct {
		t, df, want, tol float64
	}{
		{0, 5, 0.5, 1e-12},
		{1, 1, 0.25, 1e-12},
		{3, 1, 0.5 - math.Atan(3)/math.Pi, 1e-12},
		{2, 2, (1 - 2/math.Sqrt(6)) / 2, 1e-12},
		{2.228139, 10, 0.025, 1e-6},
		{2.085963, 20, 0.025, 1e-6},
		{1.644854, 1e7, 0.05, 1e-5}, // the normal limit
		{4.0, 18, 0.00041991, 1e-7}, // by numerical integration of the density
	}
	for _, tc := range tests {
		if got := studentSF(tc.t, tc.df); math.Abs(got-tc.want) > tc.tol {
			t.Errorf("P(T > %v | df %v) = %.8f, want %.8f", tc.t, tc.df, got, tc.want)
		}
	}
}

func TestStudentQuantile(t *testing.T) {
	tests := []struct {
		p, df, want, tol float64
	}{
		{0.975, 10, 2.228139, 1e-5},
		{0.975, 20, 2.085963, 1e-5},
		{0.8, 18, 0.8620, 1e-4},
		{0.025, 10, -2.228139, 1e-5},
		{0.5, 3, 0, 0},
		{0.995, 4.5, 4.27282, 1e-4}, // fractional df, by numerical integration
	}
	for _, tc := range tests {
		got := studentQuantile(tc.p, tc.df)
		if math.Abs(got-tc.want) > tc.tol {
			t.Errorf("quantile(%v, df %v) = %.6f, want %.6f", tc.p, tc.df, got, tc.want)
		}
		if back := 1 - studentSF(got, tc.df); got > 0 && math.Abs(back-tc.p) > 1e-9 {
			t.Errorf("CDF(quantile(%v, df %v)) = %v", tc.p, tc.df, back)
		}
	}
}

func TestWelch(t *testing.T) {
	tests := []struct {
		name         string
		base, target []float64
		diff, df, p  float64
	}{
		// By hand: means 2 and 5, variances 1 and 1, se = √(2/3), t = 3.674,
		// df = 4; P(|T| > 3.674 | 4) = 0.02131.
		{"equal variances", []float64{1, 2, 3}, []float64{4, 5, 6}, 3, 4, 0.02131},
		{"no difference", []float64{1, 2, 3}, []float64{3, 2, 1}, 0, 4, 1},
		{"constant and equal", []float64{1, 1, 1}, []float64{1, 1}, 0, 3, 1},
		{"constant and different", []float64{1, 1, 1}, []float64{2, 2, 2}, 1, 4, 0},
	}
	for _, tc := range tests {
		w := welchTest(tc.base, tc.target)
		if math.Abs(w.diff-tc.diff) > 1e-12 || math.Abs(w.df-tc.df) > 1e-9 || math.Abs(w.p-tc.p) > 1e-5 {
			t.Errorf("%s: diff %v df %v p %v, want %v %v %v", tc.name, w.diff, w.df, w.p, tc.diff, tc.df, tc.p)
		}
	}
	// Unequal variances and sizes: df by Welch–Satterthwaite.
	w := welchTest([]float64{1, 2, 3, 4}, []float64{10, 20, 30})
	eb, et := (5.0/3)/4, 100.0/3
	if want := (eb + et) * (eb + et) / (eb*eb/3 + et*et/2); math.Abs(w.df-want) > 1e-9 {
		t.Errorf("welch df %v, want %v", w.df, want)
	}
	if lo, hi := w.interval(0.95); lo > w.diff || hi < w.diff || lo > 0 != (w.p < 0.05) {
		t.Errorf("95%% CI [%v, %v] of %v inconsistent with p %v", lo, hi, w.diff, w.p)
	}
}

func TestBH(t *testing.T) {
	tests := []struct {
		p, want []float64
	}{
		{[]float64{0.01, 0.04, 0.03, 0.5}, []float64{0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5}},
		{[]float64{0.001}, []float64{0.001}},
		{[]float64{0.9, 0.8}, []float64{0.9, 0.9}},
		{nil, []float64{}},
	}
	for _, tc := range tests {
		got := bhAdjust(tc.p)
		for i := range tc.want {
			if math.Abs(got[i]-tc.want[i]) > 1e-12 {
				t.Errorf("bh(%v) = %v, want %v", tc.p, got, tc.want)
				break
			}
		}
	}
}

// TestPermTestExact checks exact enumeration against counts by hand:
// {1,2,3} against {4..7} and its mirror {5,6,7} against {1..4} are the
// only two of the 35 labellings with the largest |t|, whichever side is
// the group; 3 against 3 have 20 labellings, so p ≥ 2/20 and nothing is
// detectable at 5%: the MDE is the whole range and the interval too.
func TestPermTestExact(t *testing.T) {
	tests := []struct {
		group, other []float64
		draws        int
		p            float64
	}{
		{[]float64{1, 2, 3}, []float64{4, 5, 6, 7}, 35, 2.0 / 35},
		{[]float64{4, 5, 6, 7}, []float64{1, 2, 3}, 35, 2.0 / 35},
		{[]float64{1, 2, 3}, []float64{4, 5, 6}, 20, 0.1},
	}
	for _, tc := range tests {
		pt := newPermTest(tc.group, tc.other, 1000)
		if !pt.exact || len(pt.draws) != tc.draws || math.Abs(pt.pValue(0)-tc.p) > 1e-12 {
			t.Errorf("%v against %v: exact %v, %d draws, p %.4f; want exact, %d, %.4f", tc.group, tc.other, pt.exact, len(pt.draws), pt.pValue(0), tc.draws, tc.p)
		}
	}
	w := welchTest([]float64{4, 5, 6}, []float64{1, 2, 3})
	pt := newPermTest([]float64{1, 2, 3}, []float64{4, 5, 6}, 1000)
	if lo, hi := pt.interval(0.95, w); pt.mde(0.05, DefaultPower, w) != 1 || lo != -1 || hi != 1 {
		t.Errorf("3 against 3: MDE %v, interval [%v, %v]; want 1 and [-1, 1]", pt.mde(0.05, DefaultPower, w), lo, hi)
	}
}

// TestPermTestCalibrated draws a small group and a large one from the same
// skewed distribution: the permutation p-value is below 1% in about 1% of
// datasets, where Welch's, on the same data, is several times too often
// (the small group's low mean comes with a low variance).
func TestPermTestCalibrated(t *testing.T) {
	const reps, level = 4000, 0.01
	rng := rand.New(rand.NewPCG(5, 5))
	var perm, welch int
	x := make([]float64, 64)
	for range reps {
		for i := range x {
			x[i] = math.Exp(0.8 * rng.NormFloat64())
		}
		perm += b2i(newPermTest(x[:4], x[4:], 999).pValue(0) <= level)
		welch += b2i(welchTest(x[4:], x[:4]).p <= level)
	}
	pr, wr := float64(perm)/reps, float64(welch)/reps
	t.Logf("4 against 60 log-normal values, %d datasets: p ≤ %g in %.2f%% by permutation, %.2f%% by Welch's t-test", reps, level, 100*pr, 100*wr)
	if pr > 1.5*level || wr < 2*level {
		t.Errorf("p ≤ %g in %.2f%% by permutation (want ≤ %.1f%%), %.2f%% by Welch (want ≥ %.0f%%, the failure the permutations fix)",
			level, 100*pr, 150*level, 100*wr, 200*level)
	}
}

// TestPermTestCoherent: the interval is the shifts the test does not
// reject, so it excludes 0 exactly when p ≤ 5%; it holds the estimate,
// and the same data give the same p-value.
func TestPermTestCoherent(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	for run := range 300 {
		k, n := []int{3, 4, 8}[run%3], []int{10, 20, 60}[run/3%3]
		shift := []float64{0, 0.005, 0.01, 0.03}[run/9%4]
		x := make([]float64, n)
		for i := range x {
			x[i] = 0.05 * math.Exp(0.3*rng.NormFloat64()) // a function's share
			if i < k {
				x[i] += shift
			}
		}
		w := welchTest(x[k:], x[:k])
		pt := newPermTest(x[:k], x[k:], 2000)
		p := pt.pValue(0)
		lo, hi := pt.interval(0.95, w)
		if (p <= 0.05) != (lo > 0 || hi < 0) || lo > w.diff || hi < w.diff {
			t.Errorf("%d against %d, shift %g: p %.4f, Δ %.4f, interval [%.4f, %.4f]", k, n-k, shift, p, w.diff, lo, hi)
		}
		if again := newPermTest(x[:k], x[k:], 2000).pValue(0); again != p {
			t.Errorf("%d against %d: p %v, then %v on the same data", k, n-k, p, again)
		}
	}
}
