package query

import (
	"cmp"
	"slices"

	"github.com/flightrec/flightrec/server/model"
)

// Flamegraph is a call tree in columnar form, cheap to encode as JSON and to
// render: node i is named Names[Nodes.Name[i]], its parent is node
// Nodes.Parent[i] (-1 for the root, node 0, named "total"). Nodes are in
// depth-first pre-order and siblings sorted by name ("other" last), so a
// node's subtree is the nodes after it up to the next one of its depth or
// less, and the picture keeps its layout as the time range moves.
type Flamegraph struct {
	Names []string `json:"names"`
	Total int64    `json:"total"`
	Nodes Nodes    `json:"nodes"`
	// Truncated reports that small nodes were folded into "other" nodes to
	// stay within the node limit.
	Truncated bool `json:"truncated"`
}

// Nodes are a Flamegraph's nodes: Total[i] = Self[i] + the sum of the Total
// of node i's children.
type Nodes struct {
	Name   []int32 `json:"name"`
	Parent []int32 `json:"parent"`
	Self   []int64 `json:"self"`
	Total  []int64 `json:"total"`
}

// Names of the synthetic nodes.
const (
	RootName  = "total"
	OtherName = "other"
)

// NewFlamegraph builds the call tree of set, merging call paths with the
// same function names. When the tree has more than maxNodes nodes (maxNodes
// > 0), the nodes of smallest total are dropped and each parent that lost
// children gets one "other" child holding their sum, so the totals still
// add up and the result has at most max(maxNodes, 2) nodes.
func NewFlamegraph(set *model.StackSet, maxNodes int) *Flamegraph {
	t := buildTree(set)
	fg := &Flamegraph{Names: t.names}
	if maxNodes <= 0 || len(t.name) <= maxNodes {
		fg.Nodes = Nodes{Name: t.name, Parent: t.parent, Self: t.self, Total: t.total}
	} else {
		fg.Names = append(fg.Names, OtherName)
		fg.Nodes = t.truncate(t.largest(max(maxNodes, 2)), int32(len(fg.Names)-1))
		fg.Truncated = true
	}
	fg.Total = fg.Nodes.Total[0]
	return fg
}

// tree is a call tree in pre-order, siblings sorted by name.
type tree struct {
	names  []string
	name   []int32
	parent []int32
	self   []int64
	total  []int64
}

// buildTree sorts the stacks, root first, by their frames' names: call
// paths sharing a prefix are then adjacent and in the order a pre-order
// walk with sorted siblings visits them, so the tree comes out in one pass
// without looking nodes up.
func buildTree(set *model.StackSet) *tree {
	names, rank := sortedFrameNames(set)
	var n int
	for _, st := range set.Stacks {
		n += len(st)
	}
	// At most a node per frame of each stack, and the root.
	t := &tree{names: names, name: make([]int32, 0, n+1), parent: make([]int32, 0, n+1),
		self: make([]int64, 0, n+1), total: make([]int64, 0, n+1)}
	flat := make([]int32, 0, n)
	paths := make([][]int32, len(set.Stacks))
	for i, st := range set.Stacks {
		start := len(flat)
		for d := len(st) - 1; d >= 0; d-- { // stacks are leaf first
			flat = append(flat, rank[st[d]])
		}
		paths[i] = flat[start:]
	}
	order := make([]int, len(paths))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return slices.Compare(paths[a], paths[b]) })

	t.add(-1, int32(slices.Index(names, RootName)))
	path := []int32{0} // nodes of the previous call path, root first
	var prev []int32
	for _, i := range order {
		p, v := paths[i], set.Values[i]
		c := commonPrefix(prev, p)
		path = path[:c+1]
		for _, name := range p[c:] {
			path = append(path, t.add(path[len(path)-1], name))
		}
		for _, node := range path {
			t.total[node] += v
		}
		t.self[path[len(path)-1]] += v
		prev = p
	}
	return t
}

