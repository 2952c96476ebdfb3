package diff

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/model"
	"github.com/flightrec/flightrec/server/store"
)

// fakeStore answers MergeBy with the groups of the track the query's
// first matcher names; the rest of store.Store is not used by Run.
type fakeStore struct {
	store.Store
	tracks map[string][]store.Group
	err    error
	by     [][]string
}

func (f *fakeStore) MergeBy(_ context.Context, q store.Query, by []string) ([]store.Group, error) {
	f.by = append(f.by, by)
	if f.err != nil {
		return nil, f.err
	}
	return f.tracks[q.Matchers[0].Value], nil
}

// MergeByTable answers from the same groups, as a store would.
func (f *fakeStore) MergeByTable(ctx context.Context, q store.Query, by []string) (*store.StackTable, error) {
	groups, err := f.MergeBy(ctx, q, by)
	if err != nil {
		return nil, err
	}
	return tableOf(groups)
}

func trackQuery(typ, track string) store.Query {
	return store.Query{Type: typ, Matchers: []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "track", track)}}
}

// group is an instance running main → handle → {parse, alloc}: parse and
// alloc take the given values (leaves), handle 10 of its own.
func group(ls labels.Labels, parse, alloc int64) store.Group {
	frames := []model.Frame{{Function: "main"}, {Function: "handle"}, {Function: "parse"}, {Function: "alloc"}}
	return store.Group{Labels: ls, Stacks: &model.StackSet{Frames: frames,
		Stacks: [][]int32{{2, 1, 0}, {3, 1, 0}, {1, 0}}, Values: []int64{parse, alloc, 10}}}
}

func pods(prefix string, allocs ...int64) []store.Group {
	var out []store.Group
	for i, a := range allocs {
		out = append(out, group(labels.FromStrings("pod", prefix+string(rune('a'+i))), 90-a, a))
	}
	return out
}

func TestRunBadInput(t *testing.T) {
	full := map[string][]store.Group{"base": pods("b", 10, 11, 12), "canary": pods("c", 20, 21, 22)}
	broken := &model.StackSet{Frames: []model.Frame{{Function: "f"}}, Stacks: [][]int32{{5}}, Values: []int64{1}}
	tests := []struct {
		name         string
		base, target store.Query
		tracks       map[string][]store.Group
		storeErr     error
		want         string
		input        bool // an ErrInput
	}{
		{"disjoint types", trackQuery("cpu", "base"), trackQuery("alloc_space", "canary"), full, nil,
			"base is cpu profiles and target alloc_space", true},
		{"empty base", trackQuery("cpu", "nope"), trackQuery("cpu", "canary"), full, nil, "base: no profiles match", true},
		{"empty target", trackQuery("cpu", "base"), trackQuery("cpu", "nope"), full, nil, "target: no profiles match", true},
		{"unknown type", trackQuery("cpu", "base"), trackQuery("cpu", "canary"), nil, store.ErrUnknownType, "base: no profiles match", true},
		{"store failure", trackQuery("cpu", "base"), trackQuery("cpu", "canary"), nil, errors.New("disk on fire"), "merge by pod,pid,node: disk on fire", false},
		{"invalid stacks", trackQuery("cpu", "base"), trackQuery("cpu", "canary"),
			map[string][]store.Group{"base": {{Labels: labels.FromStrings("pod", "x"), Stacks: broken}}, "canary": pods("c", 1, 2, 3)}, nil,
			"references frame 5 of 1", false},
	}
	for _, tc := range tests {
		st := &fakeStore{tracks: tc.tracks, err: tc.storeErr}
		_, err := Run(context.Background(), st, Request{Base: tc.base, Target: tc.target}, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, ErrInput) != tc.input {
			t.Errorf("%s: error %v, want one containing %q (input error %v)", tc.name, err, tc.want, tc.input)
		}
	}
}

