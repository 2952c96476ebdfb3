package diff

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Gate decides whether a diff fails a deployment: it fails when some
// function regresses significantly (q < alpha) by more than a rule allows.
type Gate struct {
	Rules []Rule
}

// Rule is one threshold: METRIC>Npp (points of share) or METRIC>N%
// (relative to the base share).
type Rule struct {
	Metric Metric
	Limit  float64 // a fraction: 0.02 for 2pp or for 2%
	// Relative compares Delta/BaseShare instead of Delta.
	Relative bool
}

// DefaultGate fails on any significant regression, of self or total share.
const DefaultGate = "self>0pp,total>0pp"

// ParseGate parses comma-separated rules like "self>2pp,total>10%"; ""
// is DefaultGate.
func ParseGate(s string) (Gate, error) {
	if strings.TrimSpace(s) == "" {
		s = DefaultGate
	}
	var g Gate
	for _, part := range strings.Split(s, ",") {
		r, err := parseRule(strings.TrimSpace(part))
		if err != nil {
			return Gate{}, inputf("bad fail-on %q: %w", s, err)
		}
		g.Rules = append(g.Rules, r)
	}
	return g, nil
}

const ruleForm = `want METRIC>LIMIT with METRIC self or total and LIMIT in points of share (2pp) or relative to the base (10%), e.g. self>2pp,total>10%`

func parseRule(s string) (Rule, error) {
	metric, limit, ok := strings.Cut(s, ">")
	if !ok {
		return Rule{}, fmt.Errorf("rule %q: %s", s, ruleForm)
	}
	var r Rule
	switch m := Metric(strings.TrimSpace(metric)); m {
	case Self, Total:
		r.Metric = m
	default:
		return Rule{}, fmt.Errorf("rule %q: unknown metric %q: %s", s, metric, ruleForm)
	}
	limit = strings.TrimSpace(limit)
	num, rel := strings.CutSuffix(limit, "%")
	if !rel {
		var pp bool
		if num, pp = strings.CutSuffix(limit, "pp"); !pp {
			return Rule{}, fmt.Errorf("rule %q: limit %q has no unit: %s", s, limit, ruleForm)
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) || (!rel && v >= 100) {
		return Rule{}, fmt.Errorf("rule %q: limit %q is not a number of points from 0 to 100 or a percentage ≥ 0", s, limit)
	}
	r.Limit, r.Relative = v/100, rel
	return r, nil
}

// String formats the gate back into its syntax.
func (g Gate) String() string {
	parts := make([]string, len(g.Rules))
	for i, r := range g.Rules {
		unit := "pp"
		if r.Relative {
			unit = "%"
		}
		parts[i] = string(r.Metric) + ">" + strconv.FormatFloat(r.Limit*100, 'f', -1, 64) + unit
	}
	return strings.Join(parts, ",")
}

// Failing returns the changes that fail the gate: significant regressions
// whose estimated change exceeds a rule's limit.
func (g Gate) Failing(res *Result) []Change {
	out := []Change{} // a JSON list, never null
	if res.Status != StatusOK {
		return out
	}
	for _, c := range res.Changes {
		if c.Verdict != Regression {
			continue
		}
		for _, r := range g.Rules {
			if r.exceeded(c) {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

func (r Rule) exceeded(c Change) bool {
	if r.Metric != c.Metric {
		return false
	}
	if !r.Relative {
		return c.Delta > r.Limit
	}
	// A function absent from the base grew by an unbounded ratio.
	return c.BaseShare == 0 || c.Delta/c.BaseShare > r.Limit
}