// sortedFrameNames returns the display names, with RootName, sorted, and
// each frame's index among them.
func sortedFrameNames(set *model.StackSet) ([]string, []int32) {
	nt := newNameTable()
	nt.intern(RootName)
	ids := nt.frames(set)
	byName := make([]int32, len(nt.names))
	for i := range byName {
		byName[i] = int32(i)
	}
	slices.SortFunc(byName, func(a, b int32) int { return cmp.Compare(nt.names[a], nt.names[b]) })
	rankOf := make([]int32, len(byName))
	names := make([]string, len(byName))
	for r, id := range byName {
		rankOf[id] = int32(r)
		names[r] = nt.names[id]
	}
	for i, id := range ids {
		ids[i] = rankOf[id]
	}
	return names, ids
}

func commonPrefix(a, b []int32) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

func (t *tree) add(parent, name int32) int32 {
	t.name = append(t.name, name)
	t.parent = append(t.parent, parent)
	t.self = append(t.self, 0)
	t.total = append(t.total, 0)
	return int32(len(t.name) - 1)
}

// largest picks the nodes of largest total, as many as fit in n with the
// "other" nodes their dropped siblings cause. Totals never grow from parent
// to child, and of equal totals the nodes first in pre-order are picked,
// ancestors before descendants, so the picked nodes form a tree.
func (t *tree) largest(n int) []bool {
	kept := make([]bool, len(t.name))
	sorted := slices.Clone(t.total)
	slices.Sort(sorted)
	for k := n; ; {
		t.pick(kept, sorted, k)
		others := t.truncatedParents(kept)
		if k+others <= n {
			return kept
		}
		k = max(n-others, 1) // fewer than before: terminates
	}
}

// pick marks the k nodes of largest total, ties by pre-order; sorted is
// the totals in ascending order.
func (t *tree) pick(kept []bool, sorted []int64, k int) {
	largest := sorted[len(sorted)-k:]
	threshold := largest[0]
	ties := 0 // how many nodes of total == threshold to keep
	for _, v := range largest {
		if v != threshold {
			break
		}
		ties++
	}
	for i, v := range t.total {
		kept[i] = v > threshold || (v == threshold && ties > 0)
		if v == threshold && kept[i] {
			ties--
		}
	}
}

// truncatedParents counts kept nodes with a dropped child.
func (t *tree) truncatedParents(kept []bool) int {
	marked := make([]bool, len(kept))
	n := 0
	for i, p := range t.parent {
		if p >= 0 && !kept[i] && kept[p] && !marked[p] {
			marked[p] = true
			n++
		}
	}
	return n
}

// truncate returns the kept nodes, each kept node that lost children
// followed, after its kept subtree, by an "other" child holding their sum.
func (t *tree) truncate(kept []bool, other int32) Nodes {
	var out Nodes
	dropped := make([]int64, len(t.name))
	type open struct{ node, out int32 }
	var stack []open
	closeTop := func() {
		top := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if d := dropped[top.node]; d > 0 {
			out.add(top.out, other, d, d)
		}
	}
	for i := range t.name {
		p := t.parent[i]
		if !kept[i] {
			if kept[p] {
				dropped[p] += t.total[i]
			}
			continue
		}
		for len(stack) > 0 && stack[len(stack)-1].node != p {
			closeTop()
		}
		parentOut := int32(-1)
		if len(stack) > 0 {
			parentOut = stack[len(stack)-1].out
		}
		stack = append(stack, open{int32(i), out.add(parentOut, t.name[i], t.self[i], t.total[i])})
	}
	for len(stack) > 0 {
		closeTop()
	}
	return out
}

func (n *Nodes) add(parent, name int32, self, total int64) int32 {
	n.Name = append(n.Name, name)
	n.Parent = append(n.Parent, parent)
	n.Self = append(n.Self, self)
	n.Total = append(n.Total, total)
	return int32(len(n.Name) - 1)
}
