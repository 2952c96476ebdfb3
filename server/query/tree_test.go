package query

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/flightrec/flightrec/server/model"
)

func TestTop(t *testing.T) {
	// a recurses: a ← b ← a ← main counts a's 10 once in its total.
	set := &model.StackSet{
		Frames: []model.Frame{{Function: "main"}, {Function: "a"}, {Function: "b"}, {Mapping: "/lib/libz.so", Address: 0x10}, {Function: "a", Line: 99}},
		Stacks: [][]int32{{1, 2, 4, 0}, {2, 0}, {3, 1, 0}, {0}, {}},
		Values: []int64{10, 30, 5, 1, 2},
	}
	tests := []struct {
		order Order
		limit int
		want  []Function
	}{
		{BySelf, 0, []Function{{"b", 30, 40}, {"a", 10, 15}, {"libz.so+0x10", 5, 5}, {"main", 1, 46}}},
		{ByTotal, 0, []Function{{"main", 1, 46}, {"b", 30, 40}, {"a", 10, 15}, {"libz.so+0x10", 5, 5}}},
		{ByTotal, 2, []Function{{"main", 1, 46}, {"b", 30, 40}}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.order, tt.limit), func(t *testing.T) {
			top := NewTop(set, tt.order, tt.limit)
			if top.Total != 48 || top.Count != 4 {
				t.Errorf("total %d, count %d; want 48, 4", top.Total, top.Count)
			}
			if !slices.Equal(top.Functions, tt.want) {
				t.Errorf("functions\n got %v\nwant %v", top.Functions, tt.want)
			}
		})
	}
}

func TestTopEmpty(t *testing.T) {
	top := NewTop(&model.StackSet{}, BySelf, 10)
	if top.Functions == nil || len(top.Functions) != 0 || top.Total != 0 {
		t.Errorf("empty top %+v: want a non-nil empty list (JSON [])", top)
	}
}

func TestParseOrder(t *testing.T) {
	for in, want := range map[string]Order{"": BySelf, "self": BySelf, "total": ByTotal} {
		if got, err := ParseOrder(in); err != nil || got != want {
			t.Errorf("ParseOrder(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseOrder("cum"); err == nil || !strings.Contains(err.Error(), "want self or total") {
		t.Errorf("ParseOrder(cum) error %v", err)
	}
}

// paths renders a flamegraph as "root;child;... self/total" lines in node
// order, checking on the way the structural invariants.
func paths(t *testing.T, fg *Flamegraph) []string {
	t.Helper()
	n := fg.Nodes
	if len(n.Name) == 0 || n.Parent[0] != -1 || fg.Names[n.Name[0]] != RootName || fg.Total != n.Total[0] {
		t.Fatalf("bad root: %+v", fg)
	}
	childSum := make([]int64, len(n.Name))
	path := make([]string, len(n.Name))
	var out []string
	for i := range n.Name {
		path[i] = fg.Names[n.Name[i]]
		if p := n.Parent[i]; p >= 0 {
			if int(p) >= i {
				t.Fatalf("node %d's parent %d comes after it: not pre-order", i, p)
			}
			childSum[p] += n.Total[i]
			path[i] = path[p] + ";" + path[i]
		}
		out = append(out, fmt.Sprintf("%s %d/%d", path[i], n.Self[i], n.Total[i]))
	}
	for i := range n.Name {
		if n.Total[i] != n.Self[i]+childSum[i] {
			t.Errorf("node %s: total %d != self %d + children %d", path[i], n.Total[i], n.Self[i], childSum[i])
		}
	}
	return out
}

func TestFlamegraph(t *testing.T) {
	fg := NewFlamegraph(sample(), 0)
	want := []string{
		"total 0/175",
		"total;main.main 5/175",
		"total;main.main;main.work 10/170",
		"total;main.main;main.work;libc.so.6+0x9a3f0 40/40",
		"total;main.main;main.work;main.decode 20/120",
		"total;main.main;main.work;main.decode;main.parse 100/100",
	}
	if got := paths(t, fg); !slices.Equal(got, want) {
		t.Errorf("flamegraph\n got %q\nwant %q", got, want)
	}
	if fg.Truncated {
		t.Error("untruncated graph says truncated")
	}
}

// TestFlamegraphTruncated builds a wide tree and expects the limit kept,
// small nodes folded into "other", and totals still adding up.
func TestFlamegraphTruncated(t *testing.T) {
	set := &model.StackSet{Frames: []model.Frame{{Function: "main"}}}
	for i := 1; i <= 100; i++ {
		set.Frames = append(set.Frames, model.Frame{Function: fmt.Sprintf("f%03d", i)})
		set.Stacks = append(set.Stacks, []int32{int32(i), 0})
		set.Values = append(set.Values, int64(i))
	}
	for _, max := range []int{2, 3, 10, 50, 101, 102} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			fg := NewFlamegraph(set, max)
			got := paths(t, fg)
			if len(got) > max {
				t.Errorf("%d nodes, limit %d", len(got), max)
			}
			if fg.Total != 5050 {
				t.Errorf("total %d, want 5050", fg.Total)
			}
			truncated := max < 102
			if fg.Truncated != truncated || slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, OtherName) }) != truncated {
				t.Errorf("limit %d: truncated %v, nodes %q", max, fg.Truncated, got)
			}
			if max == 10 && (!slices.Contains(got, "total;main;f100 100/100") || slices.Contains(got, "total;main;f001 1/1")) {
				t.Errorf("limit 10 kept the wrong nodes: %q", got)
			}
		})
	}
}

func TestFlamegraphEmpty(t *testing.T) {
	fg := NewFlamegraph(&model.StackSet{}, 100)
	if got := paths(t, fg); !slices.Equal(got, []string{"total 0/0"}) {
		t.Errorf("empty flamegraph %q", got)
	}
}