func TestRunInconclusive(t *testing.T) {
	st := &fakeStore{tracks: map[string][]store.Group{"base": pods("b", 10, 11), "canary": pods("c", 20, 21, 22)}}
	res, err := Run(context.Background(), st, Request{Base: trackQuery("cpu", "base"), Target: trackQuery("cpu", "canary")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := "inconclusive: 2 base and 3 target instances, need ≥ 3 a side"
	if res.Status != StatusInconclusive || !strings.HasPrefix(res.Message, want) || len(res.Changes) != 0 {
		t.Errorf("status %s, message %q, %d changes; want inconclusive, %q", res.Status, res.Message, len(res.Changes), want)
	}
	if g, _ := ParseGate(""); len(g.Failing(res)) != 0 {
		t.Error("an inconclusive diff fails the gate; it has no verdict")
	}
}

// TestRunKnown checks the numbers on a fleet small enough to follow: alloc
// goes from 10–12% to 20–22% of each instance, at parse's expense.
func TestRunKnown(t *testing.T) {
	st := &fakeStore{tracks: map[string][]store.Group{"base": pods("b", 10, 11, 12), "canary": pods("c", 20, 21, 22)}}
	res, err := Run(context.Background(), st, Request{Base: trackQuery("cpu", "base"), Target: trackQuery("cpu", "canary")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != StatusOK || res.Base.Instances != 3 || res.Target.Instances != 3 || res.Base.Total != 300 || res.InstanceBy != AutoInstance {
		t.Fatalf("result %+v", res)
	}
	// Seven rows: self of parse and alloc, the family; handle's self (10%
	// everywhere) and the totals of main and handle (100%) are constant,
	// outside it; the totals of parse and alloc repeat their self tests.
	if res.Tested != 2 || len(res.Changes) != 7 {
		t.Errorf("tested %d with %d changes, want 2 and 7: %+v", res.Tested, len(res.Changes), res.Changes)
	}
	byKey := map[string]Change{}
	for _, c := range res.Changes {
		byKey[c.Function+" "+string(c.Metric)] = c
	}
	alloc := byKey["alloc self"]
	if alloc.Verdict != Regression || math.Abs(alloc.BaseShare-0.11) > 1e-12 || math.Abs(alloc.Delta-0.10) > 1e-12 ||
		alloc.CILow <= 0 || alloc.CILow > alloc.Delta || alloc.Q < alloc.P || *alloc.Ratio < 1.9 {
		t.Errorf("alloc self %+v", alloc)
	}
	if c := byKey["alloc total"]; !c.SameAsSelf || c.Q != alloc.Q || c.Verdict != Regression {
		t.Errorf("alloc total %+v, want the self test's", c)
	}
	if c := byKey["parse self"]; c.Verdict != Improvement || math.Abs(c.Delta+0.10) > 1e-12 {
		t.Errorf("parse self %+v", c)
	}
	// The call paths are the functions' tests again: main;handle;alloc
	// holds exactly alloc's stacks, main and main;handle all of them.
	byPath := map[string]PathChange{}
	for _, p := range res.Paths {
		byPath[joinFrames(p.Frames)] = p
	}
	if p := byPath["main;handle;alloc"]; len(res.Paths) != 4 || p.SameAs != "alloc self" || p.Q != alloc.Q || p.Verdict != Regression {
		t.Errorf("paths %+v, want 4 with main;handle;alloc repeating alloc self", res.Paths)
	}
	if p := byPath["main;handle"]; !strings.HasSuffix(p.SameAs, " total") || !p.Constant {
		t.Errorf("main;handle %+v, want the constant row of main's or handle's total", p)
	}
	if res.Paths[0].Verdict != Regression || strings.Join(res.Paths[0].Frames, ";") != "main;handle;alloc" {
		t.Errorf("paths not ranked regressions first: %+v", res.Paths)
	}
	if c := byKey["main total"]; c.Verdict != NoEvidence || c.Q != 1 || c.Delta != 0 {
		t.Errorf("main total %+v", c)
	}
	if res.Changes[0].Verdict != Regression || res.Changes[len(res.Changes)-1].Verdict != NoEvidence {
		t.Errorf("not ranked regressions first: %+v", res.Changes)
	}
}

// TestInstances checks what counts as one instance.
func TestInstances(t *testing.T) {
	ls := labels.FromStrings
	groups := []store.Group{
		group(ls("node", "n1", "pid", "1", "pod", "api-a"), 5, 5),
		group(ls("node", "n1", "pid", "2", "pod", "api-a"), 5, 5), // restarted: the same pod
		group(ls("node", "n2", "pid", "1"), 5, 5),
		group(ls("node", "n3", "pid", "1"), 0, 0), // handle's 10 only
	}
	tests := []struct {
		auto bool
		want []string
	}{
		// labels=total/rows of the diff's instance: a restarted pod sums
		// its groups, zero values are no rows.
		{true, []string{`{node="n2", pid="1"}=20/3`, `{node="n3", pid="1"}=10/1`, `{pod="api-a"}=40/6`}},
		{false, []string{`{node="n1", pid="1", pod="api-a"}=20/3`, `{node="n1", pid="2", pod="api-a"}=20/3`, `{node="n2", pid="1"}=20/3`, `{node="n3", pid="1"}=10/1`}},
	}
	for _, tc := range tests {
		s, err := summarize(groups, tc.auto) // explain's and bisect's instances
		if err != nil {
			t.Fatal(err)
		}
		table, err := tableOf(groups)
		if err != nil {
			t.Fatal(err)
		}
		f, err := newFleet(table, tc.auto, newNames()) // the diff's
		if err != nil {
			t.Fatal(err)
		}
		var got, gotFleet []string
		for _, inst := range s.instances {
			got = append(got, inst.labels.String())
		}
		for _, inst := range f.instances {
			gotFleet = append(gotFleet, fmt.Sprint(inst.labels.String(), "=", inst.total, "/", len(inst.stack)))
		}
		for i := range got {
			got[i] += fmt.Sprint("=", s.instances[i].total, "/", len(f.instances[i].stack))
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") || strings.Join(gotFleet, " ") != strings.Join(tc.want, " ") {
			t.Errorf("auto %v: instances %q (explain) and %q (diff), want %q", tc.auto, got, gotFleet, tc.want)
		}
	}
	st := &fakeStore{tracks: map[string][]store.Group{"t": groups}}
	res, err := Run(context.Background(), st, Request{Base: trackQuery("cpu", "t"), Target: trackQuery("cpu", "t"), InstanceBy: []string{"node"}}, Options{})
	if err != nil || res.InstanceBy != "node" || strings.Join(st.by[0], ",") != "node" {
		t.Errorf("explicit instance_by: %v, result by %q, store asked by %v", err, res.InstanceBy, st.by)
	}
}
