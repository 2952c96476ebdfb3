package diff

import (
	"errors"
	"strings"
	"testing"
)

func TestParseGate(t *testing.T) {
	tests := []struct {
		in, want string // want: the gate formatted back, or the error's text
		ok       bool
	}{
		{"", "self>0pp,total>0pp", true},
		{"self>2pp", "self>2pp", true},
		{" self > 2.5pp , total>10% ", "self>2.5pp,total>10%", true},
		{"total>0%", "total>0%", true},
		{"self>2", "has no unit", false},
		{"self<2pp", "want METRIC>LIMIT", false},
		{"cum>2pp", `unknown metric "cum"`, false},
		{"self>-1pp", "not a number", false},
		{"self>100pp", "not a number", false},
		{"self>NaN%", "not a number", false},
		{"self>2pp,", "want METRIC>LIMIT", false},
		{"self>2pp>3pp", "not a number", false},
	}
	for _, tc := range tests {
		g, err := ParseGate(tc.in)
		switch {
		case tc.ok && (err != nil || g.String() != tc.want):
			t.Errorf("ParseGate(%q) = %q, %v; want %q", tc.in, g, err, tc.want)
		case !tc.ok && (err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInput)):
			t.Errorf("ParseGate(%q) error %v, want an input error containing %q", tc.in, err, tc.want)
		}
	}
}

func TestGateFailing(t *testing.T) {
	res := &Result{Status: StatusOK, Changes: []Change{
		{Function: "a", Metric: Self, Stats: Stats{BaseShare: 0.05, Delta: 0.03, Verdict: Regression}},
		{Function: "a", Metric: Total, Stats: Stats{BaseShare: 0.05, Delta: 0.03, Verdict: Regression}, SameAsSelf: true},
		{Function: "b", Metric: Total, Stats: Stats{BaseShare: 0.40, Delta: 0.01, Verdict: Regression}},
		{Function: "c", Metric: Self, Stats: Stats{BaseShare: 0, Delta: 0.006, Verdict: Regression}},
		{Function: "d", Metric: Self, Stats: Stats{BaseShare: 0.10, Delta: 0.05, Verdict: NoEvidence}},
		{Function: "e", Metric: Self, Stats: Stats{BaseShare: 0.10, Delta: -0.05, Verdict: Improvement}},
	}}
	tests := []struct {
		gate string
		want string // failing function/metric pairs
	}{
		{"", "a/self a/total b/total c/self"},
		{"self>2pp", "a/self"},
		{"self>3pp", ""}, // a's estimate is not beyond 3 points
		{"total>2pp", "a/total"},
		{"total>2%", "a/total b/total"},
		{"self>50%", "a/self c/self"}, // c is new: an unbounded ratio
	}
	for _, tc := range tests {
		g, err := ParseGate(tc.gate)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range g.Failing(res) {
			got = append(got, c.Function+"/"+string(c.Metric))
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("gate %q fails %q, want %q", tc.gate, got, tc.want)
		}
	}
}
