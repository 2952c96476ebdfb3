package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/model"
	"github.com/flightrec/flightrec/server/store"
)

// testMergeByTable checks MergeByTable against the reference, group by
// group, over raw and rolled-up data (a range cutting through both), and
// the table's own promises: indexes in range, a group's stacks distinct.
func testMergeByTable(t *testing.T, open Backend) {
	s := open(t, t.TempDir())
	defer s.Close()
	f := newFleet(11)
	var ref reference
	for i := 0; i < 2*120; i += 3 { // two hours, a profile every 90 s per series
		var b model.Batch
		for n := 0; n < 4; n++ {
			ls := seriesLabels(fmt.Sprintf("n%d", n), "api", []string{"1", "2"}[n%2])
			if n == 3 {
				ls = labels.FromStrings("node", "n3", "service", "api") // no version label
			}
			b.Profiles = append(b.Profiles, f.profile(ls, base.Add(time.Duration(i)*30*time.Second), 30))
		}
		ref.add(b.Profiles...)
		mustAppend(t, s, &b)
	}
	if m, ok := s.(Maintainer); ok {
		if err := m.Maintain(context.Background(), base.Add(2*time.Hour+30*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range [][2]time.Duration{{0, 2 * time.Hour}, {17*time.Minute + 5*time.Second, 95 * time.Minute}} {
		q := store.Query{Type: "cpu", Matchers: []*labels.Matcher{eq("service", "api")}, Start: base.Add(r[0]), End: base.Add(r[1])}
		table, err := s.MergeByTable(context.Background(), q, []string{"version"})
		if err != nil {
			t.Fatal(err)
		}
		if len(table.Groups) != 3 {
			t.Fatalf("range %v: %d groups, want 3 (version 1, 2 and missing)", r, len(table.Groups))
		}
		for _, g := range table.Groups {
			v := g.Labels.Get("version")
			got, err := flattenGroup(table, g)
			if err != nil {
				t.Fatalf("range %v, group version=%s: %v", r, v, err)
			}
			want := ref.merge(store.Query{Type: "cpu", Matchers: []*labels.Matcher{eq("version", v)}, Start: q.Start, End: q.End})
			compare(t, fmt.Sprintf("range %v, group version=%s", r, v), got, want)
		}
	}
	empty, err := s.MergeByTable(context.Background(), store.Query{Type: "cpu", Matchers: []*labels.Matcher{eq("service", "none")},
		Start: base, End: base.Add(time.Hour)}, []string{"version"})
	if err != nil || empty == nil || len(empty.Groups) != 0 {
		t.Errorf("a selection of no series: %+v, %v; want an empty table", empty, err)
	}
}

// flattenGroup is a group's stacks by content, checking the table's
// indexes and that no stack comes twice.
func flattenGroup(t *store.StackTable, g store.TableGroup) (map[string]int64, error) {
	if len(g.Stack) != len(g.Value) {
		return nil, fmt.Errorf("%d stacks and %d values", len(g.Stack), len(g.Value))
	}
	out := map[string]int64{}
	seen := map[int32]bool{}
	for i, k := range g.Stack {
		if k < 0 || int(k) >= len(t.Stacks) {
			return nil, fmt.Errorf("stack index %d of %d", k, len(t.Stacks))
		}
		if seen[k] {
			return nil, fmt.Errorf("stack %d twice", k)
		}
		seen[k] = true
		for _, fi := range t.Stacks[k] {
			if fi < 0 || int(fi) >= len(t.Frames) {
				return nil, fmt.Errorf("frame index %d of %d", fi, len(t.Frames))
			}
		}
		out[stackKey(t.Frames, t.Stacks[k])] += g.Value[i]
	}
	return out, nil
}
