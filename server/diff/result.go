package diff

import (
	"cmp"
	"math"
	"slices"
)

// Status says whether a diff could be tested.
type Status string

const (
	StatusOK Status = "ok"
	// StatusInconclusive: too few instances on a side for a variance across
	// instances; nothing is tested.
	StatusInconclusive Status = "inconclusive"
)

// Metric is which share of a function a change is about.
type Metric string

const (
	Self  Metric = "self"  // stacks the function is the leaf of (pprof's flat)
	Total Metric = "total" // stacks containing it (pprof's cum)
)

// Verdict is what a test concluded.
type Verdict string

const (
	Regression  Verdict = "regression"  // the target spends significantly more share
	Improvement Verdict = "improvement" // significantly less
	NoEvidence  Verdict = "no_evidence" // not significant: read with mde
)

// Result is a comparison. Shares, differences, intervals and effects are
// fractions of each instance's total (0.02 is 2 points), averaged over the
// instances of a side.
type Result struct {
	Status  Status `json:"status"`
	Message string `json:"message,omitempty"`
	// InstanceBy says which labels told instances apart.
	InstanceBy string      `json:"instance_by"`
	Base       SideSummary `json:"base"`
	Target     SideSummary `json:"target"`
	Alpha      float64     `json:"alpha"`
	MinShare   float64     `json:"min_share"`
	// Tested is the number of distinct tests in the Benjamini–Hochberg
	// family, functions and call paths together (a leaf-only function's
	// total repeats its self test).
	Tested  int      `json:"tested"`
	Changes []Change `json:"changes"`
	// Paths are the call paths tested, ranked as Changes.
	Paths []PathChange `json:"paths"`
}

// SideSummary describes one side: what was read, and its instances.
type SideSummary struct {
	Selector  string   `json:"selector"` // with the type: cpu{track="canary"}
	From      int64    `json:"from_ms"`  // the range, Unix milliseconds
	To        int64    `json:"to_ms"`
	Instances int      `json:"instances"`
	Total     int64    `json:"total"`  // sum of values over the instances
	Labels    []string `json:"labels"` // each instance's labels, sorted
}

// Change is one tested function and metric, target against base.
type Change struct {
	Function string `json:"function"`
	Metric   Metric `json:"metric"`
	Stats
	// SameAsSelf marks a total that equals the self share on every
	// instance (a function that calls nothing): the self row's test.
	SameAsSelf bool `json:"same_as_self,omitempty"`
}

// PathChange is one tested call path: the stacks that start, at the root,
// with Frames, as one node of a flame graph.
type PathChange struct {
	Frames []string `json:"frames"` // function names, root first
	Stats
	// SameAs names the row whose test this one repeats, its shares being
	// equal on every instance: "fn total" (every stack through the path
	// goes through fn, and every stack through fn through the path), "fn
	// self", or another path, root;...;leaf.
	SameAs string `json:"same_as,omitempty"`
}

// Stats are a test's figures, of a function or a call path.
type Stats struct {
	BaseShare   float64 `json:"base_share"`   // mean over base instances
	TargetShare float64 `json:"target_share"` // mean over target instances
	Delta       float64 `json:"delta"`        // TargetShare - BaseShare
	// Ratio is TargetShare/BaseShare, null when BaseShare is 0.
	Ratio  *float64 `json:"ratio"`
	CILow  float64  `json:"ci_low"` // 95% confidence interval of Delta
	CIHigh float64  `json:"ci_high"`
	P      float64  `json:"p"` // Welch's t-test across instances, two-sided
	Q      float64  `json:"q"` // Benjamini–Hochberg over the tested family
	// MDE is the smallest |Delta| this test flags with 80% probability at
	// the family's Bonferroni level (alone among changes): "no evidence"
	// says little about changes smaller than it.
	MDE     float64 `json:"mde"`
	Verdict Verdict `json:"verdict"`
	// Constant marks a share equal on every instance of both sides (the
	// root's 100% total): nothing to test, outside the family, q = 1.
	Constant bool `json:"constant,omitempty"`
}

// ratio is a/b, nil when b is 0 (JSON has no infinity).
func ratio(a, b float64) *float64 {
	if b == 0 {
		return nil
	}
	r := a / b
	return &r
}

// rank orders changes for reading: regressions, then improvements, then
// the rest; within each by q, then by the size of the change.
func rank(changes []Change) {
	slices.SortStableFunc(changes, func(a, b Change) int {
		return cmp.Or(
			compareStats(&a.Stats, &b.Stats),
			cmp.Compare(a.Function, b.Function),
			cmp.Compare(a.Metric, b.Metric),
		)
	})
}

// rankPaths orders paths as rank does changes, then the shorter first.
func rankPaths(paths []PathChange) {
	slices.SortStableFunc(paths, func(a, b PathChange) int {
		return cmp.Or(
			compareStats(&a.Stats, &b.Stats),
			cmp.Compare(len(a.Frames), len(b.Frames)),
			slices.Compare(a.Frames, b.Frames),
		)
	})
}

func compareStats(a, b *Stats) int {
	order := map[Verdict]int{Regression: 0, Improvement: 1, NoEvidence: 2}
	return cmp.Or(
		cmp.Compare(order[a.Verdict], order[b.Verdict]),
		cmp.Compare(a.Q, b.Q),
		cmp.Compare(math.Abs(b.Delta), math.Abs(a.Delta)),
	)
}
