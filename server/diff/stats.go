package diff

import (
	"math"
	"slices"
)

// welch is the outcome of Welch's two-sample t-test of target against base.
type welch struct {
	diff float64 // mean(target) - mean(base)
	se   float64 // standard error of diff
	df   float64 // Welch–Satterthwaite degrees of freedom
	p    float64 // two-sided p-value
}

// welchTest compares the means of two samples of at least two values each,
// without assuming equal variances: instances of a canary and of a baseline
// need not vary alike (fewer, hotter canary pods vary more).
func welchTest(base, target []float64) welch {
	mb, vb := meanVar(base)
	mt, vt := meanVar(target)
	nb, nt := float64(len(base)), float64(len(target))
	w := welch{diff: mt - mb}
	eb, et := vb/nb, vt/nt
	w.se = math.Sqrt(eb + et)
	if w.se == 0 {
		// Every instance of both sides has the same share (0% or 100%, as
		// the root's total): a difference, if any, is exact.
		w.df = nb + nt - 2
		w.p = 1
		if w.diff != 0 {
			w.p = 0
		}
		return w
	}
	w.df = (eb + et) * (eb + et) / (eb*eb/(nb-1) + et*et/(nt-1))
	w.p = 2 * studentSF(math.Abs(w.diff)/w.se, w.df)
	return w
}

// interval is the two-sided confidence interval of diff at level conf.
func (w welch) interval(conf float64) (lo, hi float64) {
	h := studentQuantile(1-(1-conf)/2, w.df) * w.se
	return w.diff - h, w.diff + h
}

// mde is the smallest true difference this test, at two-sided level alpha,
// detects with the given power: with the same instance variance, a change
// of mde gives a t-statistic above the critical value that often.
func (w welch) mde(alpha, power float64) float64 {
	if w.se == 0 {
		return 0
	}
	return (studentQuantile(1-alpha/2, w.df) + studentQuantile(power, w.df)) * w.se
}

// meanVar returns the mean and the unbiased variance of x (len ≥ 2).
func meanVar(x []float64) (mean, variance float64) {
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	for _, v := range x {
		variance += (v - mean) * (v - mean)
	}
	return mean, variance / float64(len(x)-1)
}

// studentSF is P(T > t) for Student's t with df degrees of freedom, t ≥ 0.
func studentSF(t, df float64) float64 {
	if math.IsInf(t, 1) {
		return 0
	}
	return 0.5 * regIncBeta(df/(df+t*t), df/2, 0.5)
}

// studentQuantile is the t with P(T ≤ t) = p, for 0 < p < 1: Newton's
// method on the survival function, kept inside a bracket by bisection so
// that it converges for any df.
func studentQuantile(p, df float64) float64 {
	if p == 0.5 {
		return 0
	}
	if p < 0.5 {
		return -studentQuantile(1-p, df)
	}
	tail := 1 - p
	lo, hi := 0.0, 1.0
	for studentSF(hi, df) > tail && hi < 1e12 {
		lo, hi = hi, hi*2
	}
	x := (lo + hi) / 2
	for range 100 {
		f := studentSF(x, df) - tail // decreasing in x
		if f > 0 {
			lo = x
		} else {
			hi = x
		}
		next := x + f/studentPDF(x, df)
		if !(next > lo && next < hi) {
			next = (lo + hi) / 2
		}
		if math.Abs(next-x) <= 1e-12*math.Max(1, x) {
			return next
		}
		x = next
	}
	return x
}

// studentPDF is Student's t density.
func studentPDF(t, df float64) float64 {
	a, _ := math.Lgamma((df + 1) / 2)
	b, _ := math.Lgamma(df / 2)
	return math.Exp(a - b - 0.5*math.Log(df*math.Pi) - (df+1)/2*math.Log1p(t*t/df))
}

// regIncBeta is the regularized incomplete beta function I_x(a, b), by its
// continued fraction, which converges fast for x < (a+1)/(a+b+2); larger x
// use the symmetry I_x(a, b) = 1 - I_{1-x}(b, a).
func regIncBeta(x, a, b float64) float64 {
	switch {
	case x <= 0:
		return 0
	case x >= 1:
		return 1
	case x > (a+1)/(a+b+2):
		return 1 - regIncBeta(1-x, b, a)
	}
	lga, _ := math.Lgamma(a)
	lgb, _ := math.Lgamma(b)
	lgab, _ := math.Lgamma(a + b)
	front := math.Exp(a*math.Log(x) + b*math.Log1p(-x) - lga - lgb + lgab)
	return front * betaFraction(x, a, b) / a
}

// betaFraction evaluates the continued fraction of the incomplete beta
// function, 1/(1+ d1/(1+ d2/(1+ ...))), by Lentz's method.
func betaFraction(x, a, b float64) float64 {
	const tiny, eps = 1e-300, 1e-15
	c, d := 1.0, 1-(a+b)*x/(a+1)
	if math.Abs(d) < tiny {
		d = tiny
	}
	d = 1 / d
	f := d
	step := func(coef float64) {
		d = 1 + coef*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = 1 + coef/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		f *= c * d
	}
	for m := 1.0; m <= 1000; m++ {
		// The even term d_2m, then the odd term d_2m+1.
		step(m * (b - m) * x / ((a + 2*m - 1) * (a + 2*m)))
		before := f
		step(-(a + m) * (a + b + m) * x / ((a + 2*m) * (a + 2*m + 1)))
		if math.Abs(f/before-1) < eps {
			break
		}
	}
	return f
}

// bhAdjust returns Benjamini–Hochberg q-values of p: q_(i) is the smallest
// m/j·p_(j) over j ≥ i, at most 1. Rejecting q < α controls the false
// discovery rate at α, and under the global null the chance of any
// rejection at α.
func bhAdjust(p []float64) []float64 {
	m := len(p)
	order := make([]int, m)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(i, j int) int { return cmpFloat(p[i], p[j]) })
	q := make([]float64, m)
	running := 1.0
	for k := m - 1; k >= 0; k-- {
		i := order[k]
		running = math.Min(running, p[i]*float64(m)/float64(k+1))
		q[i] = running
	}
	return q
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
