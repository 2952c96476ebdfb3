package diff

import (
	"math"
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
