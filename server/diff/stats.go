package diff

import (
	"math"
	"math/rand/v2"
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

// permTest is a permutation test of Welch's t between a group and the
// other instances. Under the null that the function's share does not
// depend on the group, the instances are exchangeable: every relabelling
// that keeps the group's size was as likely as the one observed, so the
// share of relabellings whose |t| reaches the observed one is a p-value
// valid at any group size, however skewed the shares. Welch's t, not the
// difference of means, is the statistic because it keeps the test right
// as the groups grow when only their spreads differ (Janssen 1997): a
// noisier node is not a slower one.
type permTest struct {
	x     []float64 // all values, centred on their mean: the group's first
	k     int       // the group's size
	sum   sums      // over all values
	sumG  float64   // Σ x over the group
	obs   draw      // the observed labelling, as a draw
	draws []draw    // the relabellings
	exact bool      // draws are every labelling (observed included)
}

// draw is a set of min(k, n-k) instances given the smaller side's role:
// its sums, and how much of the actual group is in it, which is what
// shifting the group by δ changes (interval).
type draw struct {
	sums
	sumG float64 // Σ x over the set ∩ group
	inG  int     // |set ∩ group|
}

type sums struct{ s, ss float64 }

// newPermTest draws b relabellings with a generator seeded by the values
// themselves, so the same data always give the same p-value, or takes
// every labelling when there are no more than b.
func newPermTest(group, other []float64, b int) *permTest {
	p := &permTest{x: slices.Concat(group, other), k: len(group)}
	m := mean(p.x)
	for i := range p.x {
		p.x[i] -= m
	}
	all := make([]int, len(p.x))
	for i := range all {
		all[i] = i
	}
	p.sum = p.sumsOf(all).sums
	p.sumG = p.sumsOf(all[:p.k]).s
	small := p.small()
	p.obs = p.sumsOf(all[p.k:])
	if p.drawsGroup() {
		p.obs = p.sumsOf(all[:p.k])
	}
	if c := binomial(len(p.x), small, b); c <= b {
		p.exact, p.draws = true, p.enumerate(small, c)
		return p
	}
	p.draws = p.sample(small, b, rand.New(rand.NewPCG(seedOf(p.x, p.k), uint64(b))))
	return p
}

// small is the size of the smaller side, the one draws pick.
func (p *permTest) small() int { return min(p.k, len(p.x)-p.k) }

func (p *permTest) sumsOf(idx []int) draw {
	var d draw
	for _, i := range idx {
		v := p.x[i]
		d.s += v
		d.ss += v * v
		if i < p.k {
			d.sumG += v
			d.inG++
		}
	}
	return d
}

// sample draws b random sets of s indices, by partial Fisher–Yates
// shuffles of one index array.
func (p *permTest) sample(s, b int, rng *rand.Rand) []draw {
	n := len(p.x)
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	out := make([]draw, b)
	for d := range out {
		for j := range s {
			r := j + rng.IntN(n-j)
			idx[j], idx[r] = idx[r], idx[j]
		}
		out[d] = p.sumsOf(idx[:s])
	}
	return out
}

// enumerate takes every set of s indices, c of them, in lexicographic
// order.
func (p *permTest) enumerate(s, c int) []draw {
	out := make([]draw, 0, c)
	idx := make([]int, s)
	for i := range idx {
		idx[i] = i
	}
	n := len(p.x)
	for {
		out = append(out, p.sumsOf(idx))
		i := s - 1
		for i >= 0 && idx[i] == n-s+i {
			i--
		}
		if i < 0 {
			return out
		}
		idx[i]++
		for j := i + 1; j < s; j++ {
			idx[j] = idx[j-1] + 1
		}
	}
}

// binomial is n choose k, or limit+1 once it exceeds limit.
func binomial(n, k, limit int) int {
	c := 1
	for i := 1; i <= k; i++ {
		c = c * (n - k + i) / i // exact: a product of i consecutive integers
		if c > limit {
			return limit + 1
		}
	}
	return c
}

// seedOf hashes the values and the group's size (FNV-1a).
func seedOf(x []float64, k int) uint64 {
	h := uint64(14695981039346656037)
	mix := func(v uint64) {
		for range 8 {
			h = (h ^ (v & 0xff)) * 1099511628211
			v >>= 8
		}
	}
	mix(uint64(k))
	for _, v := range x {
		mix(math.Float64bits(v))
	}
	return h
}

// t2 is Welch's t², group minus others, of a labelling once the group is
// shifted by -delta (y = x - delta on the group's instances), as the
// squared difference of means and its variance: a ratio left undivided,
// so that comparing two is a product, not a division and a square root,
// and a zero variance (equal values) needs no case of its own.
func (p *permTest) t2(d draw, delta float64) (diff2, variance float64) {
	n, k := len(p.x), float64(p.k)
	set := sums{d.s - delta*float64(d.inG), d.ss - 2*delta*d.sumG + delta*delta*float64(d.inG)}
	all := sums{p.sum.s - delta*k, p.sum.ss - 2*delta*p.sumG + delta*delta*k}
	rest := sums{all.s - set.s, all.ss - set.ss}
	ms, vs := meanVarOf(set, p.small())
	mr, vr := meanVarOf(rest, n-p.small())
	diff := ms - mr
	return diff * diff, vs/float64(p.small()) + vr/float64(n-p.small())
}

// absT is |t| from t2: +Inf when neither side varies but the means differ.
func absT(diff2, variance float64) float64 {
	if diff2 == 0 {
		return 0
	}
	return math.Sqrt(diff2 / variance)
}

// drawsGroup says whether a draw's set plays the group (else the others;
// |t| does not depend on which side is which).
func (p *permTest) drawsGroup() bool { return p.k <= len(p.x)-p.k }

// meanVarOf is the mean and unbiased variance of n values from their
// sums; a variance within rounding of zero is zero, so that equal values
// do not make a t out of rounding noise.
func meanVarOf(s sums, n int) (mean, variance float64) {
	mean = s.s / float64(n)
	variance = (s.ss - s.s*mean) / float64(n-1)
	if variance <= 1e-12*s.ss/float64(n) {
		variance = 0
	}
	return mean, variance
}

// pValue is the two-sided p-value of the group shifted by -delta: the
// share of labellings, the observed one counted in, whose |t| reaches the
// observed |t|.
func (p *permTest) pValue(delta float64) float64 {
	n := p.reaching(delta, len(p.draws))
	if p.exact {
		n = max(n, 1) // the observed, should rounding have missed it
	}
	return p.tailP(n)
}

// rejects says whether pValue(delta) ≤ level, counting no further than
// that needs.
func (p *permTest) rejects(delta, level float64) bool {
	// The most draws that may reach the observed |t| (tailP ≤ level).
	allowed, least := int(level*float64(len(p.draws)+1))-1, 0
	if p.exact {
		allowed, least = int(level*float64(len(p.draws))), 1 // the observed is a draw
	}
	return allowed >= least && p.reaching(delta, allowed+1) <= allowed
}

// reaching counts the draws whose |t| reaches the observed one (within
// rounding, as sums taken in another order differ), stopping at limit.
func (p *permTest) reaching(delta float64, limit int) int {
	od, ov := p.t2(p.obs, delta)
	od *= 1 - 1e-9
	n := 0
	for _, d := range p.draws {
		// |t| ≥ |t_obs|, as d²/v ≥ od/ov without dividing.
		if dd, dv := p.t2(d, delta); dd*ov >= od*dv {
			if n++; n >= limit {
				return n
			}
		}
	}
	return n
}

// interval is the shifts of the group the test does not reject at level
// 1-conf: the confidence interval of the difference that the test itself
// implies, under a shift model (the group is the others moved by δ). Its
// ends are where the p-value crosses 1-conf, searched outward from the
// estimate, where p is 1; a difference of shares lies within ±1.
func (p *permTest) interval(conf float64, w welch) (lo, hi float64) {
	return p.bound(1-conf, w, -1), p.bound(1-conf, w, 1)
}

func (p *permTest) bound(level float64, w welch, dir float64) float64 {
	in, step := w.diff, math.Max(w.se, 1e-6)
	out := in + dir*step
	for !p.rejects(out, level) {
		if math.Abs(out-w.diff) > 2 {
			return dir // no shift is rejected: too few labellings
		}
		in, step = out, 2*step
		out = in + dir*step
	}
	// To a hundredth of the standard error: below what is printed.
	for tol := 1e-2 * step; math.Abs(out-in) > tol; {
		if mid := (in + out) / 2; p.rejects(mid, level) {
			out = mid
		} else {
			in = mid
		}
	}
	return max(-1, min(1, (in+out)/2))
}

// mde is Welch's MDE with the critical value taken from the labellings:
// the smallest |t| among them that an observed one would need to reach
// p ≤ level, ties counted. Where none can (3 instances against 3 have 20
// labellings, so p ≥ 0.1), no change is detectable and the MDE is 1, the
// whole range of a share.
func (p *permTest) mde(level, power float64, w welch) float64 {
	if w.se == 0 {
		return 0
	}
	top := p.largest(int(level*float64(len(p.draws)+1)) + 1)
	crit := math.Inf(1)
	for j := 0; j < len(top); {
		end := j + 1 // past the ties of top[j]
		for end < len(top) && top[end] >= top[j]*(1-1e-9) {
			end++
		}
		// A tie group that reaches the end of top may go on beyond it,
		// but then it is already more than the level allows.
		if end == len(top) || p.tailP(end) > level {
			break
		}
		crit, j = top[j], end
	}
	if math.IsInf(crit, 1) {
		return 1
	}
	return min(1, (crit+studentQuantile(power, w.df))*w.se)
}

// largest is the n largest |t| of the draws, largest first: the few a
// critical value at a small level needs, without sorting them all.
func (p *permTest) largest(n int) []float64 {
	top := make([]float64, 0, n+1)
	for _, d := range p.draws {
		v := absT(p.t2(d, 0))
		if len(top) == n && v <= top[n-1] {
			continue
		}
		i, _ := slices.BinarySearchFunc(top, v, func(a, b float64) int { return cmpFloat(b, a) })
		top = slices.Insert(top, i, v)
		if len(top) > n {
			top = top[:n]
		}
	}
	return top
}

// tailP is the p-value of an observed |t| that n of the draws reach.
func (p *permTest) tailP(n int) float64 {
	if p.exact { // the observed labelling is among the draws
		return float64(n) / float64(len(p.draws))
	}
	return float64(n+1) / float64(len(p.draws)+1)
}

// permutations is how many relabellings each test of a family of m takes:
// enough that the smallest p-value, 1/(B+1), survives Benjamini–Hochberg
// over the family with a margin of 10 (q ≤ alpha/10), and the MDE's
// critical value rests on 10 of them; at least 2000 for the interval's
// ends, at most 100,000 to bound the time of large families.
func permutations(m int, alpha float64) int {
	return min(max(int(math.Ceil(10*float64(m)/alpha)), 2000), 100_000)
}
