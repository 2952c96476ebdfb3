package diff

import "strings"

// callTree interns call paths, as a flame graph's nodes: a node is a
// function under a parent node, the root's children having parent -1. A
// stack's value counts towards every node on its path from the root.
type callTree struct {
	parent, fn []int32
	index      map[[2]int32]int32 // (parent, fn) → node
}

func newCallTree() *callTree { return &callTree{index: map[[2]int32]int32{}} }

// child interns fn under parent.
func (c *callTree) child(parent, fn int32) int32 {
	k := [2]int32{parent, fn}
	n, ok := c.index[k]
	if !ok {
		n = int32(len(c.fn))
		c.parent, c.fn = append(c.parent, parent), append(c.fn, fn)
		c.index[k] = n
	}
	return n
}

// frames is node's path, root first.
func (c *callTree) frames(node int32, nm *names) []string {
	var out []string
	for p := node; p >= 0; p = c.parent[p] {
		out = append(out, nm.list[c.fn[p]])
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// joinFrames is a path as flame graph tools write it: root;...;leaf.
func joinFrames(frames []string) string { return strings.Join(frames, ";") }
